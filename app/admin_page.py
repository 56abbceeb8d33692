"""The admin page: how the answers are rated, the feedback behind the numbers down to one turn, and
the export of that feedback as training data.

Only users listed in `settings.admins` may open it. First the dead letters, if any: queued turns and
feedback that DynamoDB refused for good, to retry once the cause is fixed or to discard. Feedback is
read for a period of days in which the store received it (the latest version of each user's verdict
on a turn), joined to its turns; everything below the period picker works on that table.
"""

import io
import tempfile
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app import services
from app.literal import literal
from app.agreement_panel import agreement_panel
from app.escalation_admin import escalation_figures, undelivered_notifications
from app.identity import User
from pipeline.errors import PlumbError
from pipeline.records import RATING_LABELS

DEFAULT_DAYS = 30
LEVELS = [f"{rating} {label}" for rating, label in RATING_LABELS.items()]
GROUPS = {"Rating": "level", "Day": "day", "User": "user", "Source document": "source", "Model version": "model_id"}
SORTS = {
    "Newest first": ("given", False),
    "Oldest first": ("given", True),
    "Lowest rating first": ("rating", True),
    "Highest rating first": ("rating", False),
}
COLUMNS = ["given", "rating", "level", "user", "model_id", "sources", "question", "note", "correction"]


def admin_page(user: User) -> None:
    if not user.is_admin:
        st.error("This page is for admins: ask an administrator to add you to PLUMB_ADMINS.")
        st.stop()
    st.title("Feedback")
    _dead_letters()
    undelivered_notifications()
    start, end = _period()
    try:
        feedback = _load(start, end)
    except PlumbError as error:
        st.error(str(error))
        st.stop()
    if feedback.empty:
        st.info("No feedback was received in this period.")
    else:
        chosen = _filtered(feedback)
        _overview(chosen)
        _table(chosen)
        _drill_down(chosen)
    agreement_panel()
    _export(start, end)
    _recent_exports()
    escalation_figures()


def _dead_letters() -> None:
    """Read from this server's outbox, so they show while DynamoDB is down too."""
    store = services.store()
    letters = store.dead_letters()
    if not letters:
        return
    st.subheader("Refused by the feedback store")
    st.caption(
        "These were queued while the store could not be reached and then refused for good, so they are "
        "not stored. Retry one once the cause is fixed; it syncs in the background."
    )
    for letter in letters:
        with st.container(border=True):
            st.markdown(
                f"**{letter.kind}** of {letter.user or '?'} · session `{letter.session_id}` · turn `{letter.turn_id}` · "
                f"queued {letter.queued_at:%Y-%m-%d %H:%M} · refused {letter.failed_at:%Y-%m-%d %H:%M} UTC"
            )
            st.text(letter.reason)
            retry, discard = st.columns(2)
            if retry.button("Retry", key=f"retry-{letter.seq}"):
                store.retry_dead_letter(letter.seq)
                st.rerun()
            if discard.button("Discard", key=f"discard-{letter.seq}"):
                store.discard_dead_letter(letter.seq)
                st.rerun()


def _period() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    picked = st.date_input("Feedback received between", (today - timedelta(days=DEFAULT_DAYS), today), max_value=today)
    if len(picked) != 2:
        st.info("Pick the last day of the period.")
        st.stop()
    return picked


def _load(start: date, end: date) -> pd.DataFrame:
    settings = services.settings()
    return _feedback_table(settings.dynamodb_endpoint, settings.table_prefix, start, end)


@st.cache_data(ttl=60, show_spinner="Reading feedback…")
def _feedback_table(endpoint: str, table_prefix: str, start: date, end: date) -> pd.DataFrame:
    """Cached for a minute; the endpoint and table prefix are arguments so they key the cache."""
    from pipeline.export.sources import DynamoSource, Window

    window = Window(_midnight(start), _midnight(end + timedelta(days=1)))
    source = DynamoSource(services.settings())
    with tempfile.TemporaryDirectory(prefix="plumb-admin-") as scratch:
        rows = [_row(rated) for rated in source.rated(window, Path(scratch))]
    return pd.DataFrame(rows, columns=[*COLUMNS, "day", "answer", "passages", "turn_id", "version"])


