"""Pairwise verdicts and experts' reviews in real DynamoDB Local: idempotent, never lost, versions
beside the judgement; `plumb judge pairs` compares only answers to the same prompt, and resumes."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.errors import InvalidFeedback
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.feedback.outbox import Outbox
from pipeline.feedback.resilient import ResilientStore
from pipeline.judge.batch import JudgeConfig
from pipeline.judge.pairs import run_pairs
from pipeline.records import Citation, Judgement, PairJudgement, Review
from pipeline.settings import Settings
from tests.export_factory import RAMP, SEEDS, Seed, make_pair, store_seeds
from tests.test_judge import judge_with
from tests.test_review_page import JUDGE


def better(side: str) -> str:
    return json.dumps({"comment": "compared", "better": side})



def pair_of(outcome: str = "first") -> PairJudgement:
    a, b = sorted(["t-a", "t-b"])
    return PairJudgement(first_session_id="s1", first_turn_id=a, first_user="alice", second_session_id="s2",
                         second_turn_id=b, second_user="bob", judge_model="j", prompt_version="pv1", outcome=outcome)


def test_a_pair_is_stored_once_per_judge_whatever_is_sent_again(dynamo, dynamo_items):
    first = dynamo.save_pair_judgement(pair_of("first")).record
    again = dynamo.save_pair_judgement(pair_of("tie")).record
    assert again == first and again.winner == "t-a"
    assert len(dynamo_items("pair-judgements")) == 1
    other_judge = pair_of("second").model_copy(update={"prompt_version": "pv2"})
    dynamo.save_pair_judgement(other_judge)
    assert sorted(p.outcome for p in dynamo.pair_judgements()) == ["first", "second"]
    assert dynamo.pairs_judged(["t-a#t-b", "t-x#t-y"], "j#pv1") == {"t-a#t-b"}


def test_a_pair_names_its_sides_in_one_order():
    with pytest.raises(ValueError, match="first turn id is the smaller one"):
        PairJudgement.model_validate(pair_of().model_dump() | {"first_turn_id": "t-b", "second_turn_id": "t-a"})


def seeded_prompts(dynamo):
    """The seeds (alice and carol gave the same answer to the ramp question, bob another), plus the
    ramp question asked with another passage: a different prompt, never paired with the others."""
    pairs = store_seeds(dynamo)
    other_passage = Citation(source="site-rules.pdf", page=9, passage="Ramps: see the drawings.", score=0.5)
    elsewhere, _ = make_pair(Seed("gina", RAMP, "See the drawings [1].", 2, other_passage))
    dynamo.save_turn(elsewhere)
    return [turn for turn, _ in pairs]


def test_pairs_only_answers_to_the_same_prompt_and_resumes(dynamo, resilient):
    alice, bob, carol, *_ = seeded_prompts(dynamo)
    judge = judge_with(better("A"), better("B"))  # the first shown wins in both orders
    summary = run_pairs(JudgeConfig(everything=True), judge, resilient, dynamo)
    assert (summary.prompts, summary.compared, summary.failed) == (1, 1, 0)
    [stored] = list(dynamo.pair_judgements())
    oldest_of_equal = min(alice, carol, key=lambda t: t.created_at)  # one turn per distinct answer
    assert {stored.first_turn_id, stored.second_turn_id} == {oldest_of_equal.turn_id, bob.turn_id}
    assert stored.outcome == "first" and stored.judge == "judge-model#plumb-pairwise-v1"
    shown = [sent[0][0].content for sent in judge.llm.sent]
    first_answer = alice.answer if stored.first_turn_id == oldest_of_equal.turn_id else bob.answer
    assert shown[0].index(first_answer) < shown[0].index("Answer B")

    again = run_pairs(JudgeConfig(everything=True), judge, resilient, dynamo)
    assert (again.compared, again.already_compared) == (0, 1) and judge.llm.calls == 2


def test_a_pair_the_judge_cannot_decide_is_counted_failed(dynamo, resilient):
    seeded_prompts(dynamo)
    summary = run_pairs(JudgeConfig(everything=True), judge_with("no json", attempts=1), resilient, dynamo)
    assert (summary.compared, summary.failed) == (0, 1) and "PairVerdict" in summary.failures[0]
    assert list(dynamo.pair_judgements()) == []


def judged_turn(dynamo):
    turn, feedback = make_pair(SEEDS[1])
    dynamo.save_turn(turn)
    dynamo.save_feedback(feedback)
    dynamo.save_judgement(Judgement(session_id=turn.session_id, turn_id=turn.turn_id, user=turn.user,
                                    judge_model="judge-model", prompt_version="plumb-judge-v1", score=4.5,
                                    comment="Looks right.", reference_kind="none"))
    return turn


def decision(turn, action="override", score=1.0, reason="1:10 is wrong; the limit is 1:12.", **extra) -> Review:
    return Review(session_id=turn.session_id, turn_id=turn.turn_id, judge=JUDGE, reviewer="rita", action=action,
                  score=score, reason=reason, **extra)


def test_overrides_are_versions_beside_the_judgement(dynamo, dynamo_items):
    turn = judged_turn(dynamo)
    first = dynamo.save_review(decision(turn, seconds=42.5)).record
    replay = dynamo.save_review(first.model_copy(update={"version": 7})).record  # a retry: same submission
    second = dynamo.save_review(decision(turn, action="accept", score=4.5, reason="")).record
    assert (first.version, replay.version, second.version) == (1, 1, 2)
    assert [(r.action, r.score, r.seconds) for r in dynamo.review_history(turn.turn_id, JUDGE)] == [
        ("override", 1.0, 42.5), ("accept", 4.5, 0.0)
    ]
    [judgement] = list(dynamo.judgements())
    assert (judgement.score, judgement.comment) == (4.5, "Looks right.")
    assert len(dynamo_items("reviews")) == 2 and len(dynamo_items("judgements")) == 1


def test_an_override_without_a_reason_or_with_a_bad_score_is_refused(dynamo):
    turn = judged_turn(dynamo)
    with pytest.raises(ValueError, match="an override needs a reason"):
        decision(turn, reason="  ")
    with pytest.raises(ValueError, match="steps of 0.5"):
        decision(turn, score=4.2)
    bad = decision(turn).model_copy(update={"reason": ""})  # changed after it was checked
    with pytest.raises(InvalidFeedback, match="^The review was not saved: an override needs a reason"):
        dynamo.save_review(bad)
    assert dynamo.review_history(turn.turn_id, JUDGE) == []


def test_reviewers_deciding_at_once_get_gapless_versions(dynamo):
    turn = judged_turn(dynamo)
    with ThreadPoolExecutor(max_workers=4) as pool:
        saved = list(pool.map(lambda n: dynamo.save_review(decision(turn, score=1.0 + n / 2)).record, range(4)))
    assert sorted(r.version for r in saved) == [1, 2, 3, 4]
    assert [r.version for r in dynamo.review_history(turn.turn_id, JUDGE)] == [1, 2, 3, 4]


def test_reviews_and_pairs_wait_in_the_outbox_while_dynamodb_is_down(dynamo, dynamo_settings, tmp_path):
    turn = judged_turn(dynamo)
    down = DynamoFeedbackStore(Settings(dynamodb_endpoint="http://127.0.0.1:9", table_prefix=dynamo_settings.table_prefix))
    outbox = tmp_path / "outbox.sqlite3"
    writer = ResilientStore(down, Outbox(outbox), retry_seconds=3600)
    assert writer.save_review(decision(turn)).queued and writer.save_pair_judgement(pair_of()).queued
    writer.close()
    back = ResilientStore(dynamo, Outbox(outbox))
    back.drain()
    back.close()
    assert [r.version for r in dynamo.review_history(turn.turn_id, JUDGE)] == [1]
    assert [p.pair for p in dynamo.pair_judgements()] == ["t-a#t-b"]
