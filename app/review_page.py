"""The review page: subject-matter experts check the AI judge's scores by filtering, sorting and
grouping them instead of reading every answer, then accept a score or override it with a reason.

Only users listed in `settings.reviewers` may open it. A decision is stored as a new version of the
review of that judgement (pipeline/feedback: `plumb-reviews`); the judgement itself is never
changed, so the AI's score and every decision on it stay readable. The time from opening a
judgement to deciding is stored with the decision.
"""

import time

import pandas as pd
import streamlit as st

from app import services
from app.literal import literal
from app.identity import User
from app.review_data import AGREEMENT, COLUMNS, review_table
from pipeline.errors import PlumbError
from pipeline.records import JUDGE_SCORES, Review

GROUPS = {
    "AI score": "ai_score",
    "AI vs user": "agreement",
    "Model version": "model_id",
    "Source document": "source",
    "Status": "status",
}
SORTS = {
    "Largest disagreement first": ("distance", False),
    "Lowest AI score first": ("ai_score", True),
    "Highest AI score first": ("ai_score", False),
    "Newest first": ("judged_at", False),
}
STATUSES = ["All", "Pending", "Reviewed"]
DECISIONS = {"Accept the AI score": "accept", "Override": "override"}
DONE = {"accept": "accepted", "override": "overridden"}


def review_page(user: User) -> None:
    if not user.is_reviewer:
        st.error("This page is for reviewers: ask an administrator to add you to PLUMB_REVIEWERS.")
        st.stop()
    st.title("Review AI scores")
    if saved := st.session_state.pop("review-saved", None):
        st.success(saved)
    try:
        table, history = _load()
    except PlumbError as error:
        st.error(str(error))
        st.stop()
    if table.empty:
        st.info("No answer has been judged yet: run `plumb judge`.")
        return
    _counts(table, history)
    chosen = filtered(table, **_filters(table))
    picked = _table(chosen)
    if picked is not None:
        _detail(picked, history.get((picked.turn_id, picked.judge), []), user)


@st.cache_data(ttl=60, show_spinner="Reading judgements…")
def _load() -> tuple[pd.DataFrame, dict]:
    from pipeline.feedback.dynamo import DynamoFeedbackStore

    return review_table(DynamoFeedbackStore(services.settings()))


def _counts(table: pd.DataFrame, history: dict) -> None:
    seconds = [review.seconds for versions in history.values() for review in versions]
    reviewed, pending, spent = st.columns(3)
    reviewed.metric("Reviewed", int((table["status"] != "pending").sum()))
    pending.metric("Pending", int((table["status"] == "pending").sum()))
    spent.metric("Median time per review", f"{pd.Series(seconds).median():.0f} s" if seconds else "–")


def _filters(table: pd.DataFrame) -> dict:
    first, second, third = st.columns(3)
    fourth, fifth = st.columns(2)
    return {
        "status": first.selectbox("Status", STATUSES, key="filter-status"),
        "agreement": second.multiselect("AI vs user", list(AGREEMENT.values()), key="filter-agreement"),
        "scores": third.multiselect("AI score", list(JUDGE_SCORES), key="filter-score"),
        "models": fourth.multiselect("Model version", sorted(table["model_id"].unique()), key="filter-model"),
        "sources": fifth.multiselect(
            "Source document", sorted({s for row in table["sources"] for s in row}), key="filter-source"
        ),
    }


def filtered(
    table: pd.DataFrame, status: str, agreement: list[str], scores: list[float], models: list[str], sources: list[str]
) -> pd.DataFrame:
    """The judgements that match every filter given; an empty filter keeps everything."""
    keep = pd.Series(True, index=table.index)
    if status != "All":
        keep &= (table["status"] == "pending") == (status == "Pending")
    if agreement:
        keep &= table["agreement"].isin(agreement)
    if scores:
        keep &= table["ai_score"].isin(scores)
    if models:
        keep &= table["model_id"].isin(models)
    if sources:
        keep &= table["sources"].map(lambda row: bool(set(row) & set(sources)))
    return table[keep]


