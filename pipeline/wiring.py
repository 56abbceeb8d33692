"""Builds the concrete objects from settings, in one place, for the CLI jobs and the app.

Nothing here runs at import: each function is called from a job's command or from the app's
`st.cache_resource` service functions.
"""

from pipeline.chain import RagChain, build_chain
from pipeline.embeddings import Embedder, make_embedder
from pipeline.index import ChunkIndex, make_index
from pipeline.llm import make_llm, model_id
from pipeline.retriever import IndexRetriever
from pipeline.settings import Settings


def open_index(settings: Settings, embedder: Embedder | None = None) -> ChunkIndex:
    """The configured index, sized for `embedder`'s vectors; without an embedder, sized as it was
    built (enough to list and delete documents), so that no model is loaded."""
    return make_index(settings, embedder.dimension if embedder else None)


def make_rag_chain(settings: Settings, index: ChunkIndex, embedder: Embedder) -> RagChain:
    llm = make_llm(settings)
    retriever = IndexRetriever(index=index, embedder=embedder, k=settings.top_k)
    return build_chain(llm, retriever, model_id(llm), settings.min_relevance)


__all__ = ["make_embedder", "open_index", "make_rag_chain"]
