"""The history window: how many earlier pairs condensing and answering see (PLUMB_HISTORY_TURNS)."""

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.retrievers import BaseRetriever

from pipeline.chain import RagChain

HISTORY = [(f"Question {n}?", f"Answer {n}.") for n in range(1, 6)]


class OnePassage(BaseRetriever):
    def _get_relevant_documents(self, query, *, run_manager):
        meta = {"source": "a.pdf", "page": 1, "chunk_id": "c1", "score": 1.0, "similarity": 0.9}
        return [Document(page_content="Wind is 120 mph.", metadata=meta)]


@pytest.mark.parametrize(("turns", "seen"), [(0, []), (1, HISTORY[-1:]), (3, HISTORY[-3:]), (9, HISTORY)])
def test_the_chain_sees_the_last_n_pairs(turns, seen):
    model = GenericFakeChatModel(messages=iter([AIMessage("What is the wind speed?"), AIMessage("120 mph [1].")]))
    chain = RagChain(model, OnePassage(), "fake", 0.3, history_turns=turns)
    assert chain.invoke("And the wind?", HISTORY).history == seen


def test_the_setting_reaches_the_chain(monkeypatch, prepared_models, sample_index, embedder):
    from pipeline.settings import get_settings
    from pipeline.wiring import make_rag_chain

    monkeypatch.setenv("PLUMB_HISTORY_TURNS", "1")
    get_settings.cache_clear()
    assert make_rag_chain(get_settings(), sample_index, embedder).history_turns == 1
