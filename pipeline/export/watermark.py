"""The incremental export's watermark, kept in DynamoDB beside the feedback it bookmarks.

One item per destination (`--out`), so a scheduled export to S3 and an admin's download never move
each other's bookmark. The watermark is the end of the last published window of receipt times:
the next run reads from there. It moves only forward, by a conditional write, so two runs started
at once cannot both claim the same window.
"""

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
    destination = UnicodeAttribute(hash_key=True)
    watermark = UTCDateTimeAttribute()
    export_id = UnicodeAttribute(default="")
    updated_at = UTCDateTimeAttribute()


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

    def get(self, destination: str) -> datetime | None:
        with dynamo_errors(self._where):
            try:
                return self._table.get(destination, consistent_read=True).watermark
            except self._table.DoesNotExist:
                return None

    def advance(self, destination: str, previous: datetime | None, new: datetime, export_id: str) -> None:
        """Move the watermark from `previous` (None: never set) to `new`, or raise WatermarkMoved."""
        table = self._table
        condition = table.destination.does_not_exist() if previous is None else table.watermark == previous
        item = table(destination, watermark=new, export_id=export_id, updated_at=datetime.now(new.tzinfo))
        try:
            item.save(condition=condition)
        except PynamoDBException as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise WatermarkMoved(
                    f"Another export to {destination} advanced the watermark while this one ran, so the two "
                    "may overlap: do not schedule exports to one destination to run at the same time."
                ) from error
            raise translated(error, self._where) from error
