"""RLAIF in the export, against real DynamoDB Local: AI and expert labels in the ratings, KTO,
preference and reward files, pairs only from answers to the same prompt, and the label-source and
judge-agreement filters, each naming its own watermark stream."""

import json
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.export.job import ExportConfig
from pipeline.export.watermark import watermark_key
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Judgement
from tests.export_factory import SEEDS, store_seeds
from tests.test_agreement_panel import PAIR_JUDGE, review, verdict
from tests.test_export_job import rows, run
from tests.test_review_page import JUDGE, SCORES

pytestmark = pytest.mark.usefixtures("prepared_models")  # the encoder exported once for every test


@pytest.fixture
def labelled(dynamo_settings):
    """The six seeds (rated 5, 1, 4, 3, 2, 4) scored SCORES (5, 4.5, 4, 3, 4, 4); an expert overrode
    bob's 4.5 with 1.0; the pairwise judge preferred alice's answer over bob's (one prompt), dave's
    over alice's (another question: never a pair) and tied carol and bob."""
    dynamo = DynamoFeedbackStore(dynamo_settings)
    turns = [turn for turn, _ in store_seeds(dynamo)]
    for turn, score in zip(turns, SCORES, strict=True):
        dynamo.save_judgement(Judgement(session_id=turn.session_id, turn_id=turn.turn_id, user=turn.user,
                                        judge_model="judge-model", prompt_version="plumb-judge-v1", score=score,
                                        comment=f"Judged {turn.user}.", reference_kind="none"))
    alice, bob, carol, dave, *_ = turns
    dynamo.save_review(review(bob, "override", 1.0))
    for pair in [verdict(alice, bob), verdict(dave, alice), verdict(carol, bob, tie=True)]:
        dynamo.save_pair_judgement(pair)
    return dynamo, turns


