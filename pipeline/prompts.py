"""The prompts, written for Mistral-7B-Instruct's chat template: no system role, the retrieved
context inside the user turn, and user/assistant turns strictly alternating. The version is stored
with every turn so feedback can be grouped by the prompt that produced the answer."""

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

PROMPT_VERSION = "plumb-answer-v1"

NOT_COVERED = "The documents don't cover this question. The closest passages are listed below."

CONDENSE_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "human",
            "Rewrite the follow-up question as one standalone question that can be understood without the "
            "conversation. Keep document names, clause numbers and technical terms. Reply with the question only.\n\n"
            "Conversation:\n{history}\n\nFollow-up question: {question}",
        )
    ]
)

# The last user turn; the export fills it with plain str.format (the same result, a fraction of the cost).
ANSWER_REQUEST = (
    "Answer the question using only the numbered passages below, and cite the passages you use like [1]. "
    "If the passages do not contain the answer, reply exactly: \"The documents don't cover this question.\"\n\n"
    "Passages:\n{context}\n\nQuestion: {question}"
)

ANSWER_PROMPT = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", ANSWER_REQUEST)])


def format_history(history: list[tuple[str, str]]) -> str:
    return "\n".join(f"User: {question}\nAssistant: {answer}" for question, answer in history)


def history_messages(history: list[tuple[str, str]]) -> list[BaseMessage]:
    """Earlier (question, answer) pairs as alternating user and assistant messages."""
    messages: list[BaseMessage] = []
    for question, answer in history:
        messages += [HumanMessage(question), AIMessage(answer)]
    return messages


def format_context(documents: list[Document]) -> str:
    return "\n\n".join(
        f"[{number}] {doc.metadata['source']} – page {doc.metadata['page']}\n{doc.page_content}"
        for number, doc in enumerate(documents, start=1)
    )
