"""The records that cross module boundaries: a cited passage, an answered turn, a user's feedback.

They are pydantic models so that the chain, the feedback store and the export agree on one schema
and bad input is refused with a message before anything is stored.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from pipeline.sections import SEPARATOR

NOTE_MAX_CHARS = 4000
CORRECTION_MAX_CHARS = 20000
SECTION_LABEL_CHARS = 60  # a citation shows a section's heading path up to this length

RATING_LABELS = {
    1: "strongly disagree",
    2: "disagree",
    3: "neutral",
    4: "agree",
    5: "strongly agree",
}


def now_utc() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid4().hex


class Citation(BaseModel):
    """One retrieved passage as the user sees it under an answer.

    `passage_truncated` is set when the store kept only the start of a long passage (see the size
    rule in pipeline/feedback/dynamo.py): the prompt that held it cannot be rebuilt exactly.
    `page_label` (the printed page label, "" when none) and `section` (the heading path of a
    Markdown or HTML passage, "" when none) are "" in turns stored before they were kept, whose
    labels therefore read as they did then.
    """

    model_config = ConfigDict(frozen=True)

    source: str
    page: int = Field(ge=1)
    passage: str
    score: float
    chunk_id: str = ""
    passage_truncated: bool = False
    page_label: str = ""
    section: str = ""

    def label(self) -> str:
        """Where a reader looks: "spec.md – Execution › 3.2 Curing" for a section (outer headings
        that would make it longer than SECTION_LABEL_CHARS shown as "…"), "paper.pdf – page 1 (PDF
        page 3)" where the printed page label is not the page's number, else "paper.pdf – page 3"."""
        if self.section:
            return f"{self.source} – {_short_section(self.section)}"
        if self.page_label and self.page_label != str(self.page):
            return f"{self.source} – page {self.page_label} (PDF page {self.page})"
        return f"{self.source} – page {self.page}"


def _short_section(section: str) -> str:
    """The innermost headings of a heading path that fit in SECTION_LABEL_CHARS ("… › " standing
    for the rest); the innermost heading is always shown whole."""
    names = section.split(SEPARATOR)
    shown = names[-1]
    for name in reversed(names[:-1]):
        if len(name) + len(SEPARATOR) + len(shown) > SECTION_LABEL_CHARS:
            return f"…{SEPARATOR}{shown}"
        shown = f"{name}{SEPARATOR}{shown}"
    return shown


class Turn(BaseModel):
    """One answered question, stored as it is answered so feedback can always be joined to it.

    It records what generation was given, so the export rebuilds the very prompt the model saw
    (`pipeline.prompts.answer_messages`): `history` holds the earlier (question, answer) pairs the
    chain kept, oldest first, `question` the question as typed, `citations` the passages. `history`
    None means not recorded (a turn stored before it was); such a turn cannot be exported.
    `generated` is False when the answer is the chain's canned "not covered" text, which no model wrote.
    `scope` is what the asker restricted the question to: document names, and collections as their
    names' common start ending in "/" (`pipeline/scope.py`); empty for every document.
    """

    session_id: str
    turn_id: str = Field(default_factory=new_id)
    user: str
    created_at: datetime = Field(default_factory=now_utc)
    question: str
    condensed_question: str
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    history: list[tuple[str, str]] | None = None
    generated: bool = False
    not_covered: bool = False
    model_id: str
    prompt_version: str
    timings_ms: dict[str, float] = Field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    escalation: str = ""  # why the question called in an expert (detection.Reason), "" when it did not
    sentiment: float = 0.0  # VADER compound score of the question, -1 … 1
    expert: str = ""  # the expert who wrote this answer; "" for the bot's
    scope: list[str] = Field(default_factory=list)


# Never content: C0 and C1 controls except newline and tab, and the bidirectional overrides and
# isolates (which can make text display in another order than it is stored). Everything else stays:
# zero-width joiners and non-joiners are letters' glue in Persian, Hindi and emoji sequences.
NEVER_CONTENT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clean_text(value: str | None) -> str | None:
    """Normalise line endings and drop the characters that are never meant as content (NEVER_CONTENT)."""
    if value is None:
        return None
    return NEVER_CONTENT.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


