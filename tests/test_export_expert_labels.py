"""Experts' answers in the export, against real DynamoDB Local: an escalation the expert chose as
training data gives one SFT row (`label_source = expert`) whose prompt is the escalated turn's as the
model was given it (not the escalation's transcript) and whose completion is the expert's answer; only
when asked for with --label-source, once per stream, redacted, and its turn not found is counted."""

import pytest

from pipeline.errors import ConfigError
from pipeline.escalation.records import escalation_for
from pipeline.escalation.storage import EscalationConflict
from pipeline.export.formats import prompt
from pipeline.export.job import ExportConfig
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.prompts import answer_messages
from pipeline.records import Citation, Feedback, Turn
from tests.test_export_job import rows, run

pytestmark = pytest.mark.usefixtures("prepared_models")  # the encoder exported once for every test

PASSAGE = Citation(source="spec.pdf", page=4, passage="Anchor bolts are torqued to 85 N·m.", score=0.8)
EXPERT_ANSWER = "85 N·m, checked again after 24 hours; mail dana@example.com with questions."


def turn(session: str, question: str, history: list[tuple[str, str]], user: str = "ann", answer: str = "") -> Turn:
    return Turn(
        session_id=session, user=user, question=question, condensed_question=question,
        answer=answer or f"About {question}", citations=[PASSAGE], history=history, generated=True,
        model_id="mistral-7b-v1", prompt_version="plumb-answer-v1",
    )


def answered(dynamo: DynamoFeedbackStore, asked: Turn, earlier: list[Turn], text: str = EXPERT_ANSWER) -> None:
    """`asked` stored, escalated with `earlier` as its transcript, claimed and answered by dana."""
    dynamo.save_turn(asked)
    dynamo.save_escalation(escalation_for(asked, earlier, "negative"))
    dynamo.escalations.claim(asked.session_id, asked.turn_id, "dana")
    dynamo.escalations.answer(asked.session_id, asked.turn_id, "dana", text, f"answer-{asked.turn_id}")


@pytest.fixture
def escalated(dynamo_settings):
    """A follow-up whose history window holds one earlier exchange while the escalation's transcript
    holds two (the chain kept fewer than the conversation had), chosen for training; another answer
    not chosen; and one chosen whose turn is not stored."""
    dynamo = DynamoFeedbackStore(dynamo_settings)
    first = turn("s1", "Which bolts hold the base plate?", [], answer="Anchor bolts.")
    second = turn("s1", "Where is the spec?", [], answer="spec.pdf.")
    follow_up = turn("s1", "What torque? This is useless.", [(second.question, second.answer)])
    for earlier in (first, second):
        dynamo.save_turn(earlier)
    answered(dynamo, follow_up, [first, second])
    not_chosen = turn("s2", "Why does the drawing disagree?", [], user="bob")
    answered(dynamo, not_chosen, [])
    lost = turn("s3", "Is the grout structural?", [], user="cy")
    dynamo.save_escalation(escalation_for(lost, [], "person"))
    dynamo.escalations.claim("s3", lost.turn_id, "dana")
    dynamo.escalations.answer("s3", lost.turn_id, "dana", "Yes.", "answer-lost")
    for chosen in (follow_up, lost):
        dynamo.escalations.added_to_training(chosen.session_id, chosen.turn_id, "dana")
    return dynamo, follow_up, not_chosen, [first, second]


def test_the_row_has_the_served_prompt_of_the_turn_and_the_experts_answer(dynamo_settings, escalated, tmp_path):
    _, follow_up, _, (first, second) = escalated
    export, manifest = run(dynamo_settings, tmp_path / "out", mode="all", label_sources=("expert",))
    [row] = rows(export, "sft")
    assert row["prompt"] == prompt(follow_up), "message by message, the prompt the model was given"
    assert row["prompt"] == answer_messages([(second.question, second.answer)], [PASSAGE], follow_up.question)
    transcript_prompt = answer_messages([(first.question, first.answer), (second.question, second.answer)],
                                        [PASSAGE], follow_up.question)
    assert row["prompt"] != transcript_prompt, "not rebuilt from the escalation's transcript"
    assert row["completion"] == [
        {"role": "assistant", "content": "85 N·m, checked again after 24 hours; mail [email] with questions."}
    ], "the expert's answer, redacted like the rest"
    assert (row["label_source"], row["completion_source"], row["user"], row["turn_id"], row["feedback_version"]) == (
        "expert", "expert", "dana", follow_up.turn_id, 1)
    assert (row["model_id"], row["prompt_version"]) == ("mistral-7b-v1", "plumb-answer-v1")
    labels = manifest["ai_labels"]
    assert (labels["expert"], labels["missing_turns"]) == (1, 1), "the turn not found is counted, not guessed"
    assert [rows(export, name) for name in ("kto", "ratings", "preference")] == [[], [], []]
    card = (export / "README.md").read_text()
    assert "`expert` (1 answers of experts" in card and "whose turn was not found: 1" in card


