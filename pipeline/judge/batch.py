"""The `plumb judge` job: score every answered turn of a time window with the configured judge.

Resumable: a turn this judge (model and prompt version) already judged is skipped, so a run that
was stopped or lost its endpoint half way is simply run again. Skipped unless its reference has
grown stronger since (records.REFERENCE_KINDS): a turn judged with no reference, online when it was
answered, is judged again against the correction its user gave later, and the new judgement
replaces the old. Each judgement is written as soon as it is made, through the store's never-lost
path (DynamoDB, or the local outbox while DynamoDB cannot be reached). Requests run `concurrency`
at a time: vLLM batches parallel requests, so the judge's throughput grows with them; the
in-process demo judge answers one at a time whatever the setting.
"""

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice

from pipeline.errors import ConfigError
from pipeline.judge.judge import Judge, JudgeFailed
from pipeline.judge.prompts import JUDGE_PROMPT_VERSION
from pipeline.judge.references import Approved, approved_answers, reference_for
from pipeline.records import REFERENCE_KINDS, Judgement, ReferenceKind, Turn, judge_key, weaker_references

BATCH = 100  # turns per read of "already judged?" (DynamoDB's BatchGetItem takes 100 keys)


@dataclass(frozen=True)
class JudgeConfig:
    """Which turns to judge: created in [since, until), or every turn with `everything`; only those
    answered by `model_ids` or asked by `users` when given."""

    since: datetime | None = None
    until: datetime | None = None
    everything: bool = False
    model_ids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    concurrency: int = 8

    def __post_init__(self) -> None:
        if self.everything == (self.since is not None):
            raise ConfigError("Judging not started: give --since DATE (and optionally --until) or --all, not both.")
        if self.until and not self.since:
            raise ConfigError("Judging not started: --until goes with --since.")
        if self.since and self.until and _utc(self.since) >= _utc(self.until):
            raise ConfigError(f"Judging not started: --since {self.since:%Y-%m-%d %H:%M} is not before --until.")
        if self.concurrency < 1:
            raise ConfigError(f"Judging not started: concurrency {self.concurrency} is less than 1.")

    def accepts(self, turn: Turn) -> bool:
        return (not self.model_ids or turn.model_id in self.model_ids) and (not self.users or turn.user in self.users)


@dataclass
class JudgeSummary:
    """What a run did: turns judged now, skipped (judged before by this judge, or nothing a model
    wrote to judge), failed (no valid verdict in the tries allowed), queued (stored in the outbox
    while DynamoDB could not be reached), and the references used."""

    judge: str
    judged: int = 0
    already_judged: int = 0
    rejudged: int = 0  # of `judged`: judged before against a weaker reference
    not_generated: int = 0
    failed: int = 0
    queued: int = 0
    references: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # the first few reasons


def run_judge(
    cfg: JudgeConfig, judge: Judge, store, dynamo, progress: Callable[[int], None] = lambda n: None
) -> JudgeSummary:
    """Judge the turns `cfg` selects. `store` writes the judgements (the never-lost ResilientStore);
    `dynamo` (DynamoFeedbackStore) reads turns, feedback, experts' reviews and what is judged
    already. `progress(n)` is told of every n turns dealt with (judged, skipped or failed). Raises the
    store's or the endpoint's error (StoreUnavailable, ModelUnavailable) when one is down for reads
    or answers: what was judged until then is kept, and the next run resumes."""
    key = judge_key(judge.model_id, JUDGE_PROMPT_VERSION)
    summary = JudgeSummary(judge=key)
    approved = approved_answers(dynamo)
    turns = dynamo.turns_between(cfg.since, cfg.until or datetime.now(UTC))
    with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
        for batch in _batches((t for t in turns if cfg.accepts(t)), BATCH):
            judged = dynamo.judged([t.turn_id for t in batch], key)
            todo = _to_judge(batch, judged, summary)
            if len(todo) < len(batch):
                progress(len(batch) - len(todo))
            befores = [judged.get(turn.turn_id) for turn in todo]
            outcomes = pool.map(lambda turn, before: _judge_one(turn, before, judge, dynamo, approved), todo, befores)
            for turn, outcome in zip(todo, outcomes, strict=True):
                _count(outcome, turn.turn_id in judged, store, summary)
                progress(1)
    return summary


def _to_judge(batch: list[Turn], judged: dict[str, ReferenceKind], summary: JudgeSummary) -> list[Turn]:
    """The turns that may need a judgement: not judged yet, or judged against less than a correction
    (whether a stronger reference exists now is read with the reference, in the worker)."""
    todo = []
    for turn in batch:
        if judged.get(turn.turn_id) == REFERENCE_KINDS[-1]:  # nothing stronger can come
            summary.already_judged += 1
        elif not turn.generated or not turn.answer.strip():
            summary.not_generated += 1  # the canned "not covered" text, or nothing: no model wrote it
        else:
            todo.append(turn)
    return todo


def _judge_one(
    turn: Turn, before: ReferenceKind | None, judge: Judge, dynamo, approved: dict[str, list[Approved]]
) -> Judgement | JudgeFailed | None:
    """The turn's judgement, or None when it was judged `before` against as strong a reference as
    there is now."""
    reference = reference_for(turn, dynamo, approved)
    if before is not None and before not in weaker_references(reference.kind):
        return None
    try:
        return judge.score(turn, reference)
    except JudgeFailed as failure:
        return failure


def _count(outcome: Judgement | JudgeFailed | None, judged_before: bool, store, summary: JudgeSummary) -> None:
    if outcome is None:
        summary.already_judged += 1
        return
    if isinstance(outcome, JudgeFailed):
        summary.failed += 1
        if len(summary.failures) < 5:
            summary.failures.append(str(outcome))
        return
    saved = store.save_judgement(outcome)
    summary.judged += 1
    summary.rejudged += judged_before
    summary.queued += saved.queued
    summary.references[outcome.reference_kind] += 1


def _batches(items: Iterable[Turn], size: int) -> Iterator[list[Turn]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
