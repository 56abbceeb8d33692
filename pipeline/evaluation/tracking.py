"""Every eval and compare run logged to MLflow, so runs compare in the MLflow UI: what was measured
(model, adapter, prompt version, index settings, the eval set's sha256) as params, the figures as
metrics, the per-question table (`mlflow.log_table`), the JSON report and the Markdown report with
its plots as artifacts. Runs go to the experiment `plumb-eval`."""

from dataclasses import asdict
from pathlib import Path

from pipeline.errors import PlumbError
from pipeline.evaluation.compare import CompareReport
from pipeline.evaluation.stats import Spread
from pipeline.evaluation.evaluate import EvalReport
from pipeline.export.writers import sha256_of
from pipeline.judge.prompts import JUDGE_PROMPT_VERSION
from pipeline.settings import Settings
from pipeline.tracking import artifact_location

EXPERIMENT = "plumb-eval"
INDEX_SETTINGS = ("index_backend", "embedding_model", "embedding_backend", "chunk_tokens", "chunk_overlap_tokens", "top_k", "min_relevance")


def log_eval(report: EvalReport, settings: Settings, eval_file: Path, artifacts: list[Path]) -> str:
    """Log one `plumb eval` run; returns its run id. `artifacts`: the JSON report and the files
    written next to it."""
    params = {**_configuration(settings, report.model_id), **_eval_set(eval_file)}
    metrics = {
        "unmatched": report.unmatched,
        "hit_at_k": report.hit_at_k,
        "page_hit_at_k": report.page_hit_at_k,
        "not_covered_share": report.not_covered_share,
        "latency_p50_ms": report.latency_p50_ms,
        "latency_p95_ms": report.latency_p95_ms,
        **_spread("similarity", report.similarity),
    }
    if report.judge is not None and report.scores is not None:
        params["judge_model"] = report.judge.judge_model
        params["judge_prompt_version"] = JUDGE_PROMPT_VERSION
        metrics["judge_share_above_3"] = report.judge.share_above_3
        metrics["judge_share_below_3"] = report.judge.share_below_3
        metrics["judge_failed_verdicts"] = report.judge.failed_verdicts
        for name, value in report.scores.items():
            metrics.update(_spread(name, value))
    table = [{k: v for k, v in asdict(result).items() if k != "citations"} for result in report.results]
    return _log(settings, f"eval {report.model_id}", params, metrics, table, artifacts)


def log_compare(report: CompareReport, settings: tuple[Settings, Settings], eval_file: Path, artifacts: list[Path]) -> str:
    """Log one `plumb eval compare` run: each side's configuration under `a.` and `b.`."""
    params = {"judge_model": report.judge_model, "judge_prompt_version": JUDGE_PROMPT_VERSION, **_eval_set(eval_file)}
    for name, side, side_settings in (("a", report.a, settings[0]), ("b", report.b, settings[1])):
        params.update({f"{name}.{key}": value for key, value in _configuration(side_settings, side.model_id).items()})
        params[f"{name}.overrides"] = ", ".join(f"{k}={v}" for k, v in side.overrides.items()) or "(none)"
    metrics = {
        "wins": report.wins,
        "ties": report.ties,
        "losses": report.losses,
        "not_judged": report.failed,
        **_position_shares(report),
        "sign_test_p": report.sign_test_p,
        **_spread("similarity_a", report.a.similarity),
        **_spread("similarity_b", report.b.similarity),
        **_spread("similarity_difference", report.similarity_difference),
        **_spread("judge_a", report.a.judge),
        **_spread("judge_b", report.b.judge),
        **_spread("judge_difference", report.judge_difference),
    }
    table = [asdict(case) for case in report.results]
    return _log(settings[0], f"compare {report.a.model_id} vs {report.b.model_id}", params, metrics, table, artifacts)


def _position_shares(report: CompareReport) -> dict[str, float]:
    """The pairwise judge's consistency and position bias as shares of the pairs it judged, so that
    runs of different sizes compare; none when it judged no pair (not a consistency of 0)."""
    judged = report.cases - report.failed
    if not judged:
        return {}
    return {
        "pairwise_consistency": report.consistent / judged,
        "pairwise_first_position_share": report.first_position / judged,
        "pairwise_second_position_share": report.second_position / judged,
    }


def _configuration(settings: Settings, model_id: str) -> dict[str, str]:
    """What answered: the model (and adapter), the answer prompt's version, the index settings."""
    return {
        "model_id": model_id,
        "llm_backend": settings.llm_backend,
        "llm_model": settings.llm_model if settings.llm_backend == "openai" else model_id,
        "llm_adapter": settings.llm_adapter or "(none)",
        "prompt_version": settings.prompt_version,
        **{name: str(getattr(settings, name)) or "(default)" for name in INDEX_SETTINGS},
    }


def _eval_set(path: Path) -> dict[str, str]:
    return {"eval_set": path.name, "eval_set_sha256": sha256_of(path)}


def _spread(name: str, value: Spread | None) -> dict[str, float | None]:
    if value is None:
        return {}
    return {f"{name}_mean": value.mean, f"{name}_p90": value.p90, f"{name}_variance": value.variance,
            f"{name}_ci_low": value.low, f"{name}_ci_high": value.high}


def _log(settings: Settings, name: str, params: dict, metrics: dict, table: list[dict], artifacts: list[Path]) -> str:
    """Log one run; PlumbError in one sentence when the tracking store refuses it (the reports on
    disk are already written)."""
    from mlflow.exceptions import MlflowException

    try:
        return _log_run(settings, name, params, metrics, table, artifacts)
    except MlflowException as exc:
        raise PlumbError(
            f"The reports are written, but the run could not be logged to MLflow at {settings.mlflow_uri}: {exc.message}"
        ) from exc


def _log_run(settings: Settings, name: str, params: dict, metrics: dict, table: list[dict], artifacts: list[Path]) -> str:
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location(settings))
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(params)
        mlflow.log_metrics({key: float(value) for key, value in metrics.items() if value is not None})
        if table:
            mlflow.log_table({column: [row[column] for row in table] for column in table[0]}, "per_question.json")
        for path in artifacts:
            mlflow.log_artifact(str(path))
    return run.info.run_id
