"""The reviewer's page for review batches (`plumb review sample`): each sampled answer with its
question and passages, rated for relevance from 1 (irrelevant) to 5 (fully relevant).

A transcript is offered until it has the batch's number of reviewers; a reviewer's own rating can
be changed, the latest counting. Routed for the reviewer role by app/main.py.
"""

import streamlit as st

from app import services
from app.literal import literal
from app.identity import User
from pipeline.errors import PlumbError
from pipeline.escalation.review import ReviewBatch, ReviewItem, ReviewRating

RELEVANCE = {1: "1 irrelevant", 2: "2 mostly irrelevant", 3: "3 partly relevant", 4: "4 relevant", 5: "5 fully relevant"}


def to_review(batch: ReviewBatch, ratings: list[ReviewRating], reviewer: str) -> list[tuple[ReviewItem, int | None]]:
    """The items this reviewer should see, each with their own rating (None when not rated yet):
    those they rated, and those still short of the batch's reviewers per item."""
    mine = {r.turn_id: r.relevance for r in ratings if r.reviewer == reviewer}
    others: dict[str, set[str]] = {}
    for r in ratings:
        if r.reviewer != reviewer:
            others.setdefault(r.turn_id, set()).add(r.reviewer)
    return [
        (item, mine.get(item.turn_id))
        for item in batch.items
        if item.turn_id in mine or len(others.get(item.turn_id, ())) < batch.reviewers_per_item
    ]


def review_batch_page(user: User) -> None:
    st.title("Review answers")
    reviews = services.store().review_batches
    try:
        batches = reviews.batch_ids()
        if not batches:
            st.info("No review batches yet: an admin draws one with `plumb review sample`.")
            return
        batch_id = st.selectbox("Batch", batches, key="review-batch")
        found = reviews.batch(batch_id)
    except PlumbError as exc:
        st.error(str(exc))
        st.stop()
    if found is None:
        st.warning(f"The review batch {batch_id} no longer exists.")
        return
    batch, ratings = found
    items = to_review(batch, ratings, user.name)
    done = sum(rating is not None for _, rating in items)
    st.progress(done / len(items) if items else 1.0, text=f"{done} of {len(items)} rated by you")
    for item, rating in items:
        _item(batch_id, item, rating, user)


def _item(batch_id: str, item: ReviewItem, rating: int | None, user: User) -> None:
    with st.container(border=True):
        st.markdown("**Question**")
        st.text(item.question)
        st.markdown("**Answer**")
        st.text(item.answer)
        for number, citation in enumerate(item.citations, start=1):
            with st.expander(f"[{number}] {literal(citation.label())}"):
                st.text(citation.passage)
        levels = list(RELEVANCE)
        chosen = st.radio("Relevance", levels, format_func=RELEVANCE.get, horizontal=True, key=f"rel-{item.turn_id}",
                          index=levels.index(rating) if rating else None)
        if st.button("Save rating", key=f"save-rel-{item.turn_id}", disabled=chosen is None):
            try:
                services.store().review_batches.rate(ReviewRating(batch_id=batch_id, turn_id=item.turn_id, reviewer=user.name,
                                                           relevance=chosen))
            except PlumbError as exc:
                st.error(str(exc))
                return
            st.rerun()
        if rating is not None:
            st.caption(f"Your rating: {RELEVANCE[rating]}")
