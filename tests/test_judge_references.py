"""The judge's reference, in order: the asker's correction, an answer a subject-matter expert approved
for the same question (its latest review at 4.5 or 5), otherwise none; against DynamoDB Local."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.judge.batch import JudgeConfig, run_judge
from pipeline.records import Review
from tests.export_factory import CORRECTION, RAMP, RAMP_PASSAGE, Seed, store_seeds
from tests.judge_fakes import scripted_judge

VERDICT = json.dumps({"comment": "Matches the reference.", "score": 4})
APPROVED_BY = "Reference answer (approved by a subject-matter expert)"
# One question asked four times, each answer different (the judge's prompts tell them apart)
SEEDS = [
    Seed("alice", RAMP, "The maximum slope is 1:12 [1].", 5, RAMP_PASSAGE),
    Seed("bob", RAMP, "The maximum slope is 1:10 [1].", 1, RAMP_PASSAGE, correction=CORRECTION),
    Seed("carol", RAMP, "Ramps: 1:12 at most [1].", 4, RAMP_PASSAGE),
    Seed("dave", "what is the MAXIMUM slope of an accessible-ramp", "1:20 [1].", 2, RAMP_PASSAGE),
]



def review(turn, score: float, action: str = "override", minutes: int = 0, version_of: str = "judge#v1") -> Review:
    return Review(
        session_id=turn.session_id,
        turn_id=turn.turn_id,
        judge=version_of,
        reviewer="rita",
        action=action,
        score=score,
        reason="checked against page 21" if action == "override" else "",
        reviewed_at=datetime.now(UTC) + timedelta(minutes=minutes),
    )


def judged(dynamo, resilient) -> tuple[dict[str, str], dict[str, str]]:
    """Judge every turn: (turn id -> reference kind stored, turn id -> the prompt the judge read)."""
    prompts: list[str] = []
    judge = scripted_judge(lambda text, name: prompts.append(text) or VERDICT)
    run_judge(JudgeConfig(everything=True, concurrency=1), judge, resilient, dynamo)
    kinds = {j.turn_id: j.reference_kind for j in dynamo.judgements()}
    by_turn = {}
    for turn_id in kinds:
        turn = next(t for t in dynamo.turns_between(None, datetime.now(UTC)) if t.turn_id == turn_id)
        by_turn[turn_id] = next(p for p in prompts if f"Answer to grade:\n{turn.answer}" in p and turn.question in p)
    return kinds, by_turn


def test_an_answer_an_expert_approved_is_the_reference_for_the_same_question(dynamo, resilient):
    # dave asks alice's question in other case and punctuation; nobody corrected him
    (alice, _), (bob, _), (carol, _), (dave, _) = store_seeds(dynamo, SEEDS)
    dynamo.save_review(review(alice, 5, action="accept"))

    kinds, prompts = judged(dynamo, resilient)

    assert kinds[carol.turn_id] == kinds[dave.turn_id] == "sme"
    assert f"{APPROVED_BY}:\n{alice.answer}" in prompts[dave.turn_id]
    assert kinds[bob.turn_id] == "correction"  # the asker's own correction comes first
    assert CORRECTION in prompts[bob.turn_id] and APPROVED_BY not in prompts[bob.turn_id]
    assert kinds[alice.turn_id] == "none"  # an approval of this very answer is no reference for it


def test_a_score_below_the_top_or_a_withdrawn_approval_is_no_reference(dynamo, resilient):
    (alice, _), _, (carol, _), _ = store_seeds(dynamo, SEEDS)
    dynamo.save_review(review(alice, 4, action="accept"))
    dynamo.save_review(review(carol, 5, minutes=1))
    dynamo.save_review(review(carol, 2, minutes=2))  # the expert changed their mind: the latest counts

    kinds, _ = judged(dynamo, resilient)

    assert kinds[alice.turn_id] == kinds[carol.turn_id] == "none"


def test_the_most_recently_approved_answer_is_the_reference(dynamo, resilient):
    (alice, _), _, (carol, _), _ = store_seeds(dynamo, SEEDS)
    dynamo.save_review(review(alice, 5, minutes=1))
    dynamo.save_review(review(carol, 4.5, minutes=2, version_of="other-judge#v2"))

    kinds, prompts = judged(dynamo, resilient)

    assert kinds[alice.turn_id] == kinds[carol.turn_id] == "sme"
    assert f"{APPROVED_BY}:\n{carol.answer}" in prompts[alice.turn_id]  # the newer approval
    assert f"{APPROVED_BY}:\n{alice.answer}" in prompts[carol.turn_id]  # itself excluded, the next one


def test_progress_counts_every_turn_as_it_is_judged(dynamo, resilient):
    pairs = store_seeds(dynamo, SEEDS)
    steps: list[int] = []
    run_judge(JudgeConfig(everything=True, concurrency=2), scripted_judge(lambda t, n: VERDICT), resilient, dynamo, steps.append)
    assert steps == [1] * len(pairs)
    again: list[int] = []
    summary = run_judge(JudgeConfig(everything=True), scripted_judge(lambda t, n: VERDICT), resilient, dynamo, again.append)
    # All skipped, judged before: those judged against a correction at once, the others once their
    # reference is read again and found no stronger.
    corrected = sum(1 for _, feedback in pairs if feedback.correction)
    assert again == [corrected] + [1] * (len(pairs) - corrected) and summary.already_judged == len(pairs)