def by_source(export: Path, name: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows(export, name):
        grouped.setdefault(row["label_source"], []).append(row)
    return grouped


def test_by_default_an_export_holds_human_labels_in_the_stream_it_always_had(dynamo_settings, labelled, tmp_path):
    export, manifest = run(dynamo_settings, tmp_path / "out")
    assert set(by_source(export, "ratings")) == {"human"} and len(rows(export, "ratings")) == 6
    assert {r["pair"] for r in rows(export, "preference")} == {"correction", "rating"}
    assert manifest["filters"]["label_sources"] == ["human"] and manifest["ai_labels"]["ai"] == 0
    old_stream = {"ratings": [], "model_ids": [], "users": []}
    assert manifest["watermark"]["key"] == watermark_key(str(tmp_path / "out"), old_stream)


def test_ai_and_expert_labels_enlarge_ratings_kto_preference_and_reward(dynamo_settings, labelled, tmp_path):
    _, turns = labelled
    alice, bob, *_ = turns
    export, manifest = run(dynamo_settings, tmp_path / "out", mode="all", label_sources=("human", "ai", "sme"))
    ratings = by_source(export, "ratings")
    assert sorted(r["score"] for r in ratings["ai"]) == [3.0, 4.0, 4.0, 4.0, 5.0]
    [sme] = ratings["sme"]
    assert (sme["turn_id"], sme["score"], sme["user"], sme["feedback_version"]) == (bob.turn_id, 1.0, JUDGE, 2)
    assert sme["note"] == "checked against the drawings" and len(ratings["human"]) == 6
    assert all(r["user"] == JUDGE and r["feedback_version"] == 1 for r in ratings["ai"])
    assert {r["note"] for r in ratings["ai"]} == {f"Judged {s.user}." for s in SEEDS if s.user != "bob"}

    kto = by_source(export, "kto")
    assert sorted(r["label"] for r in kto["ai"]) == [True] * 4  # 5, 4, 4, 4; dave's 3.0 is neutral: omitted
    assert [r["label"] for r in kto["sme"]] == [False]
    assert len(rows(export, "sft")) == 4  # a judge's approval is no reference answer

    [judged] = [r for r in rows(export, "preference") if r["pair"] == "judge"]
    assert (judged["chosen_turn_id"], judged["rejected_turn_id"]) == (alice.turn_id, bob.turn_id)
    assert (judged["label_source"], judged["chosen_user"]) == ("ai", PAIR_JUDGE)
    assert judged["chosen"][0]["content"] == alice.answer and judged["rejected"][0]["content"] == bob.answer
    assert judged["prompt"][-1]["content"].endswith(alice.question)
    assert [r["label_source"] for r in rows(export, "reward") if r["pair"] == "judge"] == ["ai"]
    counts = manifest["ai_labels"]
    assert (counts["ai"], counts["sme"], counts["pairs"], counts["pairs_other_prompt"]) == (5, 1, 1, 1)
    files = manifest["files"]
    assert sum(f["rows"] for p, f in files.items() if p.startswith("ratings/")) == 12
    assert "john.doe@example.com" not in str(ratings["ai"])  # erin's answer, redacted as in human rows
    card = (export / "README.md").read_text()
    assert "## AI labels" in card and "1 pairwise verdicts" in card


def test_label_source_and_judge_agreement_filters_name_their_own_streams(dynamo_settings, labelled, tmp_path):
    out = tmp_path / "out"
    experts, manifest = run(dynamo_settings, out, label_sources=("sme",))
    assert [(r["label_source"], r["score"]) for r in rows(experts, "ratings")] == [("sme", 1.0)]
    assert rows(experts, "preference") == [] and manifest["not_matched"] == 6
    default_key = watermark_key(str(out), {"ratings": [], "model_ids": [], "users": []})
    assert manifest["watermark"]["key"] != default_key

    # The scoring judge's kappa with users is -2/118 (see test_agreement_panel); its pairwise verdicts
    # agree with the users' ratings once in two (alice's 5 over bob's 1, not dave's 3 over alice's 5):
    # a floor of 0 keeps the pair and the expert's score only.
    floor, manifest = run(dynamo_settings, out, label_sources=("ai", "sme"), min_judge_agreement=0.0)
    assert manifest["judge_agreement"][JUDGE] == pytest.approx(-2 / 118)
    assert manifest["judge_agreement"][PAIR_JUDGE] == 0.5
    assert [r["label_source"] for r in rows(floor, "ratings")] == ["sme"]
    assert [r["pair"] for r in rows(floor, "preference")] == ["judge"]
    assert manifest["ai_labels"]["below_agreement"] == 5
    assert manifest["watermark"]["key"] not in {default_key, json.dumps(None)}


def test_a_later_review_comes_in_the_next_incremental_export_and_supersedes(dynamo_settings, labelled, tmp_path):
    dynamo, turns = labelled
    carol = turns[2]
    out = tmp_path / "out"
    first, _ = run(dynamo_settings, out, label_sources=("ai", "sme"))
    assert len(rows(first, "ratings")) == 6
    dynamo.save_review(review(carol, "override", 2.0))
    second, manifest = run(dynamo_settings, out, label_sources=("ai", "sme"))
    [row] = rows(second, "ratings")
    assert (row["turn_id"], row["label_source"], row["score"], row["feedback_version"]) == (carol.turn_id, "sme", 2.0, 2)
    assert manifest["supersedes"] == [
        {"turn_id": carol.turn_id, "user": JUDGE, "feedback_version": 2, "in_export": True}
    ]


def test_a_turn_judged_again_against_a_correction_supersedes_its_earlier_label(dynamo_settings, labelled, tmp_path):
    dynamo, turns = labelled
    dave = turns[3]
    out = tmp_path / "out"
    run(dynamo_settings, out, label_sources=("ai", "sme"))
    dynamo.save_judgement(Judgement(session_id=dave.session_id, turn_id=dave.turn_id, user=dave.user,
                                    judge_model="judge-model", prompt_version="plumb-judge-v1", score=2.0,
                                    comment="Against the correction.", reference_kind="correction"))
    second, manifest = run(dynamo_settings, out, label_sources=("ai", "sme"))
    [row] = rows(second, "ratings")
    assert (row["turn_id"], row["label_source"], row["score"], row["feedback_version"]) == (dave.turn_id, "ai", 2.0, 3)
    assert manifest["supersedes"] == [{"turn_id": dave.turn_id, "user": JUDGE, "feedback_version": 3, "in_export": True}]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"label_sources": ("robot",)}, "label source 'robot' is not one of human, ai, sme"),
        ({"label_sources": ()}, "no label source given"),
        ({"label_sources": ("ai",), "min_judge_agreement": 1.5}, "minimum judge agreement 1.5 is not between -1 and 1"),
        ({"min_judge_agreement": 0.5}, "--min-judge-agreement filters AI labels: add --label-source ai"),
        ({"label_sources": ("ai",), "feedback_export": "s3://b/f", "turns_export": "s3://b/t"},
         "AI and expert labels are read from the DynamoDB tables"),
    ],
)
def test_bad_label_options_are_refused(options, problem):
    with pytest.raises(ConfigError, match=problem):
        ExportConfig(out="out", **options)


def test_the_cli_takes_label_sources_and_says_what_is_wrong():
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, ["export", "--out", "out", "--label-source", "robot"])
    assert result.exit_code == 1 and "label source 'robot' is not one of human, ai, sme" in result.output
    result = CliRunner().invoke(app, ["export", "--out", "out", "--min-judge-agreement", "0.4"])
    assert result.exit_code == 1 and "add --label-source ai" in result.output
