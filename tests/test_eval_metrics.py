"""`plumb eval`'s judged figures: statistics against hand-computed values, the RAG metrics asked of a
scripted judge, the judge's score distribution, and a real run with the packaged model and the
demo judge."""

import json
import math

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.evaluation.stats import interval, sign_test, spread
from pipeline.evaluation.evaluate import CaseResult, EvalCase, run_eval, summarise
from pipeline.judge.judge import make_judge
from pipeline.evaluation.rag_metrics import average_precision, judge_answer
from pipeline.records import Citation
from pipeline.settings import get_settings
from pipeline.wiring import make_rag_chain
from tests.judge_fakes import scripted_judge


def test_spread_matches_hand_computed_values():
    value = spread([1.0, 2.0, 3.0, 4.0])
    # mean 2.5; p90 by linear interpolation: rank 0.9 * 3 = 2.7 -> 3 + 0.7 = 3.7; sample variance 5/3
    assert (value.n, value.mean, value.p90, value.variance) == (4, 2.5, 3.7, 1.6667)
    assert 1.0 <= value.low < 2.5 < value.high <= 4.0
    assert spread([]) is None
    single = spread([3.0])
    assert (single.variance, single.low, single.high) == (0.0, None, None)


def test_the_interval_of_values_that_cannot_vary_is_the_value_and_is_repeatable():
    assert interval([1.0, 1.0, 1.0]) == (1.0, 1.0)
    values = [0.2, 0.9, 0.4, 0.7, 0.5]
    assert interval(values) == interval(values)


def test_sign_test_is_the_binomial_two_sided_p_value():
    assert sign_test(8, 0) == round(2 * 0.5**8, 4)  # 0.0078
    assert sign_test(3, 3) == 1.0
    assert sign_test(0, 0) is None


@pytest.mark.parametrize(
    ("relevant", "expected"),
    [([1.0, 0.0, 1.0], round((1 / 1 + 2 / 3) / 2, 4)), ([0.0, 1.0], 0.5), ([0.0, 0.0], 0.0), ([], 0.0), ([1.0], 1.0)],
)
def test_context_precision_is_the_average_precision_of_the_relevant_ranks(relevant, expected):
    assert average_precision(relevant) == expected


PASSAGES = ["the pump runs at 40 Hz (relevant)", "the car park has 12 bays", "pump speed is fixed (relevant)"]


def mlflow_judge_reply(prompt: str, verdict: str) -> str:
    """Score 4.5; a passage is relevant when it says so; the answer is grounded but judged off the
    question; the passages hold the reference."""
    if verdict == "ScoreVerdict":
        return json.dumps({"comment": "Matches the reference.", "score": 4.5})
    if "question and document" in prompt:
        result = "yes" if "(relevant)" in prompt.split("<document>")[1] else "no"
    elif "question and answer" in prompt:
        result = "no"
    else:  # a claim against the passages: the answer (groundedness) or the reference (sufficiency)
        result = "yes"
    return json.dumps({"rationale": "Let's think step by step.", "result": result})


def citations() -> list[Citation]:
    return [
        Citation(source="pump.pdf", page=n, passage=text, score=0.9, chunk_id=f"c{n}")
        for n, text in enumerate(PASSAGES, start=1)
    ]


def test_the_rag_metrics_are_mlflows_judge_prompts_answered_by_the_judge():
    judge = scripted_judge(mlflow_judge_reply)
    judged = judge_answer(judge, "How fast does the pump run?", "At 40 Hz.", "It runs at 40 Hz [1].", citations())
    assert (judged.judge_score, judged.faithfulness, judged.answer_relevancy, judged.context_recall) == (4.5, 1.0, 0.0, 1.0)
    assert judged.context_precision == round((1 + 2 / 3) / 2, 4)  # relevant at ranks 1 and 3
    assert judged.failures == 0 and judge.llm.calls == 4 + len(PASSAGES)


