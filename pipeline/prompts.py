"""The prompts, written for Mistral-7B-Instruct's chat template: no system role, the retrieved
context inside the user turn, and user/assistant turns strictly alternating. The version is stored
with every turn so feedback can be grouped by the prompt that produced the answer.

The messages are built here as plain role/content data, by one function per prompt: the chain
turns them into LangChain messages for the model, and the export writes them as they are, so a
training prompt is always the prompt that was served. They are filled with str.format rather than a
ChatPromptTemplate, which the export could not afford per row at thousands of rows a second.
"""

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from pipeline.records import Citation

# v2: a passage's header names its printed page label or its section (`Citation.label`); a turn
# stored under v1 has neither, so its prompt is rebuilt with the v1 headers it was served with.
PROMPT_VERSION = "plumb-answer-v2"

NOT_COVERED = "The documents don't cover this question. The closest passages are listed below."

Message = dict[str, str]
History = Sequence[tuple[str, str]]

CONDENSE_REQUEST = (
    "Rewrite the follow-up question as one standalone question that can be understood without the "
    "conversation. Keep document names, clause numbers and technical terms. Reply with the question only.\n\n"
    "Conversation:\n{history}\n\nFollow-up question: {question}"
)

ANSWER_REQUEST = (
    "Answer the question using only the numbered passages below, and cite the passages you use like [1]. "
    "If the passages do not contain the answer, reply exactly: \"The documents don't cover this question.\"\n\n"
    "Passages:\n{context}\n\nQuestion: {question}"
)

# The answer requests by prompt version (`PLUMB_PROMPT_VERSION`, compared with `plumb eval compare
# --b PROMPT_VERSION=...`). Every version before plumb-answer-v3 sent ANSWER_REQUEST, so a stored
# turn of any other version is rebuilt with it. v3 asks for a short answer cited sentence by
# sentence: the packaged model's answers run long and repeat themselves (bench/bench_answer_length.py).
ANSWER_REQUESTS = {
    "plumb-answer-v2": ANSWER_REQUEST,
    "plumb-answer-v3": (
        "Answer the question in at most three sentences, using only the numbered passages below. "
        "After each sentence, cite the passages it comes from like [1]. "
        "If the passages do not contain the answer, reply exactly: \"The documents don't cover this question.\"\n\n"
        "Passages:\n{context}\n\nQuestion: {question}"
    ),
}


def answer_messages(
    history: History, citations: Sequence[Citation], question: str, version: str = PROMPT_VERSION
) -> list[Message]:
    """The answer prompt of `version`: each earlier (question, answer) pair as a user and an
    assistant message, then one user message with the numbered passages and the question as typed."""
    messages: list[Message] = []
    for asked, answered in history:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    request = ANSWER_REQUESTS.get(version, ANSWER_REQUEST)
    messages.append({"role": "user", "content": request.format(context=format_context(citations), question=question)})
    return messages


def condense_messages(history: History, question: str) -> list[Message]:
    """The prompt that rewrites a follow-up into a standalone question: one user message."""
    return [{"role": "user", "content": CONDENSE_REQUEST.format(history=format_history(history), question=question)}]


def chat_messages(messages: list[Message]) -> list[BaseMessage]:
    """Role/content messages as the LangChain messages a chat model takes."""
    kinds = {"user": HumanMessage, "assistant": AIMessage}
    return [kinds[message["role"]](message["content"]) for message in messages]


def format_history(history: History) -> str:
    return "\n".join(f"User: {question}\nAssistant: {answer}" for question, answer in history)


def format_context(citations: Sequence[Citation]) -> str:
    return "\n\n".join(
        f"[{number}] {citation.label()}\n{citation.passage}" for number, citation in enumerate(citations, start=1)
    )
