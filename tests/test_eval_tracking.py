"""Eval and compare runs in MLflow (a real SQLite tracking store under the test's data folder) and
the Markdown reports with their plots."""

from dataclasses import replace
from pathlib import Path

from pipeline.evaluation.compare import ComparedCase, CompareReport, Side
from pipeline.evaluation.report import write_compare_markdown, write_eval_markdown
from pipeline.evaluation.stats import spread
from pipeline.evaluation.tracking import EXPERIMENT, log_compare, log_eval
from pipeline.evaluation.evaluate import CaseResult, summarise, write_report
from pipeline.export.writers import sha256_of
from pipeline.prompts import PROMPT_VERSION
from pipeline.settings import Settings, get_settings

PNG = b"\x89PNG\r\n\x1a\n"


def case(question: str, score: float | None, similarity: float) -> CaseResult:
    return CaseResult(
        question=question, answer="a | b", reference="r", similarity=similarity, source_hit=True, page_hit=None,
        not_covered=False, latency_ms=12.0, citations=[{"chunk_id": "c"}], judge_score=score, faithfulness=1.0,
        answer_relevancy=0.0, context_precision=0.5, context_recall=1.0,
    )


def compare_report() -> CompareReport:
    results = [
        ComparedCase("q1", "r", "a1", "b1", 0.4, 0.8, 2.0, 4.5, "win", ("B", "B")),
        ComparedCase("q2", "r", "a2", "b2", 0.6, 0.6, 3.0, 3.0, "tie", ("A", "B")),
        ComparedCase("q3", "r", "a3", "b3", 0.7, 0.5, None, 2.0, None, None),
    ]
    a = Side({"llm_adapter": ""}, "base", spread([0.4, 0.6, 0.7]), spread([2.0, 3.0]))
    b = Side({"llm_adapter": "tuned"}, "tuned", spread([0.8, 0.6, 0.5]), spread([4.5, 3.0, 2.0]))
    return CompareReport(3, "judge", a, b, 1, 1, 0, 1, 1, 1, 0, 1.0, spread([0.4, 0.0, -0.2]), spread([2.5, 0.0]), results)


def test_the_tracking_uri_is_the_setting_or_a_sqlite_file_in_the_data_folder(tmp_path):
    assert Settings(data_dir=tmp_path).mlflow_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert Settings(mlflow_tracking_uri="http://mlflow:5000").mlflow_uri == "http://mlflow:5000"


def test_eval_and_compare_runs_are_logged_with_configuration_metrics_table_and_reports(tmp_path: Path):
    import mlflow
    from mlflow import MlflowClient

    settings = get_settings()
    eval_file = tmp_path / "set.jsonl"
    eval_file.write_text('{"question": "q1", "reference": "r"}\n', encoding="utf-8")
    report = summarise([case("q1", 4.0, 0.8), case("q2", 2.5, 0.6), case("q3", None, 0.4)], "SmolLM2", "judge")
    out = tmp_path / "reports" / "eval.json"
    write_report(report, out)
    written = write_eval_markdown(report, out)
    assert [p.name for p in written] == ["eval.md", "eval-scores.png"] and written[1].read_bytes().startswith(PNG)
    assert "| a \\| b |" not in written[0].read_text() and "q3" in written[0].read_text()
    run_id = log_eval(report, settings, eval_file, [out, *written])

    client = MlflowClient(settings.mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.experiment_id == mlflow.get_experiment_by_name(EXPERIMENT).experiment_id
    params, metrics = run.data.params, run.data.metrics
    assert params["eval_set_sha256"] == sha256_of(eval_file) and params["prompt_version"] == PROMPT_VERSION
    assert (params["top_k"], params["index_backend"], params["llm_adapter"], params["model_id"]) == ("5", "embedded", "(none)", "SmolLM2")
    assert metrics["judge_score_mean"] == 3.25 and metrics["similarity_mean"] == 0.6
    assert metrics["context_precision_mean"] == 0.5 and metrics["judge_share_above_3"] == 0.5
    assert {"judge_score_ci_low", "faithfulness_p90", "answer_relevancy_variance"} <= set(metrics)
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"per_question.json", "eval.json", "eval.md", "eval-scores.png"} <= artifacts
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(settings.data_dir.resolve())

    compared = compare_report()
    out = tmp_path / "compare.json"
    write_report(compared, out)
    written = write_compare_markdown(compared, out)
    text = written[0].read_text()
    assert "1 wins, 1 ties, 0 losses, 1 not judged" in text and "| q3 | 0.7 | 0.5 | n/a | 2 | failed | failed |" in text
    assert "| q2 | 0.6 | 0.6 | 3 | 3 | tie | A, B |" in text
    assert "Of 2 pairs judged, the two orders agreed on 1; the judge chose the answer shown first in both orders on 1" in text
    assert all(path.read_bytes().startswith(PNG) for path in written[1:])
    tuned = Settings(llm_adapter="tuned", prompt_version="plumb-answer-v3")
    run = client.get_run(log_compare(compared, (settings, tuned), eval_file, [out, *written]))
    assert (run.data.params["a.llm_adapter"], run.data.params["b.llm_adapter"], run.data.params["b.overrides"]) == (
        "(none)", "tuned", "llm_adapter=tuned"
    )
    assert (run.data.params["a.prompt_version"], run.data.params["b.prompt_version"]) == (PROMPT_VERSION, "plumb-answer-v3")
    assert (run.data.metrics["wins"], run.data.metrics["judge_difference_mean"]) == (1.0, 1.25)
    metrics = run.data.metrics
    assert (metrics["pairwise_consistency"], metrics["pairwise_first_position_share"], metrics["pairwise_second_position_share"]) == (0.5, 0.5, 0.0)
    assert "per_question.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
    unjudged = replace(compared, failed=3, consistent=0, first_position=0)  # no pair judged: no share, not 0
    run = client.get_run(log_compare(unjudged, (settings, tuned), eval_file, []))
    assert run.data.metrics["not_judged"] == 3.0 and "pairwise_consistency" not in run.data.metrics


def test_a_tracking_server_that_does_not_answer_is_one_sentence(tmp_path: Path, monkeypatch):
    import pytest

    from pipeline.errors import PlumbError

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    eval_file = tmp_path / "set.jsonl"
    eval_file.write_text('{"question": "q1", "reference": "r"}\n', encoding="utf-8")
    settings = Settings(data_dir=tmp_path, mlflow_tracking_uri="http://127.0.0.1:1")  # nothing listens
    with pytest.raises(PlumbError, match="the run could not be logged to MLflow at http://127.0.0.1:1: API request"):
        log_eval(summarise([case("q1", 4.0, 0.8)], "m", "j"), settings, eval_file, [])
