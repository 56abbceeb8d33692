"""Offline review of sampled transcripts: draw answered turns into a review batch, collect each
reviewer's relevance rating (1–5), and consolidate them into a manifest that training reads as a
label source.

Sampling is reproducible: candidates are put in turn-id order first, so the same seed over the same
turns draws the same batch whatever order the store returned them in. Stratified sampling (by the
user's rating, the model version, the first cited document) shuffles each stratum with the seed and
takes one turn from each stratum in turn (equal allocation), so a rare model version or a document
asked about once is still reviewed.

Consolidation, per item: `score` is the median of the reviewers' ratings (one careless reviewer
moves it least), `agreement` is 1 − (mean absolute difference over reviewer pairs) / 4, from 1 (all
equal) to 0 (only 1s and 5s, equally split); None with fewer than two ratings. The manifest
(MANIFEST_VERSION) is one JSON object:

    {"manifest_version": 1, "batch_id": str, "seed": int, "strata": [str], "reviewers_per_item": int,
     "consolidated_at": ISO time, "items_rated": int, "mean_agreement": float | null,
     "items": [{"session_id": str, "turn_id": str, "model_id": str, "ratings": {reviewer: 1..5},
                "score": float | null, "agreement": float | null, "complete": bool}]}

`complete` is true when the item has `reviewers_per_item` ratings; `score` is null for an item
nobody rated. The export takes `score` as the relevance label of the turn (label_source "review").
"""

import json
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import combinations
from typing import Literal

from pydantic import BaseModel, Field

from pipeline.records import Citation, Turn, new_id, now_utc

Stratum = Literal["rating", "model", "document"]
MANIFEST_VERSION = 1


class Candidate(BaseModel):
    """An answered turn that may be drawn, with the asker's latest rating (None when unrated)."""

    turn: Turn
    rating: int | None = None


class ReviewItem(BaseModel):
    """What a reviewer reads: the question, the answer and its passages."""

    session_id: str
    turn_id: str
    question: str
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    model_id: str
    user_rating: int | None = None


class ReviewBatch(BaseModel):
    batch_id: str = Field(default_factory=lambda: f"review-{datetime.now(UTC):%Y%m%d-%H%M%S}-{new_id()[:6]}")
    seed: int
    strata: list[Stratum]
    reviewers_per_item: int = Field(ge=1)
    created_at: datetime = Field(default_factory=now_utc)
    items: list[ReviewItem]


class ReviewRating(BaseModel):
    batch_id: str
    turn_id: str
    reviewer: str
    relevance: int = Field(ge=1, le=5)
    rated_at: datetime = Field(default_factory=now_utc)


def stratum(candidate: Candidate, by: Sequence[Stratum]) -> tuple[str, ...]:
    turn = candidate.turn
    values = {
        "rating": str(candidate.rating) if candidate.rating else "unrated",
        "model": turn.model_id,
        "document": turn.citations[0].source if turn.citations else "(none)",
    }
    return tuple(values[name] for name in by)


def draw(candidates: Iterable[Candidate], size: int, seed: int, by: Sequence[Stratum] = ()) -> list[Candidate]:
    """`size` candidates (all of them when fewer), at random or stratified `by` (see above)."""
    if size < 1:
        raise ValueError("A review batch holds at least one transcript: give a size of 1 or more.")
    rng = random.Random(seed)
    ordered = sorted(candidates, key=lambda c: (c.turn.session_id, c.turn.turn_id))
    if not by:
        return rng.sample(ordered, min(size, len(ordered)))
    groups: dict[tuple[str, ...], list[Candidate]] = defaultdict(list)
    for candidate in ordered:
        groups[stratum(candidate, by)].append(candidate)
    for key in sorted(groups):
        rng.shuffle(groups[key])
    picked: list[Candidate] = []
    while len(picked) < size and any(groups.values()):
        for key in sorted(groups):
            if groups[key] and len(picked) < size:
                picked.append(groups[key].pop())
    return picked


def make_batch(candidates: Iterable[Candidate], size: int, seed: int, by: Sequence[Stratum], reviewers_per_item: int) -> ReviewBatch:
    drawn = draw([c for c in candidates if c.turn.generated and not c.turn.expert], size, seed, by)
    items = [
        ReviewItem(
            session_id=c.turn.session_id, turn_id=c.turn.turn_id, question=c.turn.question, answer=c.turn.answer,
            citations=c.turn.citations, model_id=c.turn.model_id, user_rating=c.rating,
        )
        for c in drawn
    ]
    return ReviewBatch(seed=seed, strata=list(by), reviewers_per_item=reviewers_per_item, items=items)


def agreement(ratings: Sequence[int]) -> float | None:
    """1 − mean absolute difference over pairs / 4; None with fewer than two ratings."""
    pairs = list(combinations(ratings, 2))
    if not pairs:
        return None
    return round(1 - statistics.fmean(abs(a - b) for a, b in pairs) / 4, 4)


def consolidate(batch: ReviewBatch, ratings: Iterable[ReviewRating]) -> dict:
    """The manifest (format above). A reviewer's latest rating of an item counts."""
    latest: dict[str, dict[str, ReviewRating]] = defaultdict(dict)
    for rating in sorted(ratings, key=lambda r: r.rated_at):
        latest[rating.turn_id][rating.reviewer] = rating
    items = []
    for item in batch.items:
        given = {reviewer: r.relevance for reviewer, r in sorted(latest[item.turn_id].items())}
        values = list(given.values())
        items.append({
            "session_id": item.session_id,
            "turn_id": item.turn_id,
            "model_id": item.model_id,
            "ratings": given,
            "score": float(statistics.median(values)) if values else None,
            "agreement": agreement(values),
            "complete": len(values) >= batch.reviewers_per_item,
        })
    agreements = [i["agreement"] for i in items if i["agreement"] is not None]
    return {
        "manifest_version": MANIFEST_VERSION,
        "batch_id": batch.batch_id,
        "seed": batch.seed,
        "strata": batch.strata,
        "reviewers_per_item": batch.reviewers_per_item,
        "consolidated_at": datetime.now(UTC).isoformat(),
        "items_rated": sum(1 for i in items if i["ratings"]),
        "mean_agreement": round(statistics.fmean(agreements), 4) if agreements else None,
        "items": items,
    }


def manifest_json(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
