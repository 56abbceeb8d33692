"""Where the export reads turns and feedback: the DynamoDB tables, or a DynamoDB export to S3.

Either way the feedback versions of a time window (by when the store received them) stream through
a scratch SQLite file that keeps only the latest version per turn and user, then are joined to
their turns in batches. Nothing is held in memory but one batch, however large the tables are.
"""

import gzip
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO
from pathlib import Path
from urllib.parse import urlparse

from pipeline.export.errors import ExportFailed, dynamo_errors
from pipeline.export.formats import Rated
from pipeline.feedback.dynamo import DynamoFeedbackStore, item_feedback, item_turn, utc
from pipeline.feedback.tables import FeedbackItem, TurnItem, build_tables
from pipeline.records import Feedback, Turn
from pipeline.settings import Settings

# DynamoDB's BatchGetItem takes at most 100 keys.
BATCH = 100


@dataclass(frozen=True)
class Window:
    """Receipt times [start, end); start None means from the first feedback ever stored."""

    start: datetime | None
    end: datetime

    def holds(self, stored_at: datetime) -> bool:
        return (self.start is None or stored_at >= self.start) and stored_at < self.end


@dataclass
class ReadStats:
    versions: int = 0
    missing_turns: int = 0


class LatestVersions:
    """Feedback versions staged on disk, keeping only the highest version per turn and user."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE latest (turn_user TEXT PRIMARY KEY, version INTEGER, feedback TEXT)")

    def add_all(self, versions: Iterable[Feedback], stats: ReadStats) -> None:
        for feedback in versions:
            stats.versions += 1
            self._db.execute(
                "INSERT INTO latest VALUES (?, ?, ?) ON CONFLICT (turn_user) DO UPDATE SET "
                "version = excluded.version, feedback = excluded.feedback WHERE excluded.version > latest.version",
                (f"{feedback.turn_id}#{feedback.user}", feedback.version, feedback.model_dump_json()),
            )

    def batches(self) -> Iterator[list[Feedback]]:
        """The latest versions in a stable order (by turn), BATCH at a time."""
        cursor = self._db.execute("SELECT feedback FROM latest ORDER BY turn_user")
        while rows := cursor.fetchmany(BATCH):
            yield [Feedback.model_validate_json(row[0]) for row in rows]

    def close(self) -> None:
        self._db.close()


class DynamoSource:
    """Reads the feedback tables: the day index for a window with a start, a scan for everything."""

    def __init__(self, settings: Settings) -> None:
        self._store = DynamoFeedbackStore(settings)
        self._tables = build_tables(settings)
        self._where = settings.dynamodb_endpoint or f"AWS DynamoDB in {settings.aws_region}"
        self.description = {"kind": "dynamodb", "table": settings.table_prefix + "feedback"}
        self.stats = ReadStats()

    def end_limit(self) -> datetime | None:
        return None

    def rated(self, window: Window, scratch: Path) -> Iterator[Rated]:
        staged = LatestVersions(scratch / "latest.sqlite")
        try:
            staged.add_all(self._versions(window), self.stats)
            for batch in staged.batches():
                yield from self._join(batch)
        finally:
            staged.close()

    def _versions(self, window: Window) -> Iterator[Feedback]:
        if window.start is not None:
            yield from self._store.feedback_between(window.start, window.end)
            return
        table = self._tables.feedback
        with dynamo_errors(self._where):
            for item in table.scan(table.stored_at < utc(window.end)):
                yield item_feedback(item)

    def _join(self, batch: list[Feedback]) -> Iterator[Rated]:
        keys = {(f.session_id, f.turn_id) for f in batch}
        with dynamo_errors(self._where):
            turns = {(item.session_id, item.turn_id): item_turn(item) for item in self._tables.turns.batch_get(keys)}
        yield from _joined(batch, turns, self.stats)


class S3ExportSource:
    """Reads DynamoDB's own exports of the feedback and turns tables to S3 (full exports in
    DynamoDB JSON, gzipped lines, as `aws dynamodb export-table-to-point-in-time` writes them),
    so very large tables are exported without scanning them."""

    def __init__(self, feedback_export: str, turns_export: str) -> None:
        import boto3

        self._s3 = boto3.client("s3")
        self._feedback = _export_location(feedback_export)
        self._turns = _export_location(turns_export)
        self.description = {"kind": "dynamodb-export", "feedback": feedback_export, "turns": turns_export}
        self.stats = ReadStats()

    def end_limit(self) -> datetime:
        """The export's point in time: nothing received later is in it, so a window never passes it."""
        summary = self._summary(self._feedback)
        return datetime.fromisoformat(summary["exportTime"].replace("Z", "+00:00"))

    def rated(self, window: Window, scratch: Path) -> Iterator[Rated]:
        self._summary(self._turns)
        staged = LatestVersions(scratch / "latest.sqlite")
        turns = sqlite3.connect(scratch / "turns.sqlite")
        try:
            staged.add_all(self._versions(window), self.stats)
            turns.execute("CREATE TABLE turns (session_id TEXT, turn_id TEXT, item TEXT, PRIMARY KEY (session_id, turn_id))")
            turns.executemany(
                "INSERT OR REPLACE INTO turns VALUES (?, ?, ?)",
                ((item["session_id"]["S"], item["turn_id"]["S"], json.dumps(item)) for item in self._items(self._turns)),
            )
            for batch in staged.batches():
                yield from _joined(batch, _staged_turns(turns, batch), self.stats)
        finally:
            staged.close()
            turns.close()

    def _versions(self, window: Window) -> Iterator[Feedback]:
        for raw in self._items(self._feedback):
            item = FeedbackItem.from_raw_data(raw)
            if window.holds(item.stored_at):
                yield item_feedback(item)

    def _summary(self, location: tuple[str, str]) -> dict:
        bucket, prefix = location
        summary = json.loads(self._get(bucket, f"{prefix}/manifest-summary.json").read())
        if summary.get("exportType", "FULL_EXPORT") != "FULL_EXPORT" or summary.get("outputFormat") != "DYNAMODB_JSON":
            raise ExportFailed(
                f"s3://{bucket}/{prefix} is a {summary.get('exportType')} in {summary.get('outputFormat')}; "
                "export the table again as a full export in DynamoDB JSON."
            )
        return summary

    def _items(self, location: tuple[str, str]) -> Iterator[dict]:
        """Every item of an export, one data file at a time, as DynamoDB JSON attribute maps."""
        bucket, prefix = location
        listing = self._get(bucket, f"{prefix}/manifest-files.json").read().decode()
        for line in listing.splitlines():
            if line.strip():
                key = json.loads(line)["dataFileS3Key"]
                with gzip.open(self._get(bucket, key), "rt", encoding="utf-8") as lines:
                    for item_line in lines:
                        yield json.loads(item_line)["Item"]

    def _get(self, bucket: str, key: str) -> IO[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except (BotoCoreError, ClientError) as error:
            raise ExportFailed(
                f"Could not read s3://{bucket}/{key} ({error}): give the folder of a finished DynamoDB "
                "export, the one that holds manifest-summary.json."
            ) from error


def _export_location(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ExportFailed(f"{uri!r} is not an S3 location: write it as s3://bucket/prefix/AWS/DynamoDB/<export id>.")
    return parsed.netloc, parsed.path.strip("/")


def _staged_turns(db: sqlite3.Connection, batch: list[Feedback]) -> dict[tuple[str, str], Turn]:
    turns = {}
    for feedback in batch:
        key = (feedback.session_id, feedback.turn_id)
        row = db.execute("SELECT item FROM turns WHERE session_id = ? AND turn_id = ?", key).fetchone()
        if row:
            turns[key] = item_turn(TurnItem.from_raw_data(json.loads(row[0])))
    return turns


def _joined(batch: list[Feedback], turns: dict[tuple[str, str], Turn], stats: ReadStats) -> Iterator[Rated]:
    """Feedback with its turn; feedback whose turn is missing is counted and left out."""
    for feedback in batch:
        turn = turns.get((feedback.session_id, feedback.turn_id))
        if turn is None:
            stats.missing_turns += 1
        else:
            yield Rated(turn=turn, feedback=feedback)
