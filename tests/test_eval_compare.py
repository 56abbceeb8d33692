"""`plumb eval compare`: two fake versions whose outcome is known, a judge with position bias, the
settings overrides, and a real run of two index settings with the packaged model and demo judge."""

import itertools
import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from typer.testing import CliRunner

from pipeline.chain import RagChain
from pipeline.cli import app
from pipeline.errors import PlumbError
from pipeline.evaluation.compare import Side, compare, side_settings
from pipeline.evaluation.evaluate import EvalCase, answer_case
from pipeline.retriever import IndexRetriever
from pipeline.settings import Settings
from tests.judge_fakes import scripted_judge

RIGHT = "The basic design wind speed is 120 mph [1]."
WRONG = "The wind speed is not given."


def knows_the_answer(prompt: str, verdict: str) -> str:
    """Scores an answer holding "120 mph" 5, others 1; prefers the answer holding it, whichever
    place it is shown in; a tie when both or neither hold it."""
    if verdict == "ScoreVerdict":
        score = 5.0 if "120 mph" in prompt.split("Answer to grade:")[1] else 1.0
        return json.dumps({"comment": "Checked against the reference.", "score": score})
    answer_a, answer_b = prompt.split("Answer A:")[1].split("Answer B:")
    a, b = "120 mph" in answer_a, "120 mph" in answer_b.split("Reply with")[0]
    better = "tie" if a == b else ("A" if a else "B")
    return json.dumps({"comment": "Compared.", "better": better})


def always_first(prompt: str, verdict: str) -> str:
    """A judge with pure position bias: always prefers the answer shown first."""
    if verdict == "ScoreVerdict":
        return json.dumps({"comment": "Fine.", "score": 3.0})
    return json.dumps({"comment": "The first.", "better": "A"})


def fake_chain(sample_index, embedder, *replies: str):
    llm = GenericFakeChatModel(messages=itertools.cycle([AIMessage(content=reply) for reply in replies]))
    return RagChain(llm, IndexRetriever(index=sample_index, embedder=embedder, k=2), model_id="fake", min_relevance=0.3)


CASES = [
    EvalCase(question="What is the basic design wind speed?", reference="120 mph.", source="design-criteria.pdf", page=3),
    EvalCase(question="What wind speed is the structure designed for?", reference="120 mph."),
    EvalCase(question="Which basic wind speed applies?", reference="120 mph."),
]


def sides() -> tuple[Side, Side]:
    return Side({"llm_adapter": ""}, "base", None, None), Side({"llm_adapter": "tuned"}, "tuned", None, None)


def test_a_candidate_that_answers_right_where_the_baseline_does_not_wins_where_they_differ(sample_index, embedder):
    baseline = fake_chain(sample_index, embedder, WRONG, RIGHT, WRONG)  # right on the second question only
    candidate = fake_chain(sample_index, embedder, RIGHT)
    results_a = [answer_case(case, baseline, embedder) for case in CASES]
    results_b = [answer_case(case, candidate, embedder) for case in CASES]
    report = compare(results_a, results_b, sides(), scripted_judge(knows_the_answer))
    assert [c.outcome for c in report.results] == ["win", "tie", "win"]
    assert [c.verdicts for c in report.results] == [("B", "B"), ("tie", "tie"), ("B", "B")]  # the side preferred
    assert (report.wins, report.ties, report.losses, report.failed) == (2, 1, 0, 0)
    assert (report.consistent, report.first_position, report.second_position) == (3, 0, 0)
    assert report.consistency() == (
        "Of 3 pairs judged, the two orders agreed on 3; the judge chose the answer shown first in both orders on 0, "
        "the one shown second on 0, and called a tie in one order only on 0."
    )
    assert report.sign_test_p == 0.5  # 2 of 2 decided: 2 * 0.5**2
    assert [(c.judge_a, c.judge_b) for c in report.results] == [(1.0, 5.0), (5.0, 5.0), (1.0, 5.0)]
    assert (report.a.judge.mean, report.b.judge.mean) == (round(7 / 3, 4), 5.0)
    difference = report.judge_difference  # [4, 0, 4]: a resample of three 0s is possible, so the interval reaches 0
    assert (difference.mean, difference.low, difference.high) == (round(8 / 3, 4), 0.0, 4.0)
    sas = [(c.similarity_a, c.similarity_b) for c in report.results]
    assert report.similarity_difference.mean == round(sum(b - a for a, b in sas) / 3, 4)
    assert sas[1][0] == sas[1][1]  # the same answer measured by the one embedder


