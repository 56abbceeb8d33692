"""An expert's answer as knowledge: a document in the index that retrieval finds and cites like any
other. (As training data it is read by the export: pipeline/export/expert_labels.py.)"""

import hashlib

from pipeline.documents import Document, Page
from pipeline.embeddings import Embedder
from pipeline.escalation.records import Escalation
from pipeline.index import ChunkIndex
from pipeline.ingest import IngestSummary, TokenSplitter, ingest_files

KNOWLEDGE_FOLDER = "expert-answers"


def knowledge_source(escalation: Escalation) -> str:
    """The document's name in the index and in citations: one per escalation, so adding it again replaces it."""
    return f"{KNOWLEDGE_FOLDER}/{escalation.turn_id}.md"


def knowledge_text(escalation: Escalation) -> str:
    """Question, answer, expert, date and the sources the expert read, as the document's one section."""
    asked = next(e for e in escalation.transcript if e.turn_id == escalation.turn_id)
    sources = "\n".join(f"- {citation.label()}" for citation in asked.citations) or "- (none)"
    day = escalation.answered_at.date().isoformat() if escalation.answered_at else ""
    return (
        f"Question: {escalation.question}\n\nAnswer: {escalation.answer}\n\n"
        f"Answered by expert {escalation.claimed_by} on {day}.\n\nSources the expert read:\n{sources}\n"
    )


class ExpertAnswerDocument:
    """An answered escalation as an `ingest.DocumentFile`."""

    def __init__(self, escalation: Escalation) -> None:
        if escalation.status not in ("answered", "closed") or not escalation.answer:
            raise ValueError("Only an answered escalation can be added to the knowledge base.")
        self._escalation = escalation
        self._text = knowledge_text(escalation)

    @property
    def source(self) -> str:
        return knowledge_source(self._escalation)

    def version(self) -> str:
        return hashlib.sha256(self._text.encode()).hexdigest()

    def read(self, ocr: bool) -> Document:
        section = f"Expert answer by {self._escalation.claimed_by}"
        return Document([Page(self.source, 1, self._text, section=section)], [])


def add_to_knowledge(escalation: Escalation, index: ChunkIndex, embedder: Embedder, splitter: TokenSplitter) -> IngestSummary:
    """Ingest the answered `escalation` into `index`. ValueError when it has no answer."""
    return ingest_files([ExpertAnswerDocument(escalation)], index, embedder, splitter)

