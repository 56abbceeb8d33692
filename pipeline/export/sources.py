"""Where the export reads turns and feedback: the DynamoDB tables, or a DynamoDB export to S3.

Either way the feedback versions of a time window (by when the store received them) stream through
a scratch SQLite file that keeps only the latest version per turn and user, then are joined to
their turns in batches. Nothing is held in memory but one batch, however large the tables are.
"""

import gzip
import json
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from pipeline.export.build import scratch_db
from pipeline.export.dynamo_read import (
    feedback_from_item,
    feedback_items,
    read_client,
    read_errors,
    turn_from_item,
    turn_items,
)
from pipeline.export.errors import ExportFailed
from pipeline.export.formats import Rated
from pipeline.records import Feedback, Turn
from pipeline.settings import Settings

BATCH = 100  # DynamoDB's BatchGetItem takes at most 100 keys


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
        self._db = scratch_db(path)
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
    """Reads the feedback store's tables: the day index for a window with a start, a scan for everything."""

    def __init__(self, settings: Settings) -> None:
        self._client = read_client(settings)
        self._feedback_table = settings.table_prefix + "feedback"
        self._turns_table = settings.table_prefix + "turns"
        self._where = settings.dynamodb_endpoint or f"AWS DynamoDB in {settings.aws_region}"
        self.description = {"kind": "dynamodb", "table": self._feedback_table}
        self.stats = ReadStats()

    def end_limit(self) -> datetime | None:
        return None

    def rated(self, window: Window, scratch: Path) -> Iterator[Rated]:
        staged = LatestVersions(scratch / "latest.sqlite")
        try:
            with read_errors(self._where):
                items = feedback_items(self._client, self._feedback_table, window.start, window.end)
                staged.add_all((feedback_from_item(item)[0] for item in items), self.stats)
                for batch, turns in _prefetched(staged.batches(), self._turns):
                    yield from _joined(batch, turns, self.stats)
        finally:
            staged.close()

    def _turns(self, batch: list[Feedback]) -> dict[tuple[str, str], Turn]:
        keys = sorted({(f.session_id, f.turn_id) for f in batch})
        items = turn_items(self._client, self._turns_table, keys)
        return {(turn.session_id, turn.turn_id): turn for turn in map(turn_from_item, items)}


def _prefetched(batches: Iterator[list[Feedback]], fetch, ahead: int = 4):
    """(batch, fetch(batch)) in order, with the next few fetches already running in threads, so
    DynamoDB answers while the previous batch is turned into rows."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append((batch, pool.submit(fetch, batch)))
            if len(pending) > ahead:
                batch, future = pending.popleft()
                yield batch, future.result()
        while pending:
            batch, future = pending.popleft()
            yield batch, future.result()


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
        turns = scratch_db(scratch / "turns.sqlite")
        try:
            staged.add_all(self._versions(window), self.stats)
            turns.execute(
                "CREATE TABLE turns (session_id TEXT, turn_id TEXT, item TEXT, PRIMARY KEY (session_id, turn_id))"
            )
            turns.executemany(
                "INSERT OR REPLACE INTO turns VALUES (?, ?, ?)",
                (
                    (item["session_id"]["S"], item["turn_id"]["S"], json.dumps(item))
                    for item in self._items(self._turns)
                ),
            )
            for batch in staged.batches():
                yield from _joined(batch, _staged_turns(turns, batch), self.stats)
        finally:
            staged.close()
            turns.close()

    def _versions(self, window: Window) -> Iterator[Feedback]:
        for item in self._items(self._feedback):
            feedback, stored_at = feedback_from_item(item)
            if window.holds(stored_at):
                yield feedback

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
            turns[key] = turn_from_item(json.loads(row[0]))
    return turns


def _joined(batch: list[Feedback], turns: dict[tuple[str, str], Turn], stats: ReadStats) -> Iterator[Rated]:
    """Feedback with its turn; feedback whose turn is missing is counted and left out."""
    for feedback in batch:
        turn = turns.get((feedback.session_id, feedback.turn_id))
        if turn is None:
            stats.missing_turns += 1
        else:
            yield Rated(turn=turn, feedback=feedback)