def test_a_judge_that_always_prefers_the_first_answer_gives_ties_not_wins(sample_index, embedder):
    results_a = [answer_case(case, fake_chain(sample_index, embedder, WRONG), embedder) for case in CASES[:2]]
    results_b = [answer_case(case, fake_chain(sample_index, embedder, RIGHT), embedder) for case in CASES[:2]]
    report = compare(results_a, results_b, sides(), scripted_judge(always_first))
    assert (report.wins, report.ties, report.losses, report.sign_test_p) == (0, 2, 0, None)
    assert (report.consistent, report.first_position, report.second_position) == (0, 2, 0)
    assert [c.orders for c in report.results] == ["A, B", "A, B"]  # A's answer when shown first, B's when shown first
    assert report.consistency() == (
        "Of 2 pairs judged, the two orders agreed on 0; the judge chose the answer shown first in both orders on 2, "
        "the one shown second on 0, and called a tie in one order only on 0. Most verdicts went by the place shown, "
        "not the answers: its ties say it could not tell them apart."
    )


def test_ties_in_one_order_only_are_not_taken_for_position_bias(sample_index, embedder):
    said = iter(["tie", "A", "A", "tie", "B", "A"])  # in order, then swapped, for each of three questions

    def judge(prompt: str, verdict: str) -> str:
        if verdict == "ScoreVerdict":
            return json.dumps({"comment": "Fine.", "score": 3.0})
        return json.dumps({"comment": "Compared.", "better": next(said)})

    results_a = [answer_case(case, fake_chain(sample_index, embedder, WRONG), embedder) for case in CASES]
    results_b = [answer_case(case, fake_chain(sample_index, embedder, RIGHT), embedder) for case in CASES]
    report = compare(results_a, results_b, sides(), scripted_judge(judge))
    assert [c.verdicts for c in report.results] == [("tie", "B"), ("A", "tie"), ("B", "B")]
    assert (report.wins, report.ties, report.consistent, report.first_position, report.second_position) == (1, 2, 1, 0, 0)
    assert report.consistency().endswith("and called a tie in one order only on 2.")


def test_a_failed_pairwise_verdict_is_counted_not_guessed(sample_index, embedder):
    def no_pairs(prompt: str, verdict: str) -> str:
        return "B is better" if verdict == "PairVerdict" else knows_the_answer(prompt, verdict)

    results = [answer_case(CASES[0], fake_chain(sample_index, embedder, RIGHT), embedder)]
    report = compare(results, results, sides(), scripted_judge(no_pairs))
    assert (report.failed, report.wins, report.results[0].outcome, report.results[0].orders) == (1, 0, None, "failed")
    assert (report.consistent, report.consistency()) == (0, "The pairwise judge gave no verdict.")


