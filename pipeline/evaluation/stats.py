"""The statistics every evaluation report gives: a metric's mean, p90 and variance over the
questions, a bootstrap 95% interval of its mean (eval sets are small), and the sign test of a
win/loss count. The resampling and the test are scipy's."""

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, bootstrap

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass
class Spread:
    """One metric over the questions it was measured on: `n` of them, mean, 90th percentile,
    sample variance (0.0 for a single value) and the bootstrap 95% interval of the mean
    (`low`, `high`; None for fewer than two values)."""

    n: int
    mean: float
    p90: float
    variance: float
    low: float | None
    high: float | None


def spread(values: list[float]) -> Spread | None:
    """The `Spread` of `values`; None when there are none (every judgement of it failed)."""
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    low, high = interval(values)
    return Spread(
        n=len(values),
        mean=round(float(array.mean()), 4),
        p90=round(float(np.percentile(array, 90)), 4),
        variance=round(float(array.var(ddof=1)) if len(values) > 1 else 0.0, 4),
        low=low,
        high=high,
    )


def interval(values: list[float]) -> tuple[float | None, float | None]:
    """The bootstrap 95% interval (percentile method, fixed seed, so a report is repeatable) of the
    mean of `values`; (None, None) for fewer than two values, the value twice when all are equal
    (scipy refuses to resample data that cannot vary)."""
    if len(values) < 2:
        return None, None
    if len(set(values)) == 1:
        return float(values[0]), float(values[0])
    result = bootstrap(
        (np.asarray(values, dtype=float),),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    return round(float(result.confidence_interval.low), 4), round(float(result.confidence_interval.high), 4)


def sign_test(wins: int, losses: int) -> float | None:
    """The two-sided sign test's p-value of `wins` against `losses` (ties left out, as the test
    does); None when every question tied."""
    if wins + losses == 0:
        return None
    return round(float(binomtest(wins, wins + losses, 0.5).pvalue), 4)