def test_a_metric_the_judge_gives_no_valid_verdict_for_is_left_out_and_counted():
    def broken_relevance(prompt: str, verdict: str) -> str:
        if "question and document" in prompt and "car park" in prompt:
            return "yes, I think so"  # not JSON: the passage's relevance is unknown
        return mlflow_judge_reply(prompt, verdict)

    judged = judge_answer(scripted_judge(broken_relevance, attempts=2), "q?", "r", "a", citations())
    assert judged.context_precision is None and judged.failures == 1
    assert judged.faithfulness == 1.0


def result(score: float | None, similarity: float = 0.5, failures: int = 0) -> CaseResult:
    return CaseResult(
        question="q", answer="a", reference="r", similarity=similarity, source_hit=None, page_hit=None,
        not_covered=False, latency_ms=10.0, citations=[], judge_score=score, judge_failures=failures,
    )


def test_the_judge_distribution_counts_shares_and_half_points_of_the_answers_judged():
    report = summarise([result(5.0), result(4.0), result(2.0), result(3.0), result(None, failures=3)], "m", "j")
    judge = report.judge
    assert (judge.judged, judge.failed_verdicts, judge.mean) == (4, 3, 3.5)
    assert (judge.share_above_3, judge.share_below_3) == (0.5, 0.25)
    assert judge.histogram == {"1.0": 0, "1.5": 0, "2.0": 1, "2.5": 0, "3.0": 1, "3.5": 0, "4.0": 1, "4.5": 0, "5.0": 1}
    assert report.scores["judge_score"].n == 4 and report.scores["faithfulness"] is None
    assert summarise([result(None)], "m").judge is None  # no judge, no judged figures


def test_a_report_names_the_models_that_wrote_its_answers_not_the_chains_base():
    from dataclasses import replace

    from pipeline.evaluation.evaluate import answered_by

    tuned = replace(result(4.0), model_id="plumb-chat/2 on smollm2")
    assert answered_by([tuned, tuned]) == "plumb-chat/2 on smollm2"
    switched = replace(result(4.0), model_id="plumb-chat/3 on smollm2")
    assert answered_by([tuned, switched]) == "plumb-chat/2 on smollm2, plumb-chat/3 on smollm2"
    assert answered_by([]) == "no answers"


def test_eval_of_a_missing_file_says_so_in_one_line():
    outcome = CliRunner().invoke(app, ["eval", "missing.jsonl"])
    assert outcome.exit_code == 1 and "missing.jsonl does not exist." in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.slow
def test_eval_with_the_packaged_model_and_the_demo_judge(sample_index, embedder, prepared_models, monkeypatch):
    # One question, one passage, short replies, one try per verdict: 5 judge requests on a busy CPU.
    monkeypatch.setenv("PLUMB_TOP_K", "1")
    monkeypatch.setenv("PLUMB_MAX_NEW_TOKENS", "16")
    monkeypatch.setenv("PLUMB_JUDGE_MAX_TOKENS", "64")
    monkeypatch.setenv("PLUMB_JUDGE_ATTEMPTS", "1")
    get_settings.cache_clear()
    settings = get_settings()
    cases = [
        EvalCase(question="What is the basic design wind speed?", reference="120 mph.", source="design-criteria.pdf", page=3),
    ]
    report = run_eval(cases, [""], make_rag_chain(settings, sample_index, embedder), embedder, make_judge(settings))
    judge = report.judge
    assert judge.judge_model.endswith("(demo judge)") and judge.judged + sum(r.judge_score is None for r in report.results) == 1
    assert sum(judge.histogram.values()) == judge.judged
    for name in ("faithfulness", "answer_relevancy", "context_recall"):
        measured = [getattr(r, name) for r in report.results if getattr(r, name) is not None]
        assert set(measured) <= {0.0, 1.0}
        if report.scores[name] is not None:
            assert math.isclose(report.scores[name].mean, sum(measured) / len(measured), abs_tol=1e-4)
