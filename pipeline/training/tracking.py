"""Every training run logged to MLflow: our config and lineage as params, TRL's config and per-step
metrics through transformers' MLflow callback (which logs into the run opened here), the final
metrics and the model folder as artifacts.

By default the store is a SQLite file under the data directory, which `mlflow ui
--backend-store-uri sqlite:///<data dir>/mlflow.db` opens; PLUMB_MLFLOW_TRACKING_URI points at any
tracking server instead.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from pipeline.tracking import artifact_location

EXPERIMENT = "plumb-training"


@contextmanager
def mlflow_run(settings: Settings, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> Iterator[str]:
    """An active MLflow run in experiment `plumb-training`, with `params` logged (prefixed
    `plumb.`, apart from the TRL fields the trainer's callback logs), yielding its run id. The run
    ends FAILED when the body raises."""
    import mlflow

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location(settings))
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        mlflow.log_params({f"plumb.{name}": _param(value) for name, value in params.items()})
        yield run.info.run_id
        mlflow.flush_async_logging()


def log_result(metrics: dict[str, float], folder: Path) -> None:
    """The final metrics and the model folder, into the active run."""
    import mlflow

    mlflow.log_metrics({f"final/{name}": value for name, value in metrics.items()})
    mlflow.log_artifacts(str(folder), artifact_path="model-version")


def _param(value: Any) -> str:
    """MLflow keeps params as text of at most 6,000 characters."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]
