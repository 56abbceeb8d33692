"""A small seeded set of turns and feedback whose export is known row by row."""

from dataclasses import dataclass

from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Citation, Feedback, Turn

RAMP = "What is the maximum slope of an accessible ramp?"
CONCRETE = "Which concrete grade is required for footings?"
ACCESS = "Who do I call for site access?"
ANCHORS = "How far apart are the anchor bolts?"

RAMP_PASSAGE = Citation(source="design-criteria.pdf", page=21, passage="Ramps shall not exceed a slope of 1:12.", score=0.82)
CONCRETE_PASSAGE = Citation(source="specification.pdf", page=7, passage="Footings: concrete C30/37.", score=0.77)
ACCESS_PASSAGE = Citation(
    source="site-rules.pdf", page=2, passage="Site access: call the gate on +44 20 7946 0958.", score=0.61
)
ANCHOR_PASSAGE = Citation(source="drawings-notes.pdf", page=4, passage="Anchor bolts at 600 mm centres.", score=0.7)

CORRECTION = "The maximum slope is 1:12 (design-criteria.pdf – page 21)."


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
    Seed("bob", RAMP, "The maximum slope is 1:10 [1].", 1, RAMP_PASSAGE, note="wrong, see page 21", correction=CORRECTION),
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


def store_seeds(store: DynamoFeedbackStore, seeds: list[Seed] = SEEDS) -> list[tuple[Turn, Feedback]]:
    pairs = [make_pair(seed) for seed in seeds]
    for turn, feedback in pairs:
        store.save_turn(turn)
        store.save_feedback(feedback)
    return pairs
