"""Which feedback goes into an export, and what is taken out of its text first."""

from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

from pipeline.export.formats import Rated
from pipeline.export.options import LabelSource
from pipeline.export.redact import redact
from pipeline.records import Turn

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Filters:
    """Keep only feedback that matches every given criterion; an empty criterion keeps everything.

    The date range is not a filter here: it is the window the source reads (see sources.Window).
    """

    ratings: frozenset[int] = field(default_factory=frozenset)
    model_ids: frozenset[str] = field(default_factory=frozenset)
    users: frozenset[str] = field(default_factory=frozenset)
    # Who gave the labels: "human" alone unless AI labels (RLAIF) are asked for; AI labels of judges
    # that agree with people less than `min_judge_agreement` are left out (pipeline/export/ai_labels.py).
    label_sources: frozenset[LabelSource] = frozenset({"human"})
    min_judge_agreement: float | None = None

    def accepts(self, rated: Rated) -> bool:
        return (
            "human" in self.label_sources
            and (not self.ratings or rated.feedback.rating in self.ratings)
            and (not self.model_ids or rated.turn.model_id in self.model_ids)
            and (not self.users or rated.feedback.user in self.users)
        )

    def accepts_label(self, turn: Turn, level: int | None, source: LabelSource) -> bool:
        """An AI or expert label of `turn` at `level` (its score rounded half up; None for an expert's
        answer, which has no rating, so a rating filter leaves it out): the user filter names the
        asker, since the label's author is a judge or an expert."""
        return (
            source in self.label_sources
            and (not self.ratings or level in self.ratings)
            and (not self.model_ids or turn.model_id in self.model_ids)
            and (not self.users or turn.user in self.users)
        )

    def accepts_pair(self, first: Turn, second: Turn) -> bool:
        """A pairwise verdict: it has no rating, so a rating filter leaves every one out."""
        return (
            "ai" in self.label_sources
            and not self.ratings
            and all(not self.model_ids or turn.model_id in self.model_ids for turn in (first, second))
            and all(not self.users or turn.user in self.users for turn in (first, second))
        )

    def describe(self) -> dict:
        """The filters as the manifest records them."""
        return {
            "ratings": sorted(self.ratings),
            "model_ids": sorted(self.model_ids),
            "users": sorted(self.users),
            "label_sources": sorted(self.label_sources),
            "min_judge_agreement": self.min_judge_agreement,
        }

    def stream(self) -> dict:
        """The filters that name a watermark stream: the label filters only where they differ from the
        default (human labels, no agreement floor), so streams named before they existed keep their key."""
        described = self.describe()
        if self.label_sources == {"human"}:
            del described["label_sources"]
        if self.min_judge_agreement is None:
            del described["min_judge_agreement"]
        else:
            described["min_judge_agreement"] = [self.min_judge_agreement]
        return described


def redacted(rated: Rated, region: str) -> Rated:
    """`rated` with contact details removed from every text that reaches the datasets; records in
    which nothing was found are kept as they are rather than copied."""
    turn, feedback = rated.turn, rated.feedback
    citations = [_changed(c, region, "passage") for c in turn.citations]
    if any(new is not old for new, old in zip(citations, turn.citations, strict=True)):
        turn = turn.model_copy(update={"citations": citations})
    history = [(redact(asked, region), redact(answered, region)) for asked, answered in turn.history or ()]
    if any(new != old for new, old in zip(history, turn.history or (), strict=True)):
        turn = turn.model_copy(update={"history": history})
    turn = _changed(turn, region, "question", "condensed_question", "answer")
    feedback = _changed(feedback, region, "note", "correction")
    if turn is rated.turn and feedback is rated.feedback:
        return rated
    return Rated(turn=turn, feedback=feedback)


def _changed(record: T, region: str, *fields: str) -> T:
    """`record` with the named text fields redacted, or `record` itself when none changes."""
    update = {}
    for name in fields:
        text = getattr(record, name)
        if text and (clean := redact(text, region)) is not text:
            update[name] = clean
    return record.model_copy(update=update) if update else record
