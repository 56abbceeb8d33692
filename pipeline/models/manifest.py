"""A trained version's folder and its `plumb_model.json`, checked before anything is registered.

The layout is the training job's contract: `adapter/` (PEFT adapter and tokenizer) for the chat jobs,
`model/` (a sequence-classification model) for the reward job, and `plumb_model.json` with the
version's lineage and final metrics.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.models.errors import BadVersionFolder

SCHEMA = "plumb-model-v1"
MANIFEST = "plumb_model.json"
CHAT_JOBS = ("sft", "dpo", "kto", "grpo")
CHAT_MODEL = "plumb-chat"
REWARD_MODEL = "plumb-reward"


class VersionManifest(BaseModel):
    """`plumb_model.json` of schema plumb-model-v1."""

    model_config = ConfigDict(populate_by_name=True)

    schema_name: str = Field(alias="schema")
    job: Literal["sft", "dpo", "kto", "grpo", "reward"]
    base_model: str = Field(min_length=1)
    export_id: str = Field(min_length=1)
    data_hashes: dict[str, str | None]  # split -> sha256 of its file; None: the export held none
    config: dict[str, Any]
    metrics: dict[str, float]
    mlflow_run_id: str
    created_at: datetime


@dataclass(frozen=True)
class VersionFolder:
    """A checked version folder; `path` is absolute, since the registry and the model server keep it."""

    path: Path
    manifest: VersionManifest

    @property
    def registered_model(self) -> str:
        """The registered model its versions are numbered under: chat adapters and reward models apart."""
        return CHAT_MODEL if self.manifest.job in CHAT_JOBS else REWARD_MODEL

    @property
    def weights(self) -> Path:
        return self.path / ("adapter" if self.manifest.job in CHAT_JOBS else "model")


def read_version_folder(folder: Path) -> VersionFolder:
    """The version in `folder`. Raises BadVersionFolder, naming what is wrong, for a folder that is
    missing, has no readable plumb_model.json, another schema, a field missing or of the wrong type,
    or no weights where its job puts them."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise BadVersionFolder(f"{folder} is not a folder.")
    data = _manifest_data(folder / MANIFEST)
    if data.get("schema") != SCHEMA:
        raise BadVersionFolder(
            f"{folder / MANIFEST} has schema {data.get('schema')!r}; this Plumbline reads {SCHEMA!r} only."
        )
    try:
        manifest = VersionManifest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise BadVersionFolder(f"{folder / MANIFEST}: {field} {error['msg'].lower()}.") from exc
    version = VersionFolder(folder, manifest)
    expected = "adapter_config.json" if manifest.job in CHAT_JOBS else "config.json"
    if not (version.weights / expected).is_file():
        raise BadVersionFolder(f"{folder} is a {manifest.job} version without {version.weights.name}/{expected}.")
    return version


def _manifest_data(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BadVersionFolder(
            f"{path.parent} has no {MANIFEST}: it is not a trained version folder (`plumb train` writes one)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadVersionFolder(f"{path} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise BadVersionFolder(f"{path} holds {type(data).__name__}, not a JSON object.")
    return data