def grouped(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Judgements, mean AI score, mean user rating and reviews per group; a turn citing two documents
    counts for both."""
    rows = table.assign(source=table["sources"]).explode("source") if column == "source" else table
    return rows.groupby(column).agg(
        judgements=("ai_score", "size"),
        mean_ai_score=("ai_score", "mean"),
        mean_user_rating=("user_rating", "mean"),
        reviewed=("status", lambda s: int((s != "pending").sum())),
    )


def _table(table: pd.DataFrame):
    """The judgements as a table to pick one from (one click on a row), or a summary per group."""
    left, right = st.columns(2)
    group = left.selectbox("Group by", ["(no grouping)", *GROUPS], key="group-by")
    sort = right.selectbox("Sort by", list(SORTS), key="sort-by")
    if group in GROUPS:
        st.dataframe(grouped(table, GROUPS[group]), width="stretch")
        return None
    column, ascending = SORTS[sort]
    shown = table.assign(distance=table["gap"].abs()).sort_values(column, ascending=ascending, na_position="last")
    event = st.dataframe(
        shown[COLUMNS],
        width="stretch",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="review-table",
        column_config={
            "ai_score": st.column_config.NumberColumn("AI score", format="%.1f"),
            "user_rating": st.column_config.NumberColumn("user rating"),
            "gap": st.column_config.NumberColumn("AI − user", help="The AI's level (half up) less the user's rating."),
            "reviewed_score": st.column_config.NumberColumn("reviewed score", format="%.1f"),
            "sources": st.column_config.ListColumn("documents"),
        },
    )
    st.caption(f"{len(shown)} judgements. Click a row to review it.")
    rows = event.selection.rows
    if not rows or rows[0] >= len(shown):
        return None
    return shown.iloc[rows[0]]


def _detail(row: pd.Series, versions: list[Review], user: User) -> None:
    key = (row.turn_id, row.judge)
    opened = st.session_state.get("review-opened")
    if opened is None or opened[0] != key:
        st.session_state["review-opened"] = (key, time.monotonic())
    st.subheader(row.question)
    ai, person = st.columns(2)
    with ai.container(border=True):
        st.markdown(f"**AI judge** `{row.judge}` · reference: {row.reference_kind}")
        st.metric("AI score", f"{row.ai_score:.1f}")
        st.text(row.comment)
    with person.container(border=True):
        st.markdown(f"**The user's verdict** · {row.rating_label}")
        st.text("Note")
        st.code(row.note or "(none)", language=None, wrap_lines=True)
        st.text("Corrected answer")
        st.code(row.correction or "(none)", language=None, wrap_lines=True)
    st.text("Answer")
    st.code(row.answer, language=None, wrap_lines=True)
    for label, passage in row.passages:
        with st.expander(literal(label)):
            st.text(passage)
    if versions:
        st.caption("Decisions so far (the highest version counts; the AI's judgement is kept as it was)")
        st.dataframe(pd.DataFrame([v.model_dump(exclude={"submission_id"}) for v in versions]), hide_index=True)
    _decide(row, user)


def _decide(row: pd.Series, user: User) -> None:
    with st.form("review"):
        decision = st.radio("Decision", list(DECISIONS), horizontal=True, key="review-decision")
        score = st.select_slider("Score, if you override", JUDGE_SCORES, value=row.ai_score, key="review-score")
        reason = st.text_area("Reason (needed to override)", key="review-reason")
        if not st.form_submit_button("Save review", type="primary"):
            return
    action = DECISIONS[decision]
    _, opened_at = st.session_state["review-opened"]
    try:
        review = Review(
            session_id=row.session_id,
            turn_id=row.turn_id,
            judge=row.judge,
            reviewer=user.name,
            action=action,
            score=row.ai_score if action == "accept" else score,
            reason=reason,
            seconds=round(time.monotonic() - opened_at, 1),
        )
        saved = services.store().save_review(review)
    except (ValueError, PlumbError) as error:
        st.error(_problem(error))
        return
    st.session_state["review-opened"] = ((row.turn_id, row.judge), time.monotonic())
    _load.clear()
    state = "it will sync when the store is back" if saved.queued else f"version {saved.record.version}"
    st.session_state["review-saved"] = f"Saved: the score is {DONE[action]} ({state})."
    st.rerun()


def _problem(error: Exception) -> str:
    """One sentence for a review that cannot be saved (pydantic's message without its frame)."""
    if isinstance(error, PlumbError):
        return str(error)
    first = error.errors()[0]["msg"] if hasattr(error, "errors") else str(error)
    return f"The review was not saved: {first.removeprefix('Value error, ')}."
