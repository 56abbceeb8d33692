"""How well an AI judge agrees with people, on the turns both scored.

A judge scores in half points and people in whole ones, so for the level-based figures a judge's
score is rounded half up to a level (3.5 counts as 4). Figures:

- exact agreement: share of turns where the level equals the human rating;
- within one: share where they differ by at most one level;
- Spearman's rank correlation of the raw scores (scipy.stats.spearmanr);
- Cohen's kappa with quadratic weights on the levels (sklearn.metrics.cohen_kappa_score), which
  counts a 1-vs-5 disagreement sixteen times a 1-vs-2 one;
- the 5x5 confusion matrix, rows the human rating, columns the judge's level.
"""

import math
from dataclasses import dataclass

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
