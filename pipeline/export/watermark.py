"""The incremental export's watermark, kept in DynamoDB beside the feedback it bookmarks.

One item per destination (`--out`) and filters (ratings, model ids, users): a run with `--rating 1`
reads and moves only the watermark of "rating 1 to this destination", so a later unfiltered run to
the same destination still finds everything the filtered one left out. A scheduled export to S3 and
an admin's download never move each other's bookmark either. The watermark is the end of the last
published window of receipt times: the next run of the same stream reads from there. It moves only
forward, by a conditional write, so two runs started at once cannot both claim the same window.

Items written before watermarks were keyed by filters are keyed by the destination alone. Such an
item may have been moved by a filtered run, so it is never read: the first incremental run of each
stream after the upgrade reads from the beginning (rows already exported come again, none is
skipped; see `watermark_key`). Delete the old item once that run has published.
"""

import hashlib
import json
import types
from datetime import datetime

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from pipeline.errors import PlumbError
from pipeline.export.errors import dynamo_errors, translated
from pipeline.feedback.tables import CONNECTION, credentials
from pipeline.settings import Settings

TABLE_SUFFIX = "export-watermarks"


class WatermarkItem(Model):
    destination = UnicodeAttribute(hash_key=True)  # the watermark key: destination and filters
    watermark = UTCDateTimeAttribute()
    export_id = UnicodeAttribute(default="")
    filters = UnicodeAttribute(default="")  # the filters of the key, readable: {"model_ids": [], ...}
    updated_at = UTCDateTimeAttribute()


def watermark_key(destination: str, filters: dict[str, list]) -> str:
    """The key of one stream's watermark: `<destination>#filters=<16 hex digits>`.

    `filters` is `Filters.describe()` (sorted lists, so equal filters give one key however they were
    typed). The digest keeps the key under DynamoDB's 2,048 bytes whatever the user list; the item
    holds the filters themselves in `filters`. An unfiltered run has a digest too, so its key never
    equals a key written by earlier versions (the bare destination), which it must not trust.
    """
    return f"{destination}#filters={hashlib.sha256(canonical_filters(filters).encode()).hexdigest()[:16]}"


def canonical_filters(filters: dict[str, list]) -> str:
    return json.dumps(filters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class WatermarkMoved(PlumbError):
    """Another export advanced the watermark while this one ran."""


class Watermarks:
    """Read and advance watermarks in the table `<table_prefix>export-watermarks`."""

    def __init__(self, settings: Settings) -> None:
        meta = {
            "table_name": settings.table_prefix + TABLE_SUFFIX,
            "region": settings.aws_region,
            "host": settings.dynamodb_endpoint or None,
            "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
            **CONNECTION,
            **credentials(settings),
        }
        table_meta = type("Meta", (), meta)
        self._table = types.new_class(
            "WatermarkItem", (WatermarkItem,), exec_body=lambda ns: ns.update(Meta=table_meta)
        )
        self._where = settings.dynamodb_endpoint or f"AWS DynamoDB in {settings.aws_region}"

    def create_table(self) -> None:
        """Create the table where missing; running it again changes nothing."""
        with dynamo_errors(self._where):
            self._table.create_table(wait=True)

    def get(self, key: str) -> datetime | None:
        """The watermark under `key` (see `watermark_key`); None when that stream never published."""
        with dynamo_errors(self._where):
            try:
                return self._table.get(key, consistent_read=True).watermark
            except self._table.DoesNotExist:
                return None

    def advance(
        self, key: str, filters: dict[str, list], previous: datetime | None, new: datetime, export_id: str
    ) -> None:
        """Move the watermark under `key` from `previous` (None: never set) to `new`, or raise WatermarkMoved."""
        table = self._table
        condition = table.destination.does_not_exist() if previous is None else table.watermark == previous
        item = table(
            key,
            watermark=new,
            export_id=export_id,
            filters=canonical_filters(filters),
            updated_at=datetime.now(new.tzinfo),
        )
        try:
            item.save(condition=condition)
        except PynamoDBException as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise WatermarkMoved(
                    f"Another export to {key} advanced the watermark while this one ran, so the two "
                    "may overlap: do not schedule exports to one destination to run at the same time."
                ) from error
            raise translated(error, self._where) from error