def test_an_expert_row_is_split_by_question_and_has_the_columns_of_the_other_sft_rows(dynamo_settings, escalated,
                                                                                      tmp_path):
    dynamo, follow_up, _, _ = escalated
    dynamo.save_feedback(Feedback(session_id="s1", turn_id=follow_up.turn_id, user="ann", rating=4))
    export, _ = run(dynamo_settings, tmp_path / "out", mode="all", label_sources=("human", "expert"),
                    validation_fraction=0.5)
    placed = {split: [(r["label_source"], r["turn_id"]) for r in rows(export, "sft", split)]
              for split in ("train", "validation")}
    [together] = [found for found in placed.values() if found]
    assert sorted(together) == [("expert", follow_up.turn_id), ("human", follow_up.turn_id)], placed
    human, expert = sorted(rows(export, "sft", "train") + rows(export, "sft", "validation"),
                           key=lambda r: r["label_source"] == "expert")
    assert set(human) == set(expert) and human["prompt"] == expert["prompt"]
    assert (human["completion_source"], expert["completion_source"]) == ("model", "expert")


def test_expert_rows_only_with_their_label_source_and_the_filters(dynamo_settings, escalated, tmp_path):
    _, follow_up, _, _ = escalated
    human, _ = run(dynamo_settings, tmp_path / "human", mode="all")
    assert human is None, "no human feedback, and expert answers only when asked for"
    rated, manifest = run(dynamo_settings, tmp_path / "rated", mode="all", label_sources=("expert",), ratings=(5,))
    assert rated is None and manifest["ai_labels"]["not_matched"] == 1, "an expert's answer has no rating"
    bob, manifest = run(dynamo_settings, tmp_path / "bob", mode="all", label_sources=("expert",), users=("bob",))
    assert bob is None and manifest["ai_labels"]["not_matched"] == 1, "the user filter names the asker"
    ann, _ = run(dynamo_settings, tmp_path / "ann", mode="all", label_sources=("expert",), users=("ann",))
    assert [r["turn_id"] for r in rows(ann, "sft")] == [follow_up.turn_id]


def test_an_incremental_export_takes_each_chosen_answer_once(dynamo_settings, escalated, tmp_path):
    dynamo, follow_up, not_chosen, _ = escalated
    out = tmp_path / "out"
    first, _ = run(dynamo_settings, out, label_sources=("expert",))
    assert [r["turn_id"] for r in rows(first, "sft")] == [follow_up.turn_id]
    dynamo.escalations.added_to_training(follow_up.session_id, follow_up.turn_id, "erik")  # chosen again
    nothing, _ = run(dynamo_settings, out, label_sources=("expert",))
    assert nothing is None, "choosing it again does not bring it back"
    dynamo.escalations.added_to_training(not_chosen.session_id, not_chosen.turn_id, "dana")
    second, _ = run(dynamo_settings, out, label_sources=("expert",))
    assert [(r["turn_id"], r["user"]) for r in rows(second, "sft")] == [(not_chosen.turn_id, "dana")]


def test_choosing_is_recorded_once_and_needs_an_answer(dynamo_settings, escalated):
    dynamo, follow_up, _, _ = escalated
    chosen = dynamo.escalations.get(follow_up.session_id, follow_up.turn_id)
    again = dynamo.escalations.added_to_training(follow_up.session_id, follow_up.turn_id, "erik")
    assert (again.training_by, again.training_at) == ("dana", chosen.training_at) and chosen.training_at
    waiting = turn("s4", "Is this rated for seismic loads?", [])
    dynamo.save_escalation(escalation_for(waiting, [], "negative"))
    with pytest.raises(EscalationConflict, match="it has no answer yet"):
        dynamo.escalations.added_to_training("s4", waiting.turn_id, "dana")
    with pytest.raises(EscalationConflict, match="it has no answer yet"):
        dynamo.escalations.added_to_training("s4", "no-such-turn", "dana")


def test_an_unknown_label_source_names_expert_among_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="not one of human, ai, sme, review, expert"):
        ExportConfig(out=str(tmp_path), label_sources=("experts",))
