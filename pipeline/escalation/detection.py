"""Should a person look at this message? Checked on every user message before the bot answers.

Three signals, cheapest first: an explicit request for a person (patterns), clearly negative
sentiment (VADER, a maintained lexicon-and-rules model that runs offline in well under a
millisecond), and, when configured, a yes/no from the judge's model with structured output.

VADER was built on social-media text, where "failure", "fatal", "kill" or "critical" carry feeling;
in engineering documents they name things ("failure mode", "fatal error", "kill the process",
"critical load"). Those words are neutral here (TECHNICAL_NEUTRAL), and a few words of frustration
VADER lacks are added (FRUSTRATION), so that only the user's own mood moves the score.
"""

import re
from dataclasses import dataclass
from typing import Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ValidationError
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from pipeline.judge.verdicts import response_format
from pipeline.prompts import chat_messages
from pipeline.settings import Settings

Reason = Literal["", "person", "negative", "llm", "rating"]

# Words VADER scores as negative that an engineering question uses for things, not feelings.
TECHNICAL_NEUTRAL = (
    "abort aborted attack block blocked blocking break breaks broke broken collapse crash crashed crashes critical "
    "damage damaged dead deadlock death defect defects die died dies error errors exceeded failure failures "
    "fail failed failing fails fatal fault faults faulty fire force hazard hazards kill killed killing kills "
    "leak leaks loss losses lost missing negative panic poison problem problems refuse refused reject rejected "
    "risk risks severe shock stress stresses trap trapped violation violations warning warnings weak "
    "weakness wrong no cut cuts burst pressure tension threat threats emergency alarm alarms"
).split()
# Frustration VADER does not know, scored like its nearest neighbours in the lexicon.
FRUSTRATION = {
    "garbage": -2.5, "pointless": -2.0, "worthless": -2.5, "rubbish": -2.3, "wtf": -2.5, "fed up": -2.0,
    "joke": -1.5, "waste": -2.0, "unacceptable": -2.5, "clueless": -2.0, "fix your": -1.0, "ffs": -2.5,
    "useless": -2.5,
}
# An explicit request for a person, in the phrasings support logs show most.
PERSON = re.compile(
    r"\b(talk|speak|chat|get)\s+(to|with)\s+(a|an|some|your)?\s*(real\s+)?"
    r"(human|person|people|someone|somebody|expert|engineer|agent|support|specialist)\b"
    r"|\b(real|actual)\s+(human|person|people|engineer|expert)\b"
    r"|\b(human|person|expert|engineer|agent)\s*,?\s*please\b"
    r"|\b(connect|transfer|put)\s+me\s+(to|through|with)\b"
    r"|\b(human|person|someone|somebody|engineer|expert)\s+(i|we)\s+(can|could)\s+(talk|speak)\b"
    r"|\bescalate\s+(this|my|it)\b"
    r"|\b(need|want)\s+(a|an|to\s+talk\s+to\s+a)\s*(human|person|expert|engineer)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Decision:
    """Whether to escalate and why ("" when not), with VADER's compound score (-1 … 1)."""

    reason: Reason
    sentiment: float

    @property
    def escalate(self) -> bool:
        return bool(self.reason)


class EscalationVerdict(BaseModel):
    """The model's structured yes/no: does the user need a person now?"""

    escalate: bool


LLM_PROMPT = (
    "You screen messages sent to a technical documentation assistant. Answer escalate=true only when the "
    "user is clearly upset, angry or frustrated with the assistant, or asks for a human. Technical words "
    "such as failure, fatal error, critical load or kill the process are not feelings. Reply in JSON."
)


class Detector:
    """Checks one user message; thread-safe (VADER and the compiled pattern keep no state per call).

    `threshold`: VADER compound score at or below which a message escalates (-1 … 1).
    `llm`: a chat model asked for an EscalationVerdict when the offline checks say no; None for none.
    """

    def __init__(self, threshold: float, llm: BaseChatModel | None = None) -> None:
        self.threshold = threshold
        self.llm = llm
        self._vader = SentimentIntensityAnalyzer()
        for word in TECHNICAL_NEUTRAL:
            self._vader.lexicon.pop(word, None)
        self._vader.lexicon.update(FRUSTRATION)

    def sentiment(self, message: str) -> float:
        return self._vader.polarity_scores(message)["compound"]

    def check(self, message: str) -> Decision:
        score = self.sentiment(message)
        if PERSON.search(message):
            return Decision("person", score)
        if score <= self.threshold:
            return Decision("negative", score)
        if self.llm is not None and self._llm_says_yes(message):
            return Decision("llm", score)
        return Decision("", score)

    def _llm_says_yes(self, message: str) -> bool:
        """A reply that is not a valid verdict counts as no: the offline checks already said no, and an
        answer must not wait for a second try."""
        messages = [{"role": "user", "content": f"{LLM_PROMPT}\n\nMessage: {message}"}]
        reply = self.llm.invoke(chat_messages(messages), response_format=response_format(EscalationVerdict))
        try:
            return EscalationVerdict.model_validate_json(reply.text).escalate
        except ValidationError:
            return False


def make_detector(settings: Settings) -> Detector:
    """The detector the settings describe; the LLM check uses the judge's model (PLUMB_ESCALATION_LLM)."""
    llm = None
    if settings.escalation_llm:
        from pipeline.judge.judge import make_judge

        llm = make_judge(settings).llm
    return Detector(settings.escalation_threshold, llm)
