"""How well an AI judge agrees with people, on the turns both scored.

A judge scores in half points and people in whole ones, so for the level-based figures a judge's
score is rounded half up to a level (3.5 counts as 4). Figures:

- exact agreement: share of turns where the level equals the human rating;
- within one: share where they differ by at most one level;
- Spearman's rank correlation of the raw scores (scipy.stats.spearmanr);
- Cohen's kappa with quadratic weights on the levels (sklearn.metrics.cohen_kappa_score), which
  counts a 1-vs-5 disagreement sixteen times a 1-vs-2 one;
- the 5x5 confusion matrix, rows the human rating, columns the judge's level.

The same figures compare a judge with subject-matter experts' reviews; a pairwise judge is compared
with people's preferences (the higher-rated of two answers to one prompt) on the pairs neither calls
a tie.
"""

import math
from dataclasses import dataclass

from pipeline.records import PairOutcome, Review

LEVELS = [1, 2, 3, 4, 5]


@dataclass(frozen=True)
class Agreement:
    judge: str
    turns: int
    exact: float | None
    within_one: float | None
    spearman: float | None
    kappa_quadratic: float | None
    confusion: list[list[int]]  # [human rating - 1][judge level - 1]


def level(score: float) -> int:
    """A judge's half-point score as a whole level, rounded half up."""
    return math.floor(score + 0.5)


def agreement(judge: str, pairs: list[tuple[int, float]]) -> Agreement:
    """Agreement of (human rating, judge score) pairs; figures are None where they are undefined
    (no pairs, or a correlation of constant values)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    humans = [human for human, _ in pairs]
    scores = [score for _, score in pairs]
    levels = [level(score) for score in scores]
    if not pairs:
        return Agreement(judge, 0, None, None, None, None, [[0] * 5 for _ in LEVELS])
    exact = sum(h == lv for h, lv in zip(humans, levels, strict=True)) / len(pairs)
    within = sum(abs(h - lv) <= 1 for h, lv in zip(humans, levels, strict=True)) / len(pairs)
    rho = spearmanr(humans, scores).statistic if len(set(humans)) > 1 and len(set(scores)) > 1 else None
    kappa = cohen_kappa_score(humans, levels, labels=LEVELS, weights="quadratic")
    return Agreement(
        judge=judge,
        turns=len(pairs),
        exact=exact,
        within_one=within,
        spearman=None if rho is None else float(rho),
        kappa_quadratic=None if math.isnan(kappa) else float(kappa),
        confusion=confusion_matrix(humans, levels, labels=LEVELS).tolist(),
    )


def judge_agreement(judgements, store) -> list[Agreement]:
    """Agreement per judge (model and prompt version) over `judgements` whose turn the asker rated:
    one feedback read per judgement."""
    by_judge: dict[str, list[tuple[int, float]]] = {}
    for judgement in judgements:
        feedback = store.latest_feedback(judgement.turn_id, judgement.user)
        if feedback is not None:
            by_judge.setdefault(judgement.judge, []).append((feedback.rating, judgement.score))
    return [agreement(judge, pairs) for judge, pairs in sorted(by_judge.items())]


def latest_reviews(reviews) -> dict[tuple[str, str], Review]:
    """The decision that counts per judgement, (turn_id, judge) -> the highest review version."""
    latest: dict[tuple[str, str], Review] = {}
    for review in reviews:
        key = (review.turn_id, review.judge)
        if key not in latest or review.version > latest[key].version:
            latest[key] = review
    return latest


def sme_agreement(judgements, reviews) -> list[Agreement]:
    """Agreement per judge with subject-matter experts, over the judgements they reviewed: the
    expert's score is the AI's where they accepted it and their own where they overrode it, as a
    level (rounded half up) in the place of a user's rating."""
    latest = latest_reviews(reviews)
    by_judge: dict[str, list[tuple[int, float]]] = {}
    for judgement in judgements:
        review = latest.get((judgement.turn_id, judgement.judge))
        if review is not None:
            by_judge.setdefault(judgement.judge, []).append((level(review.score), judgement.score))
    return [agreement(judge, pairs) for judge, pairs in sorted(by_judge.items())]


@dataclass(frozen=True)
class PairAgreement:
    """A pairwise judge against people on pairs of answers both askers rated: `pairs` such pairs,
    `non_tied` those where neither the judge nor the ratings call a tie, `agreement` the share of
    those where both prefer the same answer (None without any), `judge_ties` the pairs the judge
    called a tie (its answers disagreed between the two orders, or it said tie)."""

    judge: str
    pairs: int
    non_tied: int
    agreement: float | None
    judge_ties: int


def pair_agreement(judge: str, outcomes: list[tuple[PairOutcome, PairOutcome]]) -> PairAgreement:
    """Agreement of (people's outcome, judge's outcome) per pair; the MT-Bench study's figure on
    non-tied pairs, where strong judges agree with people about as often as people agree with each
    other (80-85%)."""
    non_tied = [(human, ai) for human, ai in outcomes if human != "tie" and ai != "tie"]
    agree = sum(human == ai for human, ai in non_tied)
    return PairAgreement(
        judge=judge,
        pairs=len(outcomes),
        non_tied=len(non_tied),
        agreement=agree / len(non_tied) if non_tied else None,
        judge_ties=sum(ai == "tie" for _, ai in outcomes),
    )


def preferred(first_rating: int, second_rating: int) -> PairOutcome:
    """People's outcome of a pair: the higher-rated side, a tie when rated alike."""
    if first_rating == second_rating:
        return "tie"
    return "first" if first_rating > second_rating else "second"


def judge_pair_agreement(verdicts, store) -> list[PairAgreement]:
    """Agreement per pairwise judge over `verdicts` whose two sides their askers both rated: two
    feedback reads per verdict."""
    by_judge: dict[str, list[tuple[PairOutcome, PairOutcome]]] = {}
    for verdict in verdicts:
        first = store.latest_feedback(verdict.first_turn_id, verdict.first_user)
        second = store.latest_feedback(verdict.second_turn_id, verdict.second_user)
        if first is not None and second is not None:
            human = preferred(first.rating, second.rating)
            by_judge.setdefault(verdict.judge, []).append((human, verdict.outcome))
    return [pair_agreement(judge, outcomes) for judge, outcomes in sorted(by_judge.items())]