class Feedback(BaseModel):
    """A user's verdict on one turn: rating, optional note, optional corrected answer, flagged sources.

    `feedback_id` is generated by the client once per turn and user. `submission_id` is made once per
    submission (one click on "Save feedback") and travels with it through the outbox, so the store
    recognises a retry or a replay of it. `version` is assigned by the store: 1, 2, 3... per turn and
    user, the highest being the latest verdict; the value a client sends is not used.
    `session_deleted` is set by the store when the asker deletes the conversation: the verdict is
    kept for training, marked as from a deleted conversation.
    """

    feedback_id: str = Field(default_factory=new_id)
    submission_id: str = Field(default_factory=new_id)
    session_id: str
    turn_id: str
    user: str
    rating: int = Field(ge=1, le=5)
    note: Annotated[str, StringConstraints(max_length=NOTE_MAX_CHARS)] = ""
    correction: Annotated[str, StringConstraints(max_length=CORRECTION_MAX_CHARS)] | None = None
    flagged_citations: list[int] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=now_utc)
    version: int = Field(1, ge=1)
    session_deleted: bool = False

    @property
    def rating_label(self) -> str:
        return RATING_LABELS[self.rating]

    @field_validator("note", mode="before")
    @classmethod
    def _note(cls, value: str | None) -> str:
        return (_clean_text(value) or "").strip()

    @field_validator("correction", mode="before")
    @classmethod
    def _correction(cls, value: str | None) -> str | None:
        value = _clean_text(value)
        if value is not None and not value.strip():
            raise ValueError("the corrected answer is empty: write the answer you expected, or leave it out")
        return value.strip() if value is not None else None

    @field_validator("flagged_citations")
    @classmethod
    def _flags(cls, value: list[int]) -> list[int]:
        if any(i < 0 for i in value):
            raise ValueError("flagged citation numbers start at 0")
        return sorted(set(value))


# What a judge scored an answer against: the asker's own corrected answer, an answer a subject-matter
# expert approved for the same question, or nothing (faithfulness to the passages and relevance).
ReferenceKind = Literal["correction", "sme", "none"]
REFERENCE_KINDS: tuple[ReferenceKind, ...] = ("none", "sme", "correction")  # weakest first


def weaker_references(kind: ReferenceKind) -> tuple[ReferenceKind, ...]:
    """The kinds a judgement against `kind` replaces: those before it in REFERENCE_KINDS."""
    return REFERENCE_KINDS[: REFERENCE_KINDS.index(kind)]


JUDGE_SCORES = tuple(n / 2 for n in range(2, 11))  # 1, 1.5, ... 5


def _half_points(value: float) -> float:
    if value not in JUDGE_SCORES:
        raise ValueError(f"a judge's score is 1 to 5 in steps of 0.5, not {value}")
    return value


# A judge's score; its JSON schema lists the values, so a server that enforces schemas allows no other.
JudgeScore = Annotated[float, Field(json_schema_extra={"enum": list(JUDGE_SCORES)}), AfterValidator(_half_points)]


class Judgement(BaseModel):
    """An AI judge's verdict on one answered turn: a score from 1 to 5 in steps of 0.5 and a comment
    that explains it. One per (turn, judge model, judge prompt version): judging again with the same
    judge and prompt changes nothing, unless against a stronger reference (`weaker_references`),
    which replaces it."""

    session_id: str
    turn_id: str
    user: str  # who asked: whose rating and correction the judgement is compared with
    judge_model: str
    prompt_version: str
    score: JudgeScore
    comment: str
    reference_kind: ReferenceKind
    judged_at: datetime = Field(default_factory=now_utc)

    @property
    def judge(self) -> str:
        """The judge's identity as stored: model and prompt version."""
        return judge_key(self.judge_model, self.prompt_version)


def judge_key(judge_model: str, prompt_version: str) -> str:
    return f"{judge_model}#{prompt_version}"


