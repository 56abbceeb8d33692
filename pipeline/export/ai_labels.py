"""AI labels in the export (RLAIF): the judge's scores enlarge the ratings, reward and KTO datasets,
and its pairwise verdicts give preference pairs.

A judged turn becomes rows as a rated turn does, under a verdict written by the judge: `user` is the
judge (`<judge model>#<judge prompt version>`), the rating is its score as a level (half up: 3.5
counts as 4, so KTO takes 3.5 and up as desirable and 2 and below as undesirable), the note is its
comment, and the `ratings` row keeps the exact half-point score. `label_source` is `ai`, or `sme` where
an expert's latest review overrode the score (the row then has the expert's score). Every change
makes a higher `feedback_version`, so the new label supersedes the rows of the old, as a user's new
verdict does: the version is 1 + the review's version + the rank of the judgement's reference in
`records.REFERENCE_KINDS` (0 for none), and both only grow (a turn is judged again only against a
stronger reference, pipeline/judge/batch.py). A pairwise verdict that is not a tie prefers one answer
over the other; both must answer the very same prompt (rebuilt as the export rebuilds every prompt),
else the pair is counted and left out.

Labels are read from DynamoDB by when the store received the judgement, the review or the verdict,
so an incremental export reads each once, outbox replays included. One turn read per label: AI
labels number like turns, read as `plumb judge` reads them.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pipeline.export.formats import Rated
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.judge.agreement import judge_agreement, judge_pair_agreement, level
from pipeline.records import REFERENCE_KINDS, Feedback, Judgement, Review, Turn
from pipeline.settings import Settings


@dataclass(frozen=True)
class Label:
    """A judged turn as the export takes it: `rated` holds the turn and the judge's verdict as a
    rating (see the module's docstring), `score` the exact score, `source` who gave it."""

    rated: Rated
    score: float
    source: Literal["ai", "sme", "review"]
    judge: str

    @property
    def level(self) -> int:
        return self.rated.feedback.rating


@dataclass(frozen=True)
class JudgedPair:
    """A pairwise verdict that is not a tie: the better answer's turn and the other's, as rated turns
    whose verdict names the pairwise judge."""

    chosen: Rated
    rejected: Rated
    judge: str


def as_rated(turn: Turn, judge: str, score: float, comment: str, version: int) -> Rated:
    feedback = Feedback(
        session_id=turn.session_id, turn_id=turn.turn_id, user=judge, rating=level(score), note=comment,
        version=version,
    )
    return Rated(turn=turn, feedback=feedback)


def label(turn: Turn, judgement: Judgement, review: Review | None) -> Label:
    """The label that counts for a judgement: the expert's score where the latest review overrode it."""
    overridden = review is not None and review.action == "override"
    score = review.score if overridden else judgement.score
    comment = review.reason if overridden else judgement.comment
    version = 1 + (review.version if review else 0) + REFERENCE_KINDS.index(judgement.reference_kind)
    return Label(as_rated(turn, judgement.judge, score, comment, version), score, "sme" if overridden else "ai",
                 judgement.judge)


class AiLabels:
    """Reads the judge's labels from the feedback store's tables."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.export.expert_labels import ExpertLabels
        from pipeline.export.review_labels import ReviewLabels

        self._dynamo = DynamoFeedbackStore(settings)
        self.missing_turns = 0
        self.reviews = ReviewLabels(self._dynamo)  # label_source "review"
        self.experts = ExpertLabels(self._dynamo)  # label_source "expert"

    def labels(self, start: datetime | None, end: datetime) -> Iterator[Label]:
        """The label of every judgement that was stored, or reviewed, in [start, end): a judgement
        reviewed later comes again in the window of its review, with the review's version."""
        touched: dict[tuple[str, str], Judgement | None] = {}
        for _, judgement in self._dynamo.received("judgements", start, end):
            touched[(judgement.turn_id, judgement.judge)] = judgement
        for _, review in self._dynamo.received("reviews", start, end):
            touched.setdefault((review.turn_id, review.judge), None)
        for (turn_id, judge), judgement in sorted(touched.items()):
            judgement = judgement or self._dynamo.judgement(turn_id, judge)
            history = self._dynamo.review_history(turn_id, judge)
            turn = judgement and self._dynamo.get_turn(judgement.session_id, turn_id)
            if turn is None:
                self.missing_turns += 1
                continue
            yield label(turn, judgement, history[-1] if history else None)

    def pairs(self, start: datetime | None, end: datetime) -> Iterator[JudgedPair]:
        """The non-tied pairwise verdicts stored in [start, end), with both turns."""
        for _, verdict in sorted(self._dynamo.received("pair_judgements", start, end), key=lambda v: v[1].pair):
            if verdict.winner is None:
                continue
            first = self._dynamo.get_turn(verdict.first_session_id, verdict.first_turn_id)
            second = self._dynamo.get_turn(verdict.second_session_id, verdict.second_turn_id)
            if first is None or second is None:
                self.missing_turns += 1
                continue
            sides = [as_rated(turn, verdict.judge, 3.0, "", 1) for turn in (first, second)]
            chosen, rejected = sides if verdict.outcome == "first" else sides[::-1]
            yield JudgedPair(chosen, rejected, verdict.judge)

    def agreement(self) -> dict[str, float | None]:
        """Each judge's agreement with people: quadratic-weighted kappa with users' ratings for a
        scoring judge, the share of agreement on non-tied pairs for a pairwise one (None where no
        turn or pair has both)."""
        figures: dict[str, float | None] = {
            result.judge: result.kappa_quadratic for result in judge_agreement(self._dynamo.judgements(), self._dynamo)
        }
        for result in judge_pair_agreement(self._dynamo.pair_judgements(), self._dynamo):
            figures[result.judge] = result.agreement
        return figures


def trusted(judge: str, figures: dict[str, float | None], floor: float | None) -> bool:
    """Whether a judge's labels pass the agreement floor (no floor: every judge's)."""
    if floor is None:
        return True
    figure = figures.get(judge)
    return figure is not None and figure >= floor

