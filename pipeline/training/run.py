"""The flow every training job shares: open the MLflow run, train, evaluate on the export's
validation split, write the version folder with its lineage, log it, publish it.

A job's `main` names its run (`new_run`), builds TRL's config (checked before anything loads), then
inside `tracked(...)` builds its trainer, calls `run.train(trainer)` and saves its model under
`run.folder`; everything else is here, so each job module holds only what differs (its dataset, its
model, its TRL trainer).
"""

import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from pipeline.errors import ConfigError
from pipeline.interrupts import stopped_by_sigterm
from pipeline.settings import Settings
from pipeline.training.config import JobConfig
from pipeline.training.data import ExportFolder
from pipeline.training.tracking import log_result, mlflow_run
from pipeline.training.versions import TrainedVersion, publish, version_name, versions_dir, write_lineage


@dataclass
class VersionRun:
    """One run being written: `folder` is where the job saves its model (a staging folder until
    published), `checkpoints` TRL's output_dir (removed before publishing), `metrics` filled by
    `train`, `mlflow_run_id` set once the MLflow run is open."""

    job: str
    name: str
    started: datetime
    folder: Path
    final: Path
    mlflow_run_id: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def checkpoints(self) -> Path:
        return self.folder / "trainer-output"

    def train(self, trainer: Any) -> dict[str, float]:
        """Train, then evaluate on the validation split when there is one; the final metrics
        (train_loss, eval_loss, eval_accuracy, ...) as floats. Raises ConfigError when the trainer
        kept no training row (all longer than max_length)."""
        if len(trainer.train_dataset) == 0:
            raise ConfigError(
                "Training not started: no training row fits the trainer's max_length; raise it with "
                "--trl max_length=N or export with --max-tokens."
            )
        result = trainer.train()
        self.metrics |= _floats(result.metrics)
        if trainer.eval_dataset is not None and len(trainer.eval_dataset):
            self.metrics |= _floats(trainer.evaluate())
        return self.metrics


def new_run(settings: Settings, job: str) -> VersionRun:
    """The names of a run of `job` starting now (nothing is created yet), so that TRL's config can
    be checked before anything is written or loaded."""
    started = datetime.now(UTC)
    name = version_name(job, started)
    root = versions_dir(settings)
    return VersionRun(job, name, started, root / f".staging-{name}-{uuid4().hex[:6]}", root / name)


@contextmanager
def tracked(
    run: VersionRun, settings: Settings, config: JobConfig, export: ExportFolder, hashes: dict, base_model: str
) -> Iterator[VersionRun]:
    """The MLflow run around a job's training; on leaving the block the lineage is written, the
    folder logged to MLflow and published under its version name. Nothing is published if the
    block raises (and the MLflow run ends FAILED)."""
    resolved = config.resolved()
    lineage = {
        "job": run.job,
        "base_model": base_model,
        "export_id": export.export_id,
        "data_hashes": hashes,
        "config": resolved,
    }
    params = {"job": run.job, "base_model": base_model, "export_id": export.export_id, "export_dir": str(export.path)}
    params |= {f"data_hash.{split}": digest or "" for split, digest in hashes.items()}
    params |= {f"config.{key}": value for key, value in resolved.items()}
    tags = {"plumb.job": run.job, "plumb.export_id": export.export_id}
    if not is_main_process():
        yield run  # trains its share; the main process logs, writes and publishes
        return
    run.folder.mkdir(parents=True)
    staging = run.folder
    try:
        with stopped_by_sigterm(), mlflow_run(settings, run.name, params, tags) as run_id:
            run.mlflow_run_id = run_id
            yield run
            shutil.rmtree(run.checkpoints, ignore_errors=True)
            write_lineage(
                staging,
                lineage | {"metrics": run.metrics, "mlflow_run_id": run_id, "created_at": run.started.isoformat()},
            )
            log_result(run.metrics, staging)
        publish(staging, run.final)
        run.folder = run.final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_main_process() -> bool:
    """`accelerate launch` (and torchrun) start one process per GPU, numbered by RANK; only the first
    logs to MLflow (transformers' callback logs only there too) and writes the version."""
    return os.environ.get("RANK", "0") == "0"


def finished(run: VersionRun) -> TrainedVersion:
    return TrainedVersion(run.folder, run.metrics, run.mlflow_run_id)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric, finite metrics (MLflow and JSON take nothing else)."""
    return {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
