"""The app's shared clients, built once per process from settings and shared by every user's
script run (`st.cache_resource`; each of these objects is thread-safe)."""

import streamlit as st

from pipeline.chain import RagChain
from pipeline.embeddings import Embedder
from pipeline.index import ChunkIndex
from pipeline.settings import Settings, get_settings
from pipeline.originals import OriginalStore
from pipeline.wiring import make_embedder, make_rag_chain, open_index, open_originals


def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner="Loading the embedding model…")
def embedder() -> Embedder:
    model = make_embedder(settings())
    model.encode_one("warm up")
    return model


@st.cache_resource(show_spinner="Opening the index…")
def index() -> ChunkIndex:
    return open_index(settings(), embedder())


@st.cache_resource
def originals() -> OriginalStore:
    return open_originals(settings())


@st.cache_resource(show_spinner="Loading the model…")
def chain() -> RagChain:
    return make_rag_chain(settings(), index(), embedder())


@st.cache_resource(show_spinner="Connecting to the feedback store…")
def store():
    from pipeline.feedback import make_store

    return make_store(settings())


@st.cache_resource(show_spinner=False)
def notifier():
    """The escalation notifier, delivering in the background (pipeline/escalation/notify.py)."""
    from pipeline.escalation.notify import make_notifier

    started = make_notifier(settings())
    started.start()
    return started


@st.cache_resource(show_spinner="Loading the judge…")
def online_judge():
    """The background judge of new turns when PLUMB_JUDGE_ONLINE is set, else None."""
    if not settings().judge_online:
        return None
    from pipeline.judge.judge import make_judge
    from pipeline.judge.online import OnlineJudge

    return OnlineJudge(make_judge(settings()), store())
