"""The versioned model folder a training run writes (the contract with the model registry):

    <data dir>/model-versions/<job>-<UTC yyyymmdd-HHMMSS>/
        adapter/            sft, dpo, kto, grpo: the PEFT adapter and the tokenizer
        model/              reward: the sequence-classification model (LoRA merged) and tokenizer
        plumb_model.json    lineage: job, base model, export id, data hashes, config, metrics, run id

A run writes into a hidden staging folder and renames it into place when everything is written, so
a folder under its version name is always complete and a failed run leaves none.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.errors import PlumbError
from pipeline.settings import Settings

LINEAGE = "plumb_model.json"
LINEAGE_SCHEMA = "plumb-model-v1"


class TrainingFailed(PlumbError):
    """A training run could not write its version."""


@dataclass(frozen=True)
class TrainedVersion:
    """What a finished run made: the folder (named by the version), its final metrics and MLflow run."""

    folder: Path
    metrics: dict[str, float]
    mlflow_run_id: str

    @property
    def name(self) -> str:
        return self.folder.name


def versions_dir(settings: Settings) -> Path:
    return settings.data_dir / "model-versions"


def version_name(job: str, started: datetime) -> str:
    return f"{job}-{started:%Y%m%d-%H%M%S}"


def write_lineage(folder: Path, lineage: dict) -> None:
    """plumb_model.json with `lineage` (job, base_model, export_id, data_hashes, config, metrics,
    mlflow_run_id, created_at) under the contract's schema name."""
    content = {"schema": LINEAGE_SCHEMA, **lineage}
    (folder / LINEAGE).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def publish(staging: Path, final: Path) -> None:
    """Rename the finished staging folder to its version name. Raises TrainingFailed when a version
    of that name exists (two runs of one job started in the same second)."""
    if final.exists():
        raise TrainingFailed(f"A version named {final.name} exists already; run the job again.")
    staging.rename(final)
