"""LangChain's retriever seam over Plumbline's index: a question in, cited passages out."""

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from pipeline.embeddings import Embedder
from pipeline.index import ChunkIndex, Hit, SearchMode


def distinct(hits: list[Hit], k: int) -> list[Hit]:
    """The first `k` hits whose texts differ (compared with runs of whitespace made one space): a
    passage held twice, as two copies of one file or one boilerplate paragraph in many documents,
    is cited once, at its best rank."""
    seen: set[str] = set()
    kept = []
    for hit in hits:
        text = " ".join(hit.text.split())
        if text not in seen:
            seen.add(text)
            kept.append(hit)
    return kept[:k]


class IndexRetriever(BaseRetriever):
    """Embeds the query and searches the index; each Document carries source, page, page label,
    section, chunk id, the search score and the cosine similarity the chain uses to judge relevance.
    Never returns one passage twice (`distinct`): it asks the index for twice `k` hits so that `k` remain."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    embedder: Any
    k: int = 5
    mode: SearchMode = "hybrid"
    source: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, sources: list[str] | None = None
    ) -> list[Document]:
        """`sources` (passed to `invoke`) restricts this one search to those documents; else `source`."""
        index: ChunkIndex = self.index
        embedder: Embedder = self.embedder
        only = sources if sources is not None else self.source
        hits = index.search(query, embedder.encode_one(query), 2 * self.k, mode=self.mode, source=only)
        return [
            Document(
                page_content=hit.text,
                metadata={
                    "source": hit.source,
                    "page": hit.page,
                    "page_label": hit.page_label,
                    "section": hit.section,
                    "chunk_id": hit.chunk_id,
                    "score": hit.score,
                    "similarity": hit.similarity,
                },
            )
            for hit in distinct(hits, self.k)
        ]
