"""Bulk reads of the feedback tables for the export, fast enough for hundreds of thousands of items.

The tables are the feedback store's (pipeline/feedback/tables.py: names, keys, the `feedback_by_day`
index); only the way of reading differs. botocore checks every attribute value of a response
against DynamoDB's service model in Python, which costs about three times what DynamoDB takes to
answer, and PynamoDB then converts each value once more. This client decodes the JSON body alone:
DynamoDB's wire format already is the attribute-value JSON botocore would return (it would change
only binary values, and these tables hold none). Items then become records through `plain`, the
same way for the tables and for a DynamoDB export in S3.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import JSONParser, ResponseParserFactory

from pipeline.errors import ConfigError, PlumbError, StoreUnavailable
from pipeline.feedback.tables import (
    CONNECTION,
    FeedbackByDay,
    FeedbackItem,
    credentials,
)
from pipeline.records import Feedback, Turn
from pipeline.settings import Settings

Item = dict[str, Any]
ITEMS_PER_SEGMENT = 2000
MAX_SEGMENTS = 1000
THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


class _BodyOnlyJSONParser(JSONParser):
    def _handle_json_body(self, raw_body: bytes, shape: Any) -> dict:
        return orjson.loads(raw_body) if raw_body else {}


class _BodyOnlyParserFactory(ResponseParserFactory):
    def create_parser(self, protocol_name: str):
        if protocol_name == "json":
            return _BodyOnlyJSONParser(**self._defaults)
        return super().create_parser(protocol_name)


def read_client(settings: Settings):
    """A DynamoDB client for Query, Scan and BatchGetItem whose responses are decoded JSON only."""
    session = botocore.session.get_session()
    session.register_component("response_parser_factory", _BodyOnlyParserFactory())
    config = Config(
        connect_timeout=CONNECTION["connect_timeout_seconds"],
        read_timeout=CONNECTION["read_timeout_seconds"],
        retries={"max_attempts": CONNECTION["max_retry_attempts"] + 1, "mode": "standard"},
        parameter_validation=False,  # the requests are built here, not from user input
    )
    return session.create_client(
        "dynamodb",
        region_name=settings.aws_region,
        endpoint_url=settings.dynamodb_endpoint or None,
        config=config,
        **credentials(settings),
    )


@contextmanager
def read_errors(where: str) -> Iterator[None]:
    """botocore's errors as the project's: unreachable or throttled means StoreUnavailable."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise ConfigError(f"A table the export reads does not exist at {where}: run `plumb db init`.") from error
        if code in THROTTLED:
            raise StoreUnavailable(f"DynamoDB at {where} is throttling the export: run it again later.") from error
        raise PlumbError(f"DynamoDB at {where} refused the export's read: {code}: {error}") from error
    except BotoCoreError as error:
        raise StoreUnavailable(
            f"DynamoDB at {where} cannot be reached ({error}): check that it is running and reachable, "
            "then run the export again."
        ) from error


def feedback_items(client, table: str, start: datetime | None, end: datetime) -> Iterator[Item]:
    """Raw feedback items received in [start, end): the day index for a window with a start (one
    query per day, as the store's `feedback_between`), a scan of the table for everything."""
    stored_at, day = FeedbackItem.stored_at.attr_name, FeedbackItem.day.attr_name
    last = FeedbackItem.stored_at.serialize(end - timedelta(microseconds=1))
    if start is None:
        segments = scan_segments(client, table)
        for segment in range(segments):
            yield from _pages(
                client.get_paginator("scan"),
                TableName=table,
                Segment=segment,
                TotalSegments=segments,
                FilterExpression="#s <= :last",
                ExpressionAttributeNames={"#s": stored_at},
                ExpressionAttributeValues={":last": {"S": last}},
            )
        return
    if start >= end:
        return
    first = FeedbackItem.stored_at.serialize(start)
    for offset in range((end.astimezone(UTC).date() - start.astimezone(UTC).date()).days + 1):
        yield from _pages(
            client.get_paginator("query"),
            TableName=table,
            IndexName=FeedbackByDay.Meta.index_name,
            KeyConditionExpression="#d = :day AND #s BETWEEN :first AND :last",
            ExpressionAttributeNames={"#d": day, "#s": stored_at},
            ExpressionAttributeValues={
                ":day": {"S": (start.astimezone(UTC).date() + timedelta(days=offset)).isoformat()},
                ":first": {"S": first},
                ":last": {"S": last},
            },
        )


def scan_segments(client, table: str) -> int:
    """How many segments to scan the table in, one after the other, ITEMS_PER_SEGMENT items each.

    DynamoDB Local answers each page of a scan in time proportional to the rest of the segment, so a
    whole-table scan takes time quadratic in the table's size (100k feedback items: 18 s as one
    segment, 2 s as 50). AWS pages in constant time; there the segments cost nothing extra. The
    item count is DynamoDB's estimate (refreshed every few hours on AWS), which is all this needs.
    """
    count = client.describe_table(TableName=table)["Table"].get("ItemCount", 0)
    return min(max(1, -(-count // ITEMS_PER_SEGMENT)), MAX_SEGMENTS)


def _pages(paginator, **request) -> Iterator[Item]:
    for page in paginator.paginate(**request):
        yield from page["Items"]


def turn_items(client, table: str, keys: list[tuple[str, str]]) -> list[Item]:
    """The turns with these (session_id, turn_id) keys (at most 100, BatchGetItem's limit); missing
    ones are absent. Keys DynamoDB leaves unprocessed under load are asked for again."""
    request = {table: {"Keys": [{"session_id": {"S": s}, "turn_id": {"S": t}} for s, t in keys]}}
    found: list[Item] = []
    for attempt in range(8):
        answer = client.batch_get_item(RequestItems=request)
        found += answer["Responses"].get(table, [])
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.05 * 2**attempt)
    raise StoreUnavailable("DynamoDB kept turns back under load: run the export again later.")


def plain(item: Item) -> dict[str, Any]:
    """An item's attribute values as Python values, for pydantic to validate."""
    return {name: _value(value) for name, value in item.items()}


def _value(attribute: dict[str, Any]) -> Any:
    """One DynamoDB attribute value, of the types the feedback tables use.

    Written here rather than taken from boto3's TypeDeserializer, which makes every number a
    Decimal and dispatches each value through several method calls: at five cited passages a turn
    that was a fifth of the export's time. Numbers become int or float (told apart with plain `in`
    tests: a generator over ".eE" took a third of decoding a turn); pydantic checks the rest.
    """
    [(kind, value)] = attribute.items()
    match kind:
        case "S" | "BOOL":
            return value
        case "N":
            return float(value) if "." in value or "e" in value or "E" in value else int(value)
        case "M":
            return {name: _value(inner) for name, inner in value.items()}
        case "L":
            return [_value(inner) for inner in value]
        case "NULL":
            return None
    raise PlumbError(f"The export met a DynamoDB value of type {kind}, which the feedback tables never hold.")


def turn_from_item(item: Item) -> Turn:
    """A stored turn; its history's {question, answer} maps become the record's (question, answer) pairs."""
    values = plain(item)
    if values.get("history") is not None:
        values["history"] = [(pair["question"], pair["answer"]) for pair in values["history"]]
    return Turn.model_validate(values)


def feedback_from_item(item: Item) -> tuple[Feedback, datetime]:
    """The feedback and when the store received it. Items stored before submissions had ids read
    with an empty `submission_id`, as the store's own reads give them."""
    values = plain(item)
    feedback = Feedback.model_validate({"submission_id": "", **values})
    return feedback, FeedbackItem.stored_at.deserialize(values["stored_at"])
