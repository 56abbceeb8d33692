"""Pairwise verdicts and expert reviews as the feedback store's items, and back (see tables.py for
their tables and keys)."""

from datetime import datetime

from pipeline.feedback.tables import PairJudgementItem, ReviewItem
from pipeline.records import PairJudgement, Review


def review_key(turn_id: str, judge: str) -> str:
    """Unambiguous: turn ids may not contain '#', so the first '#' ends the turn id."""
    return f"{turn_id}#{judge}"


def pair_item(model: type[PairJudgementItem], verdict: PairJudgement, stored_at: datetime) -> PairJudgementItem:
    return model(
        verdict.pair,
        verdict.judge,
        first_session_id=verdict.first_session_id,
        first_turn_id=verdict.first_turn_id,
        first_user=verdict.first_user,
        second_session_id=verdict.second_session_id,
        second_turn_id=verdict.second_turn_id,
        second_user=verdict.second_user,
        judge_model=verdict.judge_model,
        prompt_version=verdict.prompt_version,
        outcome=verdict.outcome,
        judged_at=verdict.judged_at,
        stored_at=stored_at,
    )


def item_pair(item: PairJudgementItem) -> PairJudgement:
    return PairJudgement(
        first_session_id=item.first_session_id,
        first_turn_id=item.first_turn_id,
        first_user=item.first_user,
        second_session_id=item.second_session_id,
        second_turn_id=item.second_turn_id,
        second_user=item.second_user,
        judge_model=item.judge_model,
        prompt_version=item.prompt_version,
        outcome=item.outcome,
        judged_at=item.judged_at,
    )


def review_item(model: type[ReviewItem], review: Review, stored_at: datetime) -> ReviewItem:
    return model(
        review_key(review.turn_id, review.judge),
        review.version,
        submission_id=review.submission_id,
        session_id=review.session_id,
        turn_id=review.turn_id,
        judge=review.judge,
        reviewer=review.reviewer,
        action=review.action,
        score=review.score,
        reason=review.reason,
        seconds=review.seconds,
        reviewed_at=review.reviewed_at,
        stored_at=stored_at,
    )


def item_review(item: ReviewItem) -> Review:
    return Review(
        submission_id=item.submission_id,
        session_id=item.session_id,
        turn_id=item.turn_id,
        judge=item.judge,
        reviewer=item.reviewer,
        action=item.action,
        score=item.score,
        reason=item.reason,
        seconds=item.seconds,
        reviewed_at=item.reviewed_at,
        version=item.version,
    )

