"""LangChain's retriever seam over Plumbline's index: a question in, cited passages out."""

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from pipeline.embeddings import Embedder
from pipeline.index import ChunkIndex, SearchMode


class IndexRetriever(BaseRetriever):
    """Embeds the query and searches the index; each Document carries source, page, page label,
    section, chunk id, the search score and the cosine similarity the chain uses to judge relevance."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    embedder: Any
    k: int = 5
    mode: SearchMode = "hybrid"
    source: str | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        index: ChunkIndex = self.index
        embedder: Embedder = self.embedder
        hits = index.search(query, embedder.encode_one(query), self.k, mode=self.mode, source=self.source)
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
            for hit in hits
        ]