PairOutcome = Literal["first", "second", "tie"]


def pair_key(turn_a: str, turn_b: str) -> str:
    """One key for two turns in either order ("<smaller id>#<larger id>"): the pairwise judge shows
    both orders, so the order they were given in means nothing."""
    first, second = sorted((turn_a, turn_b))
    return f"{first}#{second}"


class PairJudgement(BaseModel):
    """An AI judge's comparison of two answers to one prompt, asked in both orders: `outcome` names
    the better side ("first" is the turn with the smaller id) only when both orders agreed, else
    "tie". One per (pair of turns, judge model, pairwise prompt version)."""

    first_session_id: str
    first_turn_id: str
    first_user: str  # who asked: whose rating the side is compared with
    second_session_id: str
    second_turn_id: str
    second_user: str
    judge_model: str
    prompt_version: str
    outcome: PairOutcome
    judged_at: datetime = Field(default_factory=now_utc)

    @model_validator(mode="after")
    def _ordered(self) -> "PairJudgement":
        if self.second_turn_id <= self.first_turn_id:
            raise ValueError("a pair's first turn id is the smaller one, and the two differ")
        return self

    @property
    def pair(self) -> str:
        return pair_key(self.first_turn_id, self.second_turn_id)

    @property
    def judge(self) -> str:
        return judge_key(self.judge_model, self.prompt_version)

    @property
    def winner(self) -> str | None:
        """The turn id of the better answer, None for a tie."""
        return {"first": self.first_turn_id, "second": self.second_turn_id}.get(self.outcome)


ReviewAction = Literal["accept", "override"]
REVIEW_REASON_MAX_CHARS = 2000


class Review(BaseModel):
    """A subject-matter expert's decision on one AI judgement: accept its score, or override it with
    a score and a reason. Kept as versions beside the judgement, never in place of it: `version` is
    assigned by the store (1, 2, ... per turn and judge), the highest being the decision that counts.
    `seconds` is the time from opening the judgement to deciding."""

    submission_id: str = Field(default_factory=new_id)
    session_id: str
    turn_id: str
    judge: str  # records.judge_key of the judgement reviewed
    reviewer: str
    action: ReviewAction
    score: JudgeScore  # the AI's score when accepted, the expert's when overridden
    reason: Annotated[str, StringConstraints(max_length=REVIEW_REASON_MAX_CHARS)] = ""
    seconds: float = Field(0.0, ge=0)
    reviewed_at: datetime = Field(default_factory=now_utc)
    version: int = Field(1, ge=1)

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: str | None) -> str:
        return (_clean_text(value) or "").strip()

    @model_validator(mode="after")
    def _override_has_reason(self) -> "Review":
        if self.action == "override" and not self.reason:
            raise ValueError("an override needs a reason: say why the AI's score is wrong")
        return self


# Escalation to a human expert (pipeline/escalation)
Status = Literal["open", "claimed", "answered", "closed"]
STATUSES: tuple[Status, ...] = ("open", "claimed", "answered", "closed")


class Exchange(BaseModel):
    """One turn of the transcript an expert reads: the question, the answer and its passages."""

    turn_id: str
    question: str
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    expert: str = ""


class Escalation(BaseModel):
    """A conversation handed to an expert. `reason` is `detection.Reason`; `note` is the user's own
    words when a rating of 1 with a note escalated the turn. Times are UTC; None until they happen."""

    session_id: str
    turn_id: str
    user: str
    reason: str
    note: str = ""
    question: str
    transcript: list[Exchange]
    status: Status = "open"
    created_at: datetime = Field(default_factory=now_utc)
    claimed_by: str = ""
    claimed_at: datetime | None = None
    answer: str = ""
    answer_turn_id: str = ""
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    knowledge_source: str = ""  # the index source the answer was added as; "" when it was not
    training_by: str = ""  # the expert who chose the answer as training data (SFT, label_source "expert")
    training_at: datetime | None = None  # when: the export reads it in the window holding this time

    @property
    def key(self) -> str:
        return f"{self.session_id}/{self.turn_id}"
