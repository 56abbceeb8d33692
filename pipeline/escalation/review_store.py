"""Review batches in DynamoDB (the `review-batches` table of pipeline/feedback/tables.py): a batch's
description, one entry per transcript in drawing order (a batch of hundreds would pass DynamoDB's 400 KB per item),
and one entry per reviewer and item, which a reviewer's new rating of the item replaces."""

from collections.abc import Callable
from contextlib import AbstractContextManager

from pipeline.escalation.review import ReviewBatch, ReviewItem, ReviewRating
from pipeline.feedback.tables import ReviewEntryItem

BATCH = "batch"


class ReviewStore:
    def __init__(self, table: type[ReviewEntryItem], errors: Callable[[], AbstractContextManager[None]]) -> None:
        self._table = table
        self._errors = errors

    def save_batch(self, batch: ReviewBatch) -> None:
        table = self._table
        with self._errors(), table.batch_write() as writer:
            writer.save(table(batch.batch_id, BATCH, body=batch.model_copy(update={"items": []}).model_dump_json()))
            for position, item in enumerate(batch.items):  # numbered, so a query returns them in drawing order
                writer.save(table(batch.batch_id, f"item#{position:06d}", body=item.model_dump_json()))

    def batch_ids(self) -> list[str]:
        """Every batch, newest first (a scan for the descriptions: batches are few)."""
        with self._errors():
            found = [ReviewBatch.model_validate_json(e.body) for e in self._table.scan(self._table.entry == BATCH)]
        return [b.batch_id for b in sorted(found, key=lambda b: b.created_at, reverse=True)]

    def batch(self, batch_id: str) -> tuple[ReviewBatch, list[ReviewRating]] | None:
        """The batch with its items in drawing order, and its ratings; None when there is no such batch."""
        batch, items, ratings = None, [], []
        with self._errors():
            for entry in self._table.query(batch_id, consistent_read=True):
                if entry.entry == BATCH:
                    batch = ReviewBatch.model_validate_json(entry.body)
                elif entry.entry.startswith("item#"):
                    items.append(ReviewItem.model_validate_json(entry.body))
                else:
                    ratings.append(ReviewRating.model_validate_json(entry.body))
        if batch is None:
            return None
        return batch.model_copy(update={"items": items}), ratings

    def rate(self, rating: ReviewRating) -> None:
        rating = ReviewRating.model_validate(rating.model_dump())
        with self._errors():
            self._table(rating.batch_id, f"rating#{rating.turn_id}#{rating.reviewer}", body=rating.model_dump_json()).save()