def _row(rated) -> dict:
    turn, feedback = rated.turn, rated.feedback
    return {
        "given": feedback.created_at,
        "day": feedback.created_at.date(),
        "rating": feedback.rating,
        "level": f"{feedback.rating} {RATING_LABELS[feedback.rating]}",
        "user": feedback.user,
        "model_id": turn.model_id,
        "sources": sorted({c.source for c in turn.citations}),
        "question": turn.question,
        "answer": turn.answer,
        "note": feedback.note,
        "correction": feedback.correction or "",
        "passages": [(c.label(), c.passage) for c in turn.citations],
        "turn_id": turn.turn_id,
        "version": feedback.version,
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _filtered(feedback: pd.DataFrame) -> pd.DataFrame:
    columns = st.columns(4)
    ratings = columns[0].multiselect("Rating", LEVELS, key="filter-rating")
    users = columns[1].multiselect("User", sorted(feedback["user"].unique()), key="filter-user")
    sources = columns[2].multiselect(
        "Source document", sorted({s for row in feedback["sources"] for s in row}), key="filter-source"
    )
    models = columns[3].multiselect("Model version", sorted(feedback["model_id"].unique()), key="filter-model")
    keep = pd.Series(True, index=feedback.index)
    if ratings:
        keep &= feedback["level"].isin(ratings)
    if users:
        keep &= feedback["user"].isin(users)
    if sources:
        keep &= feedback["sources"].map(lambda row: bool(set(row) & set(sources)))
    if models:
        keep &= feedback["model_id"].isin(models)
    return feedback[keep]


def negative_share(ratings: pd.Series) -> float:
    """The headline number: the share of answers rated 1-2 (disagree or strongly disagree)."""
    return float((ratings <= 2).mean()) if len(ratings) else 0.0


def _overview(feedback: pd.DataFrame) -> None:
    first, second, third = st.columns(3)
    first.metric("Negative answers (rated 1–2)", f"{negative_share(feedback['rating']):.0%}")
    second.metric("Feedback", len(feedback))
    third.metric("With a corrected answer", int((feedback["correction"] != "").sum()))
    if feedback.empty:
        return
    st.subheader("Ratings")
    counts = (
        feedback["level"].value_counts().reindex(LEVELS, fill_value=0).rename_axis("level").reset_index(name="answers")
    )
    st.altair_chart(
        alt.Chart(counts)
        .mark_bar()
        .encode(x=alt.X("level:N", sort=LEVELS, title="rating"), y="answers:Q", color=_level_color()),
        width="stretch",
    )
    over_time, per_model = st.columns(2)
    with over_time:
        st.caption("Negative share by day")
        by_day = feedback.groupby("day")["rating"].agg(negative_share).rename("negative share").reset_index()
        st.bar_chart(by_day, x="day", y="negative share")
    with per_model:
        st.caption("Ratings per model version")
        by_model = feedback.groupby(["model_id", "level"]).size().rename("answers").reset_index()
        st.altair_chart(
            alt.Chart(by_model).mark_bar().encode(x="model_id:N", y="answers:Q", color=_level_color()),
            width="stretch",
        )


def _level_color() -> alt.Color:
    return alt.Color("level:N", title="rating", scale=alt.Scale(domain=LEVELS, scheme="redyellowgreen"))


def _table(feedback: pd.DataFrame) -> None:
    st.subheader("Feedback")
    left, right = st.columns(2)
    group = left.selectbox("Group by", ["(no grouping)", *GROUPS], key="group-by")
    sort = right.selectbox("Sort by", list(SORTS), key="sort-by")
    if group in GROUPS:
        summary = grouped(feedback, GROUPS[group])
        if group == "Model version":
            summary["live"] = summary.index == _live_model_id()
        st.dataframe(summary, width="stretch")
        return
    column, ascending = SORTS[sort]
    st.dataframe(feedback.sort_values(column, ascending=ascending)[COLUMNS], width="stretch", hide_index=True)


def _live_model_id() -> str | None:
    """The model id new turns record now (`plumb model promote` changes it); None when unreadable."""
    from pipeline.models.serving import live_model_id

    try:
        return live_model_id(services.settings())
    except PlumbError:
        return None


def grouped(feedback: pd.DataFrame, column: str) -> pd.DataFrame:
    """Count, mean rating and negative share per group; a turn citing two documents counts for both."""
    rows = feedback.assign(source=feedback["sources"]).explode("source") if column == "source" else feedback
    summary = rows.groupby(column)["rating"].agg(answers="size", mean_rating="mean", negative_share=negative_share)
    return summary.sort_values("answers", ascending=False)


def _drill_down(feedback: pd.DataFrame) -> None:
    st.subheader("One turn")
    options = {
        f"{row.given:%Y-%m-%d %H:%M} · {row.user} · {row.rating} · {row.question[:80]}": index
        for index, row in feedback.sort_values("given", ascending=False).iterrows()
    }
    picked = st.selectbox("Open a turn", list(options), index=None, placeholder="Choose feedback to read in full")
    if picked is None:
        return
    row = feedback.loc[options[picked]]
    st.markdown(f"**{row.level}** from {literal(row.user)} on {row.given:%Y-%m-%d %H:%M} UTC, model {literal(row.model_id)}")
    if services.settings().trace_sample_rate > 0:  # sampled turns have a trace tagged with their id
        st.caption(f"MLflow trace, if this turn was sampled: experiment `plumb-traces`, search ``tags.`plumb.turn_id` = '{row.turn_id}'``")
    st.text("Question")
    st.code(row.question, language=None, wrap_lines=True)
    st.text("Answer")
    st.code(row.answer, language=None, wrap_lines=True)
    for label, passage in row.passages:
        with st.expander(literal(label)):
            st.text(passage)
    st.text("Note")
    st.code(row.note or "(none)", language=None, wrap_lines=True)
    st.text("Corrected answer")
    st.code(row.correction or "(none)", language=None, wrap_lines=True)


def _export(start: date, end: date) -> None:
    st.subheader("Export as training data")
    st.caption(
        "Writes SFT, preference (DPO), reward, KTO and ratings datasets for the period above, with the "
        "rating, user and model filters."
    )
    with st.form("export"):
        file_format = st.radio("File format", ["jsonl", "parquet"], horizontal=True)
        redact = st.checkbox("Redact e-mail addresses and phone numbers", value=True)
        submitted = st.form_submit_button("Export feedback", type="primary")
    if submitted:
        _run_export(start, end, file_format, redact)
    if archive := st.session_state.get("export-zip"):
        name, data = archive
        st.download_button("Download the export (zip)", data, file_name=f"{name}.zip", mime="application/zip")


def _run_export(start: date, end: date, file_format: str, redact: bool) -> None:
    from pipeline.export.job import ExportConfig, main

    ratings = tuple(int(level.split()[0]) for level in st.session_state.get("filter-rating", []))
    config = ExportConfig(
        out=str(exports_dir()),
        mode="range",
        since=_midnight(start),
        until=min(_midnight(end + timedelta(days=1)), datetime.now(UTC)),
        ratings=ratings,
        users=tuple(st.session_state.get("filter-user", [])),
        model_ids=tuple(st.session_state.get("filter-model", [])),
        file_format=file_format,
        redact=redact,
    )
    try:
        with st.spinner("Exporting…"):
            result = main(config, services.settings())
    except PlumbError as error:
        st.error(str(error))
        return
    if result.location is None:
        st.session_state.pop("export-zip", None)
        st.warning("No feedback matches the period and filters: nothing was exported.")
        return
    st.session_state["export-zip"] = (result.export_id, zipped(Path(result.location)))
    st.success(f"Exported {result.manifest['items']} feedback items as {result.export_id}.")


def exports_dir() -> Path:
    return services.settings().data_dir / "exports"


def zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def _recent_exports() -> None:
    from pipeline.export.destinations import recent_exports

    st.subheader("Recent exports")
    manifests = recent_exports(exports_dir())
    if not manifests:
        st.caption("None yet.")
    for manifest in manifests:
        rows = sum(entry["rows"] for entry in manifest["files"].values())
        with st.expander(f"{manifest['export_id']} · {manifest['items']} feedback items · {rows} rows"):
            st.json(manifest, expanded=False)
