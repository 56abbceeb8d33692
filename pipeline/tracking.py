"""Where MLflow keeps what training, evaluation and tracing log: the tracking URI is the setting or
the SQLite file in the data folder (`Settings.mlflow_uri`); artifacts of a new experiment go beside it."""

from pipeline.settings import Settings


def artifact_location(settings: Settings) -> str | None:
    """Where a new experiment keeps its artifacts: beside the SQLite file in the data folder when
    no tracking URI is set (else MLflow would use ./mlruns of whatever folder the process runs
    in); None lets a configured tracking server decide."""
    return None if settings.mlflow_tracking_uri else (settings.data_dir / "mlflow-artifacts").resolve().as_uri()
