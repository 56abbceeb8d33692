"""The table the review page works on: one row per AI judgement, joined to its turn, the asker's
latest rating and correction, and the experts' latest decision on it (see app/review_page.py)."""

import pandas as pd

from pipeline.judge.agreement import latest_reviews, level
from pipeline.records import RATING_LABELS, Review

COLUMNS = [
    "status",
    "ai_score",
    "user_rating",
    "gap",
    "reviewed_score",
    "judge",
    "model_id",
    "sources",
    "question",
    "comment",
    "judged_at",
]
DETAIL = ["turn_id", "session_id", "agreement", "answer", "passages", "reference_kind", "note", "correction",
          "rating_label"]
AGREEMENT = {  # how the AI's level and the user's rating compare, as the filter and groups name it
    "disagree": "Disagree (2+ levels apart)",
    "near": "Differ by one level",
    "agree": "Agree",
    "unrated": "User did not rate",
}


def review_table(dynamo) -> tuple[pd.DataFrame, dict[tuple[str, str], list[Review]]]:
    """Every judgement as a row (see COLUMNS, plus the texts the detail view shows), and every
    review version per (turn_id, judge), oldest first. One turn read and one feedback read per
    judgement: a page for the hundreds of answers a reviewer works through, not for millions."""
    history: dict[tuple[str, str], list[Review]] = {}
    for review in sorted(dynamo.reviews(), key=lambda r: r.version):
        history.setdefault((review.turn_id, review.judge), []).append(review)
    latest = latest_reviews(r for versions in history.values() for r in versions)
    rows = []
    for judgement in dynamo.judgements():
        turn = dynamo.get_turn(judgement.session_id, judgement.turn_id)
        if turn is None:
            continue
        feedback = dynamo.latest_feedback(judgement.turn_id, judgement.user)
        rows.append(_row(judgement, turn, feedback, latest.get((judgement.turn_id, judgement.judge))))
    table = pd.DataFrame(rows, columns=[*COLUMNS, *DETAIL])
    return table, history


def _row(judgement, turn, feedback, review: Review | None) -> dict:
    rating = feedback.rating if feedback else None
    gap = None if rating is None else level(judgement.score) - rating
    return {
        "status": "pending" if review is None else ("overridden" if review.action == "override" else "accepted"),
        "ai_score": judgement.score,
        "user_rating": rating,
        "gap": gap,
        "reviewed_score": None if review is None else review.score,
        "judge": judgement.judge,
        "model_id": turn.model_id,
        "sources": sorted({c.source for c in turn.citations}),
        "question": turn.question,
        "comment": judgement.comment,
        "judged_at": judgement.judged_at,
        "turn_id": turn.turn_id,
        "session_id": turn.session_id,
        "agreement": _agreement(gap),
        "answer": turn.answer,
        "passages": [(c.label(), c.passage) for c in turn.citations],
        "reference_kind": judgement.reference_kind,
        "note": feedback.note if feedback else "",
        "correction": (feedback.correction or "") if feedback else "",
        "rating_label": f"{rating} {RATING_LABELS[rating]}" if rating else "not rated",
    }


def _agreement(gap: int | None) -> str:
    if gap is None:
        return AGREEMENT["unrated"]
    if abs(gap) >= 2:
        return AGREEMENT["disagree"]
    return AGREEMENT["near"] if gap else AGREEMENT["agree"]
