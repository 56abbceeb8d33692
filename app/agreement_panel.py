"""The admin page's panel on the AI judge: how well it agrees with users' ratings, with experts'
reviews and, pairwise, with users' preferences (pipeline/judge/agreement.py computes the figures)."""

from dataclasses import asdict

import pandas as pd
import streamlit as st

from app import services
from pipeline.errors import PlumbError
from pipeline.judge.agreement import LEVELS, judge_agreement, judge_pair_agreement, sme_agreement

FIGURES = {
    "turns": "turns",
    "exact": "exact",
    "within_one": "within one",
    "spearman": "Spearman",
    "kappa_quadratic": "kappa (quadratic)",
}


def agreement_panel() -> None:
    st.subheader("AI judge agreement")
    st.caption(
        "Over every judgement stored, not only the period above. The judge's half points count as the level "
        "they round to (3.5 as 4) for exact agreement, within one level, kappa and the confusion matrix; "
        "pairs compare the judge's verdict with the higher-rated answer, on pairs neither calls a tie."
    )
    try:
        users, experts, pairs = _figures()
    except PlumbError as error:
        st.error(str(error))
        return
    if not (users or experts or pairs):
        st.info("No judged answer has a user's rating or an expert's review yet: run `plumb judge`.")
        return
    _scores("Against users' ratings", "user", users)
    _scores("Against experts' reviews (accepted or overridden scores)", "expert", experts)
    if pairs:
        st.markdown("**Pairwise, against users' preferences**")
        st.dataframe(pd.DataFrame([asdict(p) for p in pairs]).set_index("judge"), width="stretch")


@st.cache_data(ttl=60, show_spinner="Measuring the judge's agreement…")
def _figures() -> tuple[list, list, list]:
    from pipeline.feedback.dynamo import DynamoFeedbackStore

    dynamo = DynamoFeedbackStore(services.settings())
    judgements = list(dynamo.judgements())
    return (
        judge_agreement(judgements, dynamo),
        sme_agreement(judgements, dynamo.reviews()),
        judge_pair_agreement(dynamo.pair_judgements(), dynamo),
    )


def _scores(title: str, who: str, results: list) -> None:
    if not results:
        return
    st.markdown(f"**{title}**")
    table = pd.DataFrame([{name: getattr(r, field) for field, name in FIGURES.items()} | {"judge": r.judge} for r in results])
    st.dataframe(table.set_index("judge"), width="stretch")
    for result in results:
        st.caption(f"{result.judge}: rows the {who}'s level, columns the judge's")
        st.dataframe(confusion_frame(result.confusion, who), width="content")


def confusion_frame(confusion: list[list[int]], who: str) -> pd.DataFrame:
    return pd.DataFrame(
        confusion, index=[f"{who} {n}" for n in LEVELS], columns=[f"AI {n}" for n in LEVELS]
    )
