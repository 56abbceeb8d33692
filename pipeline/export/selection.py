"""Which feedback goes into an export, and what is taken out of its text first."""

from dataclasses import dataclass, field

from pipeline.export.formats import Rated
from pipeline.export.redact import redact


@dataclass(frozen=True)
class Filters:
    """Keep only feedback that matches every given criterion; an empty criterion keeps everything.

    The date range is not a filter here: it is the window the source reads (see sources.Window).
    """

    ratings: frozenset[int] = field(default_factory=frozenset)
    model_ids: frozenset[str] = field(default_factory=frozenset)
    users: frozenset[str] = field(default_factory=frozenset)

    def accepts(self, rated: Rated) -> bool:
        return (
            (not self.ratings or rated.feedback.rating in self.ratings)
            and (not self.model_ids or rated.turn.model_id in self.model_ids)
            and (not self.users or rated.feedback.user in self.users)
        )

    def describe(self) -> dict:
        """The filters as the manifest records them."""
        return {
            "ratings": sorted(self.ratings),
            "model_ids": sorted(self.model_ids),
            "users": sorted(self.users),
        }


def redacted(rated: Rated, region: str) -> Rated:
    """`rated` with contact details removed from every text that reaches the datasets."""
    turn = rated.turn
    citations = [c.model_copy(update={"passage": redact(c.passage, region)}) for c in turn.citations]
    turn = turn.model_copy(
        update={
            "question": redact(turn.question, region),
            "condensed_question": redact(turn.condensed_question, region),
            "answer": redact(turn.answer, region),
            "citations": citations,
        }
    )
    feedback = rated.feedback
    feedback = feedback.model_copy(
        update={
            "note": redact(feedback.note, region),
            "correction": redact(feedback.correction, region) if feedback.correction else feedback.correction,
        }
    )
    return Rated(turn=turn, feedback=feedback)
