"""The judge's prompts, versioned like the answer prompt: a judgement records the version it was
made with, and a new version judges every turn again.

The rubric follows the source material's: the key facts of the reference present, nothing that
contradicts the passages, extra detail fine when it is correct. One user message each (Mistral's
chat template has no system role), the reply a JSON object (see `verdicts`).
"""

from collections.abc import Sequence

from pipeline.prompts import Message, format_context
from pipeline.records import Citation, ReferenceKind

JUDGE_PROMPT_VERSION = "plumb-judge-v1"
PAIRWISE_PROMPT_VERSION = "plumb-pairwise-v1"

_REFERENCE_RUBRIC = """\
Score the answer against the reference answer:
5 - every key fact of the reference is in the answer and nothing contradicts the passages; extra detail is fine when it is correct.
4 - the key facts are there, with a small omission or imprecision.
3 - some key facts are there, but an important one is missing or vague.
2 - few key facts are there, or the answer mixes right and wrong statements.
1 - the answer is wrong, contradicts the reference or the passages, or does not answer the question.
Half points (1.5, 2.5, 3.5, 4.5) are for answers between two levels."""

_FREE_RUBRIC = """\
There is no reference answer. Score the answer for faithfulness to the passages and relevance to the question:
5 - it answers the question, and every statement is supported by the passages it cites.
4 - it answers the question with a small unsupported or imprecise detail.
3 - it partly answers the question, or a statement is not supported by the passages.
2 - it mostly misses the question, or several statements are not supported.
1 - it contradicts the passages or does not answer the question.
Half points (1.5, 2.5, 3.5, 4.5) are for answers between two levels."""

_REFERENCE_NAMES = {
    "correction": "Reference answer (written by the engineer who asked)",
    "sme": "Reference answer (approved by a subject-matter expert)",
}

SCORE_REQUEST = """\
You grade the answers of a document question-answering assistant for engineers.

{rubric}

Question: {question}

Passages the assistant was given:
{context}
{reference}
Answer to grade:
{answer}

Reply with a JSON object: "comment", one or two sentences that explain the score, then "score"."""

PAIRWISE_REQUEST = """\
You compare two answers of a document question-answering assistant for engineers to the same question, \
given the same passages. The better answer has the key facts{reference_clause}, says nothing that \
contradicts the passages, and answers the question asked; length alone is no merit.

Question: {question}

Passages:
{context}
{reference}
Answer A:
{answer_a}

Answer B:
{answer_b}

Reply with a JSON object: "comment", one or two sentences that compare them, then "better": "A", "B" or "tie"."""


def score_messages(
    question: str, citations: Sequence[Citation], answer: str, reference: str | None, kind: ReferenceKind
) -> list[Message]:
    """The prompt that scores one answer; `reference` None (kind "none") judges without a reference."""
    return [
        {
            "role": "user",
            "content": SCORE_REQUEST.format(
                rubric=_REFERENCE_RUBRIC if reference else _FREE_RUBRIC,
                question=question,
                context=format_context(citations) or "(none)",
                reference=_reference_block(reference, kind),
                answer=answer,
            ),
        }
    ]


def pairwise_messages(
    question: str, citations: Sequence[Citation], answer_a: str, answer_b: str, reference: str | None = None
) -> list[Message]:
    """The prompt that compares two answers to one prompt, A first."""
    return [
        {
            "role": "user",
            "content": PAIRWISE_REQUEST.format(
                reference_clause=" of the reference answer" if reference else "",
                question=question,
                context=format_context(citations) or "(none)",
                reference=_reference_block(reference, "correction"),
                answer_a=answer_a,
                answer_b=answer_b,
            ),
        }
    ]


def _reference_block(reference: str | None, kind: ReferenceKind) -> str:
    if not reference:
        return ""
    return f"\n{_REFERENCE_NAMES.get(kind, 'Reference answer')}:\n{reference}\n"