def test_overrides_are_settings_named_with_or_without_the_prefix():
    settings, overrides = side_settings(Settings(), ["PLUMB_TOP_K=2", "llm_adapter=tuned-v3"])
    assert (settings.top_k, settings.llm_adapter, overrides) == (2, "tuned-v3", {"top_k": "2", "llm_adapter": "tuned-v3"})
    settings, _ = side_settings(Settings(), ["PROMPT_VERSION=plumb-answer-v3"])
    assert settings.prompt_version == "plumb-answer-v3"


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["top_k"], "'top_k' is not KEY=VALUE with a setting as KEY"),
        (["colour=red"], "'colour=red' is not KEY=VALUE with a setting as KEY"),
        (["top_k=many"], "The overrides top_k=many are not valid settings"),
        (["PROMPT_VERSION=plumb-answer-v9"], "The overrides PROMPT_VERSION=plumb-answer-v9 are not valid settings"),
        (["TOP_K=1", "plumb_top_k=2"], "plumb_top_k is given twice for one side: give each setting once."),
    ],
)
def test_a_bad_override_is_refused_in_one_sentence(pairs, message):
    with pytest.raises(PlumbError, match=message):
        side_settings(Settings(), pairs)


def test_cli_refuses_a_compare_without_differences_and_a_bad_override(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"question": "q", "reference": "r"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "compare", "q.jsonl"])
    assert result.exit_code == 1 and "Give what differs" in result.output
    result = CliRunner().invoke(app, ["eval", "compare", "q.jsonl", "--b", "TOP_K=zero"])
    assert result.exit_code == 1 and "are not valid settings" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["eval", "compare", "q.jsonl", "--b", "TOP_K=2"], ["eval", "q.jsonl"]])
def test_a_report_path_that_cannot_be_written_is_refused_before_any_question_is_answered(command, tmp_path):
    """Before: a Markdown --out was overwritten by the Markdown report, and a folder or a path under
    a file failed with a traceback after every question had been answered and judged."""
    (tmp_path / "q.jsonl").write_text('{"question": "q", "reference": "r"}\n', encoding="utf-8")
    (tmp_path / "reports").mkdir()
    for out, message in (
        ("r.md", "--out r.md must be a file name ending in .json: the Markdown report and plots are written beside it."),
        (".json", "--out .json must be a file name ending in .json: the Markdown report and plots are written beside it."),
        ("reports", "--out reports is a folder: name the JSON file to write."),
        ("", "--out . is a folder: name the JSON file to write."),
        ("q.jsonl/new/r.json", f"--out q.jsonl/new/r.json cannot be written: {tmp_path / 'q.jsonl'} is a file, not a folder."),
    ):
        result = CliRunner().invoke(app, [*command, "--out", out])
        assert (result.exit_code, result.output.strip()) == (1, f"Error: {message}")
    missing = ["missing.jsonl" if part == "q.jsonl" else part for part in command]
    result = CliRunner().invoke(app, [*missing, "--out", "new/deep/r.json"])
    assert result.exit_code == 1 and "missing.jsonl does not exist" in result.output
    assert not (tmp_path / "new").exists()  # a refused run makes no folder
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".md", ".png") or p.name == "r.json"]
    assert not any((tmp_path / "reports").iterdir())


@pytest.mark.slow
def test_cli_compares_two_index_settings_with_the_packaged_model_and_the_demo_judge(sample_index, prepared_models, monkeypatch, tmp_path):
    for name, value in (("MAX_NEW_TOKENS", "16"), ("JUDGE_MAX_TOKENS", "64"), ("JUDGE_ATTEMPTS", "1")):
        monkeypatch.setenv(f"PLUMB_{name}", value)
    sample_index.close()  # the command opens the index itself, once per side
    (tmp_path / "q.jsonl").write_text(CASES[0].model_dump_json() + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "compare", "q.jsonl", "--a", "TOP_K=1", "--b", "TOP_K=2"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "compare-report.json").read_text())
    assert (report["a"]["overrides"], report["b"]["overrides"]) == ({"top_k": "1"}, {"top_k": "2"})
    assert report["a"]["model_id"] == report["b"]["model_id"] and "smollm2" in report["a"]["model_id"].lower()
    assert report["wins"] + report["ties"] + report["losses"] + report["failed"] == 1
    assert "B against A on 1 questions" in result.output and "pairs judged, the two orders agreed on" in result.output
    assert len(report["results"][0]["verdicts"]) == 2 or report["failed"] == 1
