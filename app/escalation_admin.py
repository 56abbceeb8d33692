"""The admin page's escalation section: notifications not delivered yet (retried in the background,
never dropped; here to see why, and to retry at once once the receiver is fixed), escalations per
day, and how long users wait for an expert."""

from collections.abc import Iterable

import pandas as pd
import streamlit as st

from app import services
from pipeline.errors import PlumbError
from pipeline.escalation.records import Escalation


def escalations_per_day(escalations: Iterable[Escalation]) -> pd.DataFrame:
    """Columns day (UTC date) and escalations, one row per day that had any, oldest first."""
    days = pd.Series([e.created_at.date() for e in escalations], dtype=object)
    counts = days.value_counts().sort_index()
    return pd.DataFrame({"day": counts.index, "escalations": counts.to_numpy()})


def first_response_minutes(escalations: Iterable[Escalation]) -> pd.Series:
    """Minutes from an escalation to its expert's first response (the claim), for those claimed."""
    return pd.Series(
        [(e.claimed_at - e.created_at).total_seconds() / 60 for e in escalations if e.claimed_at is not None],
        dtype=float,
    )


def escalation_figures() -> None:
    st.subheader("Escalations to experts")
    try:
        escalations = list(services.store().escalations.all())
    except PlumbError as exc:
        st.warning(str(exc))
        return
    waits = first_response_minutes(escalations)
    total, waiting, median, p90 = st.columns(4)
    total.metric("Escalations", len(escalations))
    waiting.metric("Waiting for an expert", sum(e.status == "open" for e in escalations))
    median.metric("Time to first expert response (median)", f"{waits.median():.0f} min" if len(waits) else "–")
    p90.metric("… 90th percentile", f"{waits.quantile(0.9):.0f} min" if len(waits) else "–")
    if escalations:
        st.caption("Escalations per day")
        st.bar_chart(escalations_per_day(escalations), x="day", y="escalations")


def undelivered_notifications() -> None:
    """Read from this server's notification queue, so they show while the receiver is down."""
    try:
        notifier = services.notifier()
    except PlumbError as exc:
        st.error(f"Experts cannot be notified: {exc}")
        return
    pending = [p for p in notifier.pending() if p.attempts]
    if not pending:
        return
    st.warning(f"{len(pending)} expert notifications not delivered yet; they are retried in the background.")
    for item in pending:
        with st.container(border=True):
            st.markdown(
                f"**{item.channel}** · escalation `{item.key}` · {item.attempts} tries · "
                f"queued {item.queued_at:%Y-%m-%d %H:%M} · next try {item.next_at:%H:%M:%S} UTC"
            )
            st.text(item.last_error)
            if st.button("Retry now", key=f"notify-{item.key}-{item.channel}"):
                notifier.retry_now(item.key, item.channel)
                st.rerun()
