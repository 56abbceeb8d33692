"""An export folder read through its manifest: which files it holds, their checksums, its split.

Only a manifest's `files` are read, and each must still have the checksum the export recorded, so a
model's lineage (export id and data hashes) names exactly the rows it learnt from. An export whose
schema version this code does not know is refused rather than half-read.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PlumbError
from pipeline.export.card import MANIFEST
from pipeline.export.writers import sha256_of

if TYPE_CHECKING:
    from datasets import Dataset

# The export schema versions these trainers read (pipeline/export/card.py SCHEMA_VERSION).
KNOWN_SCHEMAS = (1,)

# The columns each trainer takes from a dataset; the provenance columns stay in the files.
TRL_COLUMNS = {
    "sft": ("prompt", "completion"),
    "preference": ("prompt", "chosen", "rejected"),
    "reward": ("chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
    "ratings": ("prompt", "completion", "score"),
}


class TrainingDataError(PlumbError):
    """The export cannot be trained on: missing, unknown schema, a dataset absent or changed."""


@dataclass(frozen=True)
class Split:
    """One dataset's rows for training and validation (validation None when the export held none),
    with the sha256 of each split's file (None for no file)."""

    train: "Dataset"
    validation: "Dataset | None"
    hashes: dict[str, str | None]


@dataclass(frozen=True)
class ExportFolder:
    path: Path
    manifest: dict

    @classmethod
    def open(cls, path: str | Path) -> "ExportFolder":
        """The export at `path`. Raises TrainingDataError when it is not a complete export or its
        schema version is unknown."""
        path = Path(path)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise TrainingDataError(f"{path} is not an export: it has no {MANIFEST} (run `plumb export` first).")
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TrainingDataError(f"{manifest_file} is not valid JSON ({error}).") from error
        schema = manifest.get("schema_version") if isinstance(manifest, dict) else None
        if schema not in KNOWN_SCHEMAS:
            raise TrainingDataError(
                f"The export in {path} has schema version {schema!r}, which this trainer does not know "
                f"(it reads {', '.join(map(str, KNOWN_SCHEMAS))})."
            )
        return cls(path, manifest)

    @property
    def export_id(self) -> str:
        return self.manifest["export_id"]

    def has_rows(self, name: str) -> bool:
        """Whether the export holds training rows of dataset `name`."""
        return any(relative.startswith(f"{name}/train.") for relative in self.manifest.get("files", {}))

    def split(self, name: str, columns: tuple[str, ...] | None = None) -> Split:
        """Dataset `name` (sft, preference, reward, kto, ratings) as the export split it, with its
        TRL columns or `columns`. Raises TrainingDataError when it has no training rows or a file no
        longer matches its checksum."""
        columns = columns or TRL_COLUMNS[name]
        train, train_hash = self._read(name, "train", columns)
        if train is None:
            raise TrainingDataError(
                f"The export {self.export_id} has no {name} training rows, so this job has nothing to learn from."
            )
        validation, validation_hash = self._read(name, "validation", columns)
        return Split(train, validation, {"train": train_hash, "validation": validation_hash})

    def _read(self, name: str, split: str, columns: tuple[str, ...]) -> "tuple[Dataset | None, str | None]":
        entry = next(
            ((relative, info) for relative, info in self.manifest.get("files", {}).items() if relative.startswith(f"{name}/{split}.")),
            None,
        )
        if entry is None:
            return None, None
        relative, info = entry
        file = self.path / relative
        if not file.is_file():
            raise TrainingDataError(f"The export {self.export_id} lists {relative}, but the file is missing.")
        digest = sha256_of(file)
        if digest != info["sha256"]:
            raise TrainingDataError(
                f"{file} has changed since the export wrote it (sha256 {digest[:12]}…, manifest {info['sha256'][:12]}…)."
            )
        return _load(file, columns), digest


def _load(file: Path, columns: tuple[str, ...]) -> "Dataset":
    """The file's rows, only `columns`, held in memory: exports are thousands of rows, not millions,
    and reading them ourselves keeps datasets' cache out of the user's home folder."""
    from datasets import Dataset

    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        return Dataset(pq.read_table(file, columns=list(columns)))
    import orjson

    with file.open("rb") as lines:
        rows = [orjson.loads(line) for line in lines if line.strip()]
    return Dataset.from_list([{column: row[column] for column in columns} for row in rows])
