"""A small seeded set of turns and feedback whose export is known row by row."""

from dataclasses import dataclass

from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Citation, Feedback, Turn

RAMP = "What is the maximum slope of an accessible ramp?"
CONCRETE = "Which concrete grade is required for footings?"
ACCESS = "Who do I call for site access?"
ANCHORS = "How far apart are the anchor bolts?"

RAMP_PASSAGE = Citation(
    source="design-criteria.pdf", page=21, passage="Ramps shall not exceed a slope of 1:12.", score=0.82
)
CONCRETE_PASSAGE = Citation(source="specification.pdf", page=7, passage="Footings: concrete C30/37.", score=0.77)
ACCESS_PASSAGE = Citation(
    source="site-rules.pdf", page=2, passage="Site access: call the gate on +44 20 7946 0958.", score=0.61
)
ANCHOR_PASSAGE = Citation(source="drawings-notes.pdf", page=4, passage="Anchor bolts at 600 mm centres.", score=0.7)

CORRECTION = "The maximum slope is 1:12 (design-criteria.pdf – page 21)."
STAIRS_CORRECTION = "The passages cover ramps only; stairs are in another document."


@dataclass(frozen=True)
class Seed:
    user: str
    question: str
    answer: str
    rating: int
    citation: Citation
    note: str = ""
    correction: str | None = None
    model_id: str = "mistral-7b-v1"


SEEDS = [
    Seed("alice", RAMP, "The maximum slope is 1:12 [1].", 5, RAMP_PASSAGE),
    Seed(
        "bob", RAMP, "The maximum slope is 1:10 [1].", 1, RAMP_PASSAGE, note="wrong, see page 21", correction=CORRECTION
    ),
    Seed("carol", RAMP, "The maximum slope is 1:12 [1].", 4, RAMP_PASSAGE),
    Seed("dave", CONCRETE, "C30/37 [1].", 3, CONCRETE_PASSAGE, note="partly right"),
    Seed(
        "erin",
        ACCESS,
        "Call John at john.doe@example.com or (212) 736-5000.",
        2,
        ACCESS_PASSAGE,
        note="my number is 202-555-0143, don't share it",
    ),
    Seed("frank", ANCHORS, "600 mm centres [1].", 4, ANCHOR_PASSAGE, model_id="mistral-7b-v2"),
]


def make_pair(seed: Seed, session: str = "") -> tuple[Turn, Feedback]:
    turn = Turn(
        session_id=session or f"session-{seed.user}",
        user=seed.user,
        question=seed.question,
        condensed_question=seed.question,
        answer=seed.answer,
        citations=[seed.citation],
        history=[],
        generated=True,
        model_id=seed.model_id,
        prompt_version="plumb-answer-v1",
    )
    feedback = Feedback(
        session_id=turn.session_id,
        turn_id=turn.turn_id,
        user=seed.user,
        rating=seed.rating,
        note=seed.note,
        correction=seed.correction,
    )
    return turn, feedback


def follow_up_pair() -> tuple[Turn, Feedback]:
    """A follow-up in alice's conversation, corrected: its prompt holds the earlier exchange."""
    turn, feedback = make_pair(
        Seed("alice", "And for stairs?", "Stairs are not covered [1].", 2, RAMP_PASSAGE, correction=STAIRS_CORRECTION)
    )
    turn = turn.model_copy(
        update={"history": [(RAMP, SEEDS[0].answer)], "condensed_question": "What is the maximum slope of stairs?"}
    )
    return turn, feedback


def store_seeds(store: DynamoFeedbackStore, seeds: list[Seed] = SEEDS) -> list[tuple[Turn, Feedback]]:
    pairs = [make_pair(seed) for seed in seeds]
    for turn, feedback in pairs:
        store.save_turn(turn)
        store.save_feedback(feedback)
    return pairs


# Words of a specification, so passages tokenize as real text does (one long run of one letter is a
# single 600-character word, which a byte-level BPE tokenizer merges in quadratic time).
FILLER = (
    "Anchor bolts shall be cast into the footing at the centres shown on the drawings, with an embedment of "
    "not less than twelve bolt diameters, and grouted with non-shrink grout after the column is plumbed. "
)


def filler(chars: int) -> str:
    """`chars` characters of specification text."""
    return (FILLER * (chars // len(FILLER) + 1))[:chars]


def bulk_pairs(count: int, questions: int = 500, passages: int = 5, passage_chars: int = 600):
    """`count` distinct answered and rated turns over `questions` questions, made one at a time."""
    for n in range(count):
        question = f"What does clause {n % questions} of section 01 13 10 require?"
        citations = [
            Citation(
                source=f"spec-{page}.pdf",
                page=page,
                passage=f"Clause {n % questions}: " + filler(passage_chars),
                score=0.8,
            )
            for page in range(1, passages + 1)
        ]
        turn = Turn(
            session_id=f"session-{n % 997}",
            user=f"user-{n % 50}",
            question=question,
            condensed_question=question,
            answer=f"Answer number {n}: clause {n % questions} requires a 1:12 slope [1].",
            citations=citations,
            history=[],
            generated=True,
            model_id=f"model-v{n % 3}",
            prompt_version="plumb-answer-v1",
        )
        feedback = Feedback(
            session_id=turn.session_id,
            turn_id=turn.turn_id,
            user=turn.user,
            rating=n % 5 + 1,
            note=f"note {n}",
            correction=f"Corrected answer {n}." if n % 4 == 0 else None,
        )
        yield turn, feedback


def bulk_store(settings, pairs) -> int:
    """Write pairs with DynamoDB batch writes (25 items a request), as a large table would hold them."""
    from datetime import UTC, datetime

    from pipeline.feedback.dynamo import feedback_item, turn_item
    from pipeline.feedback.tables import build_tables

    tables = build_tables(settings)
    written = 0
    with tables.turns.batch_write() as turns, tables.feedback.batch_write() as feedbacks:
        for turn, feedback in pairs:
            turns.save(turn_item(tables.turns, turn))
            feedbacks.save(feedback_item(tables.feedback, feedback, datetime.now(UTC)))
            written += 1
    return written
