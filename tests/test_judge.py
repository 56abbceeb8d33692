"""The AI judge: structured verdicts, retries, pairwise in both orders, the batch job against real
DynamoDB Local (idempotent, resumable, never lost), and agreement figures computed by hand."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ConfigError, ModelUnavailable
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.feedback.outbox import Outbox
from pipeline.feedback.resilient import ResilientStore
from pipeline.judge.agreement import agreement, judge_agreement, level
from pipeline.judge.batch import JudgeConfig, run_judge
from pipeline.judge.judge import NO_REFERENCE, SWAPPED, Judge, JudgeFailed, Reference
from pipeline.judge.online import OnlineJudge
from pipeline.judge.prompts import JUDGE_PROMPT_VERSION
from pipeline.judge.verdicts import ScoreVerdict
from pipeline.records import Judgement
from pipeline.settings import Settings
from tests.export_factory import CORRECTION, SEEDS, make_pair, store_seeds

VERDICT = json.dumps({"comment": "States the 1:12 limit and cites it.", "score": 4.5})


class Recording(BaseChatModel):
    """A fake chat model that replies from a list, round and round, records what it was sent, and
    can lose its endpoint after some calls."""

    replies: list[str]
    sent: list = Field(default_factory=list)
    calls: int = 0
    fail_after: int | None = None

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise ModelUnavailable("The judge's endpoint is not answering.")
        self.sent.append((messages, kwargs))
        reply = self.replies[self.calls % len(self.replies)]
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def judge_with(*replies: str, attempts: int = 3, fail_after: int | None = None) -> Judge:
    llm = Recording(replies=list(replies), fail_after=fail_after)
    return Judge(llm, "judge-model", attempts)


def test_a_verdict_is_validated_json_asked_for_by_schema():
    judge = judge_with(VERDICT)
    turn, _ = make_pair(SEEDS[0])
    judgement = judge.score(turn, Reference(CORRECTION, "correction"))
    assert (judgement.score, judgement.comment, judgement.reference_kind) == (4.5, "States the 1:12 limit and cites it.", "correction")
    assert (judgement.judge_model, judgement.prompt_version, judgement.user) == ("judge-model", JUDGE_PROMPT_VERSION, "alice")
    messages, kwargs = judge.llm.sent[0]
    assert kwargs["response_format"]["json_schema"]["schema"]["properties"]["score"]["enum"] == [
        1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0
    ]
    prompt = messages[0].content
    assert CORRECTION in prompt and "written by the engineer who asked" in prompt and turn.answer in prompt


def test_without_a_reference_the_rubric_is_faithfulness_and_relevance():
    judge = judge_with(VERDICT)
    turn, _ = make_pair(SEEDS[0])
    assert judge.score(turn, NO_REFERENCE).reference_kind == "none"
    prompt = judge.llm.sent[0][0][0].content
    assert "There is no reference answer" in prompt and "Reference answer" not in prompt


@pytest.mark.parametrize(
    "bad",
    [
        "I would give it a 4 out of 5.",  # free text: never read as a score
        json.dumps({"comment": "fine", "score": 4.2}),  # not a half point
        json.dumps({"comment": "fine", "score": 6}),
        json.dumps({"comment": "", "score": 4}),
        json.dumps({"score": 4}),
    ],
)
def test_a_reply_that_is_not_a_verdict_is_retried_then_counted_failed(bad):
    turn, _ = make_pair(SEEDS[0])
    assert judge_with(bad, VERDICT).score(turn).score == 4.5
    with pytest.raises(JudgeFailed, match=r"gave no valid ScoreVerdict in 2 tries"):
        judge_with(bad, attempts=2).score(turn)


def test_pairwise_counts_a_win_only_when_both_orders_agree():
    def pair(better: str) -> str:
        return json.dumps({"comment": "compared", "better": better})

    turn, _ = make_pair(SEEDS[0])
    args = (turn.question, turn.citations, "1:12 [1].", "1:10 [1].")
    assert judge_with(pair("A"), pair("B")).compare(*args) == "A"  # first wins in both orders
    assert judge_with(pair("B"), pair("A")).compare(*args) == "B"
    assert judge_with(pair("A"), pair("A")).compare(*args) == "tie"  # always the first shown: position bias
    assert judge_with(pair("tie"), pair("B")).compare(*args) == "tie"
    for said, consistent, position in (
        (("A", "B"), True, None), (("tie", "tie"), True, None), (("A", "A"), False, "first"),
        (("B", "B"), False, "second"), (("tie", "A"), False, None),
    ):
        verdicts = judge_with(*map(pair, said)).verdicts(*args)
        assert (verdicts.in_order, verdicts.swapped) == said and verdicts.sides == (said[0], SWAPPED[said[1]])
        assert (verdicts.consistent, verdicts.position) == (consistent, position)
    judge = judge_with(pair("A"), pair("B"))
    judge.compare(*args)
    first, second = (sent[0][0].content for sent in judge.llm.sent)
    assert first.index("1:12 [1].") < first.index("1:10 [1].") and second.index("1:10 [1].") < second.index("1:12 [1].")


def test_judge_config_refuses_bad_windows():
    for kwargs in ({}, {"everything": True, "since": datetime(2026, 1, 1)}, {"until": datetime(2026, 1, 1), "everything": True}):
        with pytest.raises(ConfigError, match="^Judging not started: "):
            JudgeConfig(**kwargs)
    with pytest.raises(ConfigError, match="is not before --until"):
        JudgeConfig(since=datetime(2026, 2, 1), until=datetime(2026, 1, 1))


def test_the_cli_says_what_to_give():
    result = CliRunner().invoke(app, ["judge"])
    assert result.exit_code == 1
    assert "give --since DATE (and optionally --until) or --all" in result.output



def seeded_turns(dynamo):
    pairs = store_seeds(dynamo)
    canned, _ = make_pair(SEEDS[0])
    dynamo.save_turn(canned.model_copy(update={"generated": False, "answer": "The documents don't cover this question."}))
    return pairs


def test_judging_twice_judges_each_turn_once(dynamo, resilient):
    pairs = seeded_turns(dynamo)
    judge = judge_with(VERDICT)
    first = run_judge(JudgeConfig(everything=True), judge, resilient, dynamo)
    assert (first.judged, first.already_judged, first.not_generated, first.failed) == (len(pairs), 0, 1, 0)
    assert first.references == {"correction": 1, "none": len(pairs) - 1}
    stored = {j.turn_id: j for j in dynamo.judgements()}
    bob = pairs[1][0]
    assert stored[bob.turn_id].reference_kind == "correction"

    second = run_judge(JudgeConfig(everything=True), judge, resilient, dynamo)
    assert (second.judged, second.already_judged) == (0, len(pairs))
    assert {j.turn_id: j for j in dynamo.judgements()} == stored
    assert judge.llm.calls == len(pairs)


def test_saving_a_judgement_again_keeps_the_first(dynamo):
    turn, _ = make_pair(SEEDS[0])
    made = dict(session_id=turn.session_id, turn_id=turn.turn_id, user="alice", judge_model="j", prompt_version="v1")
    first = dynamo.save_judgement(Judgement(**made, score=4, comment="first", reference_kind="none")).record
    again = dynamo.save_judgement(Judgement(**made, score=2, comment="second", reference_kind="none")).record
    assert again == first and [j.comment for j in dynamo.judgements()] == ["first"]


def test_a_judgement_against_a_stronger_reference_replaces_a_weaker_one_and_never_the_reverse(dynamo):
    turn, _ = make_pair(SEEDS[0])
    made = dict(session_id=turn.session_id, turn_id=turn.turn_id, user="alice", judge_model="j", prompt_version="v1")
    dynamo.save_judgement(Judgement(**made, score=4, comment="free", reference_kind="none"))
    dynamo.save_judgement(Judgement(**made, score=3, comment="sme", reference_kind="sme"))
    dynamo.save_judgement(Judgement(**made, score=2, comment="corrected", reference_kind="correction"))
    for kind in ("none", "sme", "correction"):  # a replay, or a weaker one late, changes nothing
        kept = dynamo.save_judgement(Judgement(**made, score=5, comment="late", reference_kind=kind)).record
        assert (kept.comment, kept.score) == ("corrected", 2)
    assert [(j.comment, j.reference_kind) for j in dynamo.judgements()] == [("corrected", "correction")]


def test_a_turn_judged_without_a_reference_is_judged_again_once_its_user_corrects_it(dynamo, resilient):
    [(turn, feedback)] = store_seeds(dynamo, [SEEDS[0]])
    judge = judge_with(VERDICT)
    first = run_judge(JudgeConfig(everything=True), judge, resilient, dynamo)
    assert (first.judged, first.rejudged, first.references) == (1, 0, {"none": 1})
    assert run_judge(JudgeConfig(everything=True), judge, resilient, dynamo).already_judged == 1

    dynamo.save_feedback(feedback.model_copy(update={"rating": 2, "correction": CORRECTION, "submission_id": "later"}))
    again = run_judge(JudgeConfig(everything=True), judge, resilient, dynamo)
    assert (again.judged, again.rejudged, again.already_judged, again.references) == (1, 1, 0, {"correction": 1})
    [stored] = dynamo.judgements()
    assert stored.reference_kind == "correction" and CORRECTION in str(judge.llm.sent[-1][0])
    last = run_judge(JudgeConfig(everything=True), judge, resilient, dynamo)
    assert (last.judged, last.already_judged) == (0, 1) and judge.llm.calls == 2


def test_an_endpoint_lost_mid_run_keeps_what_was_judged_and_the_next_run_resumes(dynamo, resilient):
    pairs = seeded_turns(dynamo)
    with pytest.raises(ModelUnavailable):
        run_judge(JudgeConfig(everything=True, concurrency=1), judge_with(VERDICT, fail_after=2), resilient, dynamo)
    assert len(list(dynamo.judgements())) == 2
    rest = run_judge(JudgeConfig(everything=True), judge_with(VERDICT), resilient, dynamo)
    assert (rest.judged, rest.already_judged) == (len(pairs) - 2, 2)
    assert sorted(j.turn_id for j in dynamo.judgements()) == sorted(turn.turn_id for turn, _ in pairs)


def test_judgements_wait_in_the_outbox_while_dynamodb_is_down(dynamo, dynamo_settings, tmp_path):
    pairs = seeded_turns(dynamo)
    down = DynamoFeedbackStore(Settings(dynamodb_endpoint="http://127.0.0.1:9", table_prefix=dynamo_settings.table_prefix))
    outbox = tmp_path / "outbox.sqlite3"
    writer = ResilientStore(down, Outbox(outbox), retry_seconds=3600)
    summary = run_judge(JudgeConfig(everything=True), judge_with(VERDICT), writer, dynamo)
    writer.close()
    assert (summary.judged, summary.queued) == (len(pairs), len(pairs))
    assert list(dynamo.judgements()) == []
    assert Outbox(outbox).pending() == len(pairs)
    back = ResilientStore(dynamo, Outbox(outbox))  # replays in the background as it starts
    back.drain()
    back.close()
    assert len(list(dynamo.judgements())) == len(pairs)


def test_only_the_window_and_filters_asked_for_are_judged(dynamo, resilient):
    pairs = seeded_turns(dynamo)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    none = run_judge(JudgeConfig(since=tomorrow), judge_with(VERDICT), resilient, dynamo)
    assert none.judged == 0
    frank = run_judge(JudgeConfig(everything=True, model_ids=("mistral-7b-v2",)), judge_with(VERDICT), resilient, dynamo)
    bob = run_judge(JudgeConfig(everything=True, users=("bob",)), judge_with(VERDICT), resilient, dynamo)
    assert (frank.judged, bob.judged) == (1, 1)
    assert len(pairs) == 6


def test_agreement_figures_match_hand_computed_values():
    # (human rating, judge score): judge levels 5, 4 (3.5 rounds up), 2, 1, 3, 5
    pairs = [(5, 5.0), (4, 3.5), (2, 2.0), (1, 1.5), (3, 4.0), (2, 4.5)]
    result = agreement("j", pairs)
    assert [level(score) for _, score in pairs] == [5, 4, 2, 2, 4, 5]
    assert result.turns == 6
    assert result.exact == pytest.approx(3 / 6)  # (5,5), (4,4), (2,2)
    assert result.within_one == pytest.approx(5 / 6)  # all but (2, 5)
    # Spearman: Pearson of the ranks, humans [6, 5, 2.5, 1, 4, 2.5] and scores [6, 3, 2, 1, 4, 5]
    # (both mean 3.5): 12 / sqrt(17 * 17.5)
    assert result.spearman == pytest.approx(12 / (17 * 17.5) ** 0.5)
    # Quadratic kappa: 1 - sum(w*O) / sum(w*E), w = (i-j)^2 / 16, O the confusion matrix below, E from
    # its row totals (1, 2, 1, 1, 1) and column totals (0, 2, 0, 2, 2) over 6: sum(w*O) = (1 + 9 + 1) / 16,
    # sum(w*E) = 146 / 96
    assert result.kappa_quadratic == pytest.approx(1 - (11 / 16) / (146 / 96))
    assert result.confusion == [
        [0, 1, 0, 0, 0],
        [0, 1, 0, 0, 1],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 1],
    ]
    empty = agreement("j", [])
    assert (empty.turns, empty.exact, empty.spearman, empty.kappa_quadratic) == (0, None, None, None)


def test_agreement_joins_judgements_to_the_askers_ratings(dynamo, resilient):
    pairs = seeded_turns(dynamo)
    run_judge(JudgeConfig(everything=True), judge_with(VERDICT), resilient, dynamo)
    [result] = judge_agreement(dynamo.judgements(), dynamo)
    assert result.judge == f"judge-model#{JUDGE_PROMPT_VERSION}" and result.turns == len(pairs)
    ratings = sorted(feedback.rating for _, feedback in pairs)
    assert result.exact == pytest.approx(sum(r == 5 for r in ratings) / len(pairs))


@pytest.mark.slow
def test_the_local_model_replies_only_in_the_schema_asked_for(local_model_dir):
    from pipeline.llm.local_chat import LocalChatModel

    llm = LocalChatModel.load(local_model_dir, model_name="demo judge", max_new_tokens=256, temperature=0.0)
    turn, _ = make_pair(SEEDS[1])
    judgement = Judge(llm, "demo judge", attempts=1).score(turn, Reference(CORRECTION, "correction"))
    assert judgement.score in (1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5) and judgement.comment
    ScoreVerdict(score=judgement.score, comment=judgement.comment)


class Waiting(Recording):
    """A judge model that answers only once `release` is set."""

    release: Any = None

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.release.wait(30)
        return super()._generate(messages, stop, run_manager, **kwargs)


def test_online_judging_never_waits_for_the_judge(dynamo, resilient):
    release = threading.Event()
    online = OnlineJudge(Judge(Waiting(replies=[VERDICT], release=release), "judge-model"), resilient)
    turn, _ = make_pair(SEEDS[0])
    canned, _ = make_pair(SEEDS[1])
    canned = canned.model_copy(update={"generated": False})
    waited = 0.0
    for each in (turn, canned):
        dynamo.save_turn(each)
        started = time.perf_counter()
        online.submit(each)
        waited += time.perf_counter() - started
    assert waited < 0.1 and list(dynamo.judgements()) == []  # the judge is still blocked
    release.set()
    online.close()
    assert [(j.turn_id, j.reference_kind) for j in dynamo.judgements()] == [(turn.turn_id, "none")]


def test_a_failed_online_judgement_does_not_stop_the_next(dynamo, resilient):
    online = OnlineJudge(judge_with("not json", VERDICT, attempts=1), resilient)
    first, _ = make_pair(SEEDS[0])
    second, _ = make_pair(SEEDS[2])
    online.submit(first)
    online.submit(second)
    online.close()
    assert [j.turn_id for j in dynamo.judgements()] == [second.turn_id]
