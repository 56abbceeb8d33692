"""The exported prompt is the prompt that was served: a follow-up answered by the real RagChain
(with a chat model that records what it receives), stored in DynamoDB Local, exported by the real
export, compared message by message."""

import json
from pathlib import Path

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from pipeline import prompts
from pipeline.chain import RagChain
from pipeline.export.job import ExportConfig, main
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Citation, Feedback, Turn

HISTORY = [
    ("What does action code A mean?", "Approved [1]."),
    ("What does action code B mean?", "Approved as noted [1]."),
    ("What does action code C mean?", "Revise and resubmit [1]."),
    ("Who reviews submittals?", "The engineer of record [2]."),
]
CONDENSED = "What does action code D mean on a submittal?"
ANSWER = "Code D means rejected [1]."
ROLES = {"human": "user", "ai": "assistant"}


class RecordingChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, keeping every list of messages it was sent."""

    received: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.received.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class FixedRetriever(BaseRetriever):
    """Two passages with the metadata the index gives, at a chosen similarity."""

    similarity: float = 0.8

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(
                page_content=f"Code {code}: {text}. {{braces}} stay as written.",
                metadata={
                    "source": "submittals.html",
                    "page": page,
                    "page_label": "",
                    "section": f"Submittals › {section}",
                    "score": 0.7,
                    "similarity": self.similarity,
                    "chunk_id": f"chunk-{code}",
                },
            )
            for page, code, text, section in (
                (1, "D", "rejected, see comments", "1.3 Action Codes"),
                (1, "E", "for information only", "1.4 Information"),
            )
        ]


def as_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": ROLES[message.type], "content": message.content} for message in messages]


def answered_turn(llm, similarity: float = 0.8, version: str = prompts.PROMPT_VERSION) -> Turn:
    """A follow-up as the chat page makes it: the chain's answer plus session and user."""
    chain = RagChain(
        llm, FixedRetriever(similarity=similarity), model_id="fake-model", min_relevance=0.3, prompt_version=version
    )
    stream = chain.stream("  and code D?  ", HISTORY)
    list(stream)
    return Turn(session_id="session-1", user="ann", **stream.answer.model_dump())


def rows(export: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (export / name / "train.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def store(dynamo_settings) -> DynamoFeedbackStore:
    return DynamoFeedbackStore(dynamo_settings)


def test_the_prompt_version_setting_offers_every_answer_request_and_a_turn_of_another_version_gets_v2s():
    from typing import get_args

    from pipeline.settings import Settings

    assert get_args(Settings.model_fields["prompt_version"].annotation) == tuple(prompts.ANSWER_REQUESTS)
    citations = [Citation(source="a.pdf", page=2, passage="Slope 1:12.", score=0.9)]
    assert prompts.answer_messages([], citations, "Max?", "plumb-answer-v1") == prompts.answer_messages([], citations, "Max?")


@pytest.mark.parametrize("version", list(prompts.ANSWER_REQUESTS))
def test_exported_prompts_are_the_messages_the_model_was_sent(dynamo_settings, store, tmp_path, version):
    llm = RecordingChatModel(messages=iter([CONDENSED, ANSWER]))
    turn = answered_turn(llm, version=version)
    assert turn.prompt_version == version
    store.save_turn(turn)
    store.save_feedback(
        Feedback(session_id=turn.session_id, turn_id=turn.turn_id, user="ann", rating=2, correction="Code D: rejected.")
    )
    condense_sent, answer_sent = map(as_dicts, llm.received)
    assert [m["role"] for m in answer_sent] == ["user", "assistant"] * 3 + ["user"], "the last three pairs"
    assert "[1] submittals.html – Submittals › 1.3 Action Codes\nCode D" in answer_sent[-1]["content"]
    assert answer_sent[-1]["content"].startswith(prompts.ANSWER_REQUESTS[version].split("{context}")[0])

    result = main(ExportConfig(out=str(tmp_path / "out"), mode="all", validation_fraction=0.0), dynamo_settings)
    export = Path(result.location)
    exported = [row["prompt"] for name in ("sft", "kto", "ratings", "preference") for row in rows(export, name)]
    exported += [row["chosen"][:-1] for row in rows(export, "reward")]
    assert len(exported) == 6
    for prompt in exported:
        assert prompt == answer_sent  # message by message, role and content
    assert rows(export, "ratings")[0]["completion"] == [{"role": "assistant", "content": ANSWER}]

    stored = store.get_turn(turn.session_id, turn.turn_id)
    assert stored.condensed_question == CONDENSED
    assert prompts.condense_messages(stored.history, stored.question) == condense_sent


def test_a_not_covered_turn_from_the_chain_makes_no_row(dynamo_settings, store, tmp_path):
    llm = RecordingChatModel(messages=iter([CONDENSED]))
    turn = answered_turn(llm, similarity=0.1)
    assert turn.answer == prompts.NOT_COVERED and not turn.generated and len(llm.received) == 1
    store.save_turn(turn)
    store.save_feedback(Feedback(session_id=turn.session_id, turn_id=turn.turn_id, user="ann", rating=5))
    result = main(ExportConfig(out=str(tmp_path / "out"), mode="all", validation_fraction=0.0), dynamo_settings)
    assert result.manifest["files"] == {} and result.manifest["excluded"] == {"not_generated": 1}
