"""The RAG chain with the real packaged LLM and embedding model over the sample documents."""

import threading

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from pipeline.chain import RagChain
from pipeline.prompts import NOT_COVERED, PROMPT_VERSION
from pipeline.retriever import IndexRetriever

pytestmark = pytest.mark.slow


class PromptRecorder(BaseCallbackHandler):
    """Keeps every prompt the model was sent (LangChain's own tracing hook)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.lock = threading.Lock()

    def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
        with self.lock:
            self.prompts += ["\n".join(str(m.content) for m in batch) for batch in messages]


@pytest.fixture
def recorder() -> PromptRecorder:
    return PromptRecorder()


@pytest.fixture
def chain(sample_index, embedder, local_llm, recorder):
    llm = local_llm.with_config(callbacks=[recorder])
    retriever = IndexRetriever(index=sample_index, embedder=embedder, k=4)
    return RagChain(llm, retriever, model_id="test-model", min_relevance=0.3)


def test_answer_cites_the_page_that_holds_it(chain, recorder):
    stream = chain.stream("What is the basic design wind speed?")
    pieces = list(stream)
    answer = stream.answer
    assert len(pieces) > 1, "the answer should arrive in several streamed pieces"
    assert "".join(pieces).strip() == answer.answer
    assert (answer.citations[0].source, answer.citations[0].page) == ("design-criteria.pdf", 3)
    assert "120 mph" in answer.citations[0].passage
    assert not answer.not_covered
    assert answer.model_id == "test-model" and answer.prompt_version == PROMPT_VERSION
    assert answer.tokens_in > 100 and answer.tokens_out > 0
    assert {"condense", "retrieve", "first_token", "generate", "total"} <= set(answer.timings_ms)
    prompt = recorder.prompts[-1]
    assert "[1] design-criteria.pdf – page 3" in prompt and "Question: What is the basic design wind speed?" in prompt


def test_question_outside_the_documents_is_not_covered_and_lists_closest_sources(chain, recorder):
    answer = chain.invoke("Who won the 1998 football world cup?")
    assert answer.not_covered
    assert answer.answer == NOT_COVERED
    assert answer.citations, "the closest sources are still listed"
    assert recorder.prompts == [], "no generation is spent on a question the documents cannot answer"


def test_follow_up_is_condensed_with_the_history(chain, recorder):
    history = [("What does action code C mean on a submittal?", "Code C means revise and resubmit.")]
    answer = chain.invoke("And code D?", history)
    condense_prompt = recorder.prompts[0]
    assert "Conversation:\nUser: What does action code C mean on a submittal?" in condense_prompt
    assert "Follow-up question: And code D?" in condense_prompt
    assert answer.condensed_question.endswith("?") and answer.condensed_question != "And code D?"
    assert answer.citations[0].source == "submittal-procedures.html"


def test_answer_prompt_alternates_user_and_assistant(chain, recorder):
    history = [("What is the basic design wind speed?", "It is 120 mph.")]
    chain.invoke("What is the seismic importance factor?", history)
    answer_prompt = recorder.prompts[-1]
    assert answer_prompt.startswith("What is the basic design wind speed?\nIt is 120 mph.\nAnswer the question")


def test_first_question_skips_condensing(chain, recorder):
    answer = chain.invoke("How long must liquid-containing structures be wet cured?")
    assert answer.condensed_question == answer.question
    assert len(recorder.prompts) == 1
    assert answer.timings_ms["condense"] < 5


def test_two_conversations_never_share_history(chain, recorder):
    """Two users ask at the same time, each with their own history: no prompt mixes them."""
    alice = [("What is the allowable bearing pressure?", "ALICE-ANSWER 3,000 psf.")]
    bob = [("What is the frost depth?", "BOB-ANSWER 42 inches.")]
    results = {}

    def ask(name, history):
        results[name] = chain.invoke("Does that change for seismic loads?", history)

    threads = [threading.Thread(target=ask, args=args) for args in (("alice", alice), ("bob", bob))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {"alice", "bob"}
    assert all(not ("ALICE-ANSWER" in p and "BOB-ANSWER" in p) for p in recorder.prompts)
    assert any("ALICE-ANSWER" in p for p in recorder.prompts) and any("BOB-ANSWER" in p for p in recorder.prompts)


def test_empty_question_is_refused(chain):
    with pytest.raises(ValueError, match="question is empty"):
        chain.stream("   ")
