"""Reviewers' relevance ratings (offline review, pipeline/escalation/review.py) as a label source of
the export: `label_source = review`.

Every review batch in DynamoDB is consolidated as `plumb review consolidate` does (the same function,
so a row carries the manifest's consolidated score); each item with a score becomes a label as an AI
judge's score does (ai_labels.py): the rating is the score as a level (half up: a median of 3.5
counts as 4), the `ratings` row keeps the exact median, `user` is `review#<batch id>` and the note
says how many reviewers rated it and how much they agreed.

An item is read in the export window that holds its latest rating, so an incremental export reads
it once, and again after a reviewer adds or changes a rating. Its `feedback_version` is that latest
rating's time in milliseconds since 1970 (UTC): it grows with every new or changed rating, so the
later consolidation supersedes the rows of the earlier one, as a user's new verdict does.
"""

from collections.abc import Iterator
from datetime import datetime

from pipeline.escalation.review import consolidate
from pipeline.export.ai_labels import Label, as_rated
from pipeline.feedback.dynamo import DynamoFeedbackStore

REVIEWER_PREFIX = "review#"


def note(item: dict) -> str:
    """What the consolidation says about one item's ratings, e.g. "2 reviewers, agreement 0.75"."""
    count = len(item["ratings"])
    agreed = "" if item["agreement"] is None else f", agreement {item['agreement']}"
    return f"{count} reviewer{'s' if count != 1 else ''}{agreed}"


class ReviewLabels:
    """Reads the consolidated review batches from the feedback store's tables."""

    def __init__(self, dynamo: DynamoFeedbackStore) -> None:
        self._dynamo = dynamo
        self.missing_turns = 0

    def labels(self, start: datetime | None, end: datetime) -> Iterator[Label]:
        """The label of every reviewed item whose latest rating falls in [start, end), batch by batch."""
        reviews = self._dynamo.review_batches
        for batch_id in sorted(reviews.batch_ids()):
            found = reviews.batch(batch_id)
            if found is None:  # removed between the listing and the read
                continue
            batch, ratings = found
            latest: dict[str, datetime] = {}
            for rating in ratings:
                latest[rating.turn_id] = max(rating.rated_at, latest.get(rating.turn_id, rating.rated_at))
            for item in consolidate(batch, ratings)["items"]:
                rated_at = latest.get(item["turn_id"])
                if item["score"] is None or not (start is None or start <= rated_at) or rated_at >= end:
                    continue
                turn = self._dynamo.get_turn(item["session_id"], item["turn_id"])
                if turn is None:
                    self.missing_turns += 1
                    continue
                reviewer = f"{REVIEWER_PREFIX}{batch_id}"
                rated = as_rated(turn, reviewer, item["score"], note(item), int(rated_at.timestamp() * 1000))
                yield Label(rated, item["score"], "review", reviewer)
