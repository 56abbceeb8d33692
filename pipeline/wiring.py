"""Builds the concrete objects from settings, in one place, for the CLI jobs and the app.

Nothing here runs at import: each function is called from a job's command or from the app's
`st.cache_resource` service functions.
"""

from pipeline.chain import RagChain
from pipeline.embeddings import Embedder, make_embedder
from pipeline.escalation.detection import make_detector
from pipeline.index import ChunkIndex, make_index
from pipeline.llm import make_llm
from pipeline.models.serving import make_live_chain
from pipeline.originals import OriginalStore
from pipeline.retriever import IndexRetriever
from pipeline.settings import Settings
from pipeline.tracing import make_tracer


def open_index(settings: Settings, embedder: Embedder | None = None) -> ChunkIndex:
    """The configured index, sized for `embedder`'s vectors; without an embedder, sized as it was
    built (enough to list and delete documents), so that no model is loaded."""
    return make_index(settings, embedder.dimension if embedder else None)


def open_originals(settings: Settings) -> OriginalStore:
    """The originals of the indexed documents, kept under the data folder (`pipeline/originals.py`)."""
    return OriginalStore(settings.data_dir / "originals")


def make_rag_chain(settings: Settings, index: ChunkIndex, embedder: Embedder) -> RagChain:
    """The chain that answers with the live trained version (`plumb model promote`), else the base model."""
    llm = make_llm(settings)
    retriever = IndexRetriever(index=index, embedder=embedder, k=settings.top_k)
    return make_live_chain(
        settings,
        llm,
        retriever,
        history_turns=settings.history_turns,
        detector=make_detector(settings),
        hold_escalated=settings.escalation_hold,
        tracer=make_tracer(settings),
        prompt_version=settings.prompt_version,
    )


__all__ = ["make_embedder", "open_index", "open_originals", "make_rag_chain"]
