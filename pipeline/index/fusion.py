"""Reciprocal rank fusion: how hybrid search merges the dense and the keyword ranking.

RRF uses ranks only, so it needs no calibration between cosine similarities and BM25 scores, whose
scales have nothing in common (Cormack, Clarke and Buettcher, SIGIR 2009). It is a few lines, so it
is written here rather than taken from a search engine that would then have to hold the data.
"""

from collections.abc import Hashable, Sequence
from typing import TypeVar

Item = TypeVar("Item", bound=Hashable)

RRF_CONSTANT = 60  # the paper's constant: dampens the weight of the very first ranks


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Item]], k: int) -> list[tuple[Item, float]]:
    """The best `k` items of all `rankings` (each best first) with their fused scores, best first."""
    scores: dict[Item, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_CONSTANT + rank)
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)[:k]
