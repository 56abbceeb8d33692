"""`plumb judge pairs`: the pairwise judge on answers to the same prompt, for preference data and
evaluation.

Two answers are compared only when the model was sent the very same prompt for both (the same
messages, as the export rebuilds them: earlier exchanges, passages and question), so a verdict says
which answer is better for one input, never across inputs. Each prompt's distinct answers are
compared pair by pair, oldest first, at most PAIRS_PER_PROMPT pairs. Like `plumb judge` it is
resumable: a pair this judge (model and pairwise prompt version) compared before is skipped, and
each verdict is written as soon as it is made through the never-lost store.
"""

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations, islice

import orjson

from pipeline.export.formats import prompt
from pipeline.judge.batch import BATCH, JudgeConfig
from pipeline.judge.judge import Judge, JudgeFailed
from pipeline.judge.prompts import PAIRWISE_PROMPT_VERSION
from pipeline.records import PairJudgement, Turn, judge_key, pair_key

PAIRS_PER_PROMPT = 10  # each pair costs two requests (both orders)
OUTCOMES = {"A": "first", "B": "second", "tie": "tie"}


@dataclass
class PairSummary:
    """What a run did: pairs compared now, compared before by this judge, failed, queued (kept in
    the outbox while DynamoDB could not be reached), and the prompts that had two answers or more."""

    judge: str
    prompts: int = 0
    compared: int = 0
    already_compared: int = 0
    failed: int = 0
    queued: int = 0
    failures: list[str] = field(default_factory=list)  # the first few reasons


def prompt_digest(turn: Turn) -> bytes:
    """Equal for two turns exactly when the model was sent the same messages for both."""
    return hashlib.blake2b(orjson.dumps(prompt(turn)), digest_size=16).digest()


def same_prompt_pairs(turns: Iterator[Turn]) -> Iterator[tuple[Turn, Turn]]:
    """(first, second) pairs of distinct answers to one prompt, first the turn with the smaller id,
    at most PAIRS_PER_PROMPT per prompt. Turns whose prompt cannot be rebuilt or whose answer no
    model wrote take no part. Holds the window's comparable turns in memory, grouped by prompt."""
    groups: dict[bytes, dict[str, Turn]] = {}
    for turn in turns:
        if turn.history is None or not turn.generated or not turn.answer.strip():
            continue
        answers = groups.setdefault(prompt_digest(turn), {})
        known = answers.get(turn.answer)
        if known is None or turn.created_at < known.created_at:
            answers[turn.answer] = turn  # one turn per distinct answer: the oldest
    for answers in groups.values():
        ordered = sorted(answers.values(), key=lambda t: (t.created_at, t.turn_id))
        for a, b in islice(combinations(ordered, 2), PAIRS_PER_PROMPT):
            yield (a, b) if a.turn_id < b.turn_id else (b, a)


def run_pairs(
    cfg: JudgeConfig, judge: Judge, store, dynamo, progress: Callable[[int], None] = lambda n: None
) -> PairSummary:
    """Compare the answers to each prompt among the turns `cfg` selects; `store` writes verdicts (the
    never-lost ResilientStore), `dynamo` (DynamoFeedbackStore) reads turns and what is compared already.
    Raises the store's or the endpoint's error when one is down for reads or answers; what was
    compared until then is kept, and the next run resumes. `progress(n)` is told of every n pairs
    dealt with (compared, skipped or failed)."""
    key = judge_key(judge.model_id, PAIRWISE_PROMPT_VERSION)
    summary = PairSummary(judge=key)
    turns = (t for t in dynamo.turns_between(cfg.since, cfg.until or datetime.now(UTC)) if cfg.accepts(t))
    pairs = list(same_prompt_pairs(turns))
    summary.prompts = len({prompt_digest(first) for first, _ in pairs})
    with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
        for start in range(0, len(pairs), BATCH):
            batch = pairs[start : start + BATCH]
            done = dynamo.pairs_judged([pair_key(a.turn_id, b.turn_id) for a, b in batch], key)
            todo = [(a, b) for a, b in batch if pair_key(a.turn_id, b.turn_id) not in done]
            summary.already_compared += len(batch) - len(todo)
            if len(todo) < len(batch):
                progress(len(batch) - len(todo))
            for outcome in pool.map(lambda pair: _compare(*pair, judge), todo):
                _count(outcome, store, summary)
                progress(1)
    return summary


def _compare(first: Turn, second: Turn, judge: Judge) -> PairJudgement | JudgeFailed:
    try:
        outcome = judge.compare(first.question, first.citations, first.answer, second.answer)
    except JudgeFailed as failure:
        return failure
    return PairJudgement(
        first_session_id=first.session_id,
        first_turn_id=first.turn_id,
        first_user=first.user,
        second_session_id=second.session_id,
        second_turn_id=second.turn_id,
        second_user=second.user,
        judge_model=judge.model_id,
        prompt_version=PAIRWISE_PROMPT_VERSION,
        outcome=OUTCOMES[outcome],
    )


def _count(outcome: PairJudgement | JudgeFailed, store, summary: PairSummary) -> None:
    if isinstance(outcome, JudgeFailed):
        summary.failed += 1
        if len(summary.failures) < 5:
            summary.failures.append(str(outcome))
        return
    summary.compared += 1
    summary.queued += store.save_pair_judgement(outcome).queued
