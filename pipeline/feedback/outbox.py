"""Writes waiting for DynamoDB, kept on local disk so that neither an outage nor a restart loses one.

SQLite in WAL mode with `synchronous=FULL`: a record is on disk (fsync'd) when `put` returns.
Records come back out in the order they went in; one is removed only after it was stored. A record
DynamoDB refuses for good is moved to the `dead_letters` table with the reason, so that it does not
hold up the records behind it and an admin can retry or discard it.
"""

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from pipeline.records import Escalation
from pipeline.records import Feedback, Judgement, PairJudgement, Review, Turn
from pipeline.settings import Settings

Record = Turn | Feedback | Judgement | PairJudgement | Review | Escalation
KINDS: dict[str, type[Record]] = {
    "turn": Turn,
    "feedback": Feedback,
    "judgement": Judgement,
    "pair_judgement": PairJudgement,
    "review": Review,
    "escalation": Escalation,
}


def outbox_path(settings: Settings) -> Path:
    return settings.data_dir / "outbox.sqlite3"


@dataclass(frozen=True)
class DeadLetter:
    """A queued record the store refused for good: what it was, whose, why, and when."""

    seq: int
    kind: str
    session_id: str
    turn_id: str
    user: str
    reason: str
    queued_at: datetime
    failed_at: datetime


class Outbox:
    """A durable first-in first-out queue of turns, feedback and judgements, shared safely by the app's threads
    (one connection behind a lock) and by other processes (SQLite's own file locking)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            "seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL, queued_at TEXT NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
            "body TEXT NOT NULL, queued_at TEXT NOT NULL, reason TEXT NOT NULL, failed_at TEXT NOT NULL)"
        )

    def put(self, record: Record) -> None:
        kind = next(name for name, model in KINDS.items() if isinstance(record, model))
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (kind, body, queued_at) VALUES (?, ?, ?)",
                (kind, record.model_dump_json(), datetime.now(UTC).isoformat()),
            )

    def peek(self) -> tuple[int, Record] | None:
        """The oldest waiting record with its sequence number, or None when nothing waits. A record
        that no longer reads as its kind (queued by an older version of the app) becomes a dead letter."""
        while True:
            with self._lock:
                row = self._db.execute("SELECT seq, kind, body FROM outbox ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            seq, kind, body = row
            try:
                return seq, KINDS[kind].model_validate_json(body)
            except ValidationError as exc:
                self.bury(seq, f"The queued {kind} is not a valid {kind} any more: {exc}")

    def remove(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def bury(self, seq: int, reason: str) -> None:
        """Move a waiting record to the dead letters, with why it was refused and when."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO dead_letters SELECT seq, kind, body, queued_at, ?, ? FROM outbox WHERE seq = ?",
                (reason, datetime.now(UTC).isoformat(), seq),
            )
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body, reason, queued_at, failed_at FROM dead_letters ORDER BY seq"
            ).fetchall()
        return [_dead_letter(*row) for row in rows]

    def retry(self, seq: int) -> None:
        """Queue a dead letter again, behind the records waiting now."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO outbox (kind, body, queued_at) SELECT kind, body, queued_at FROM dead_letters WHERE seq = ?",
                (seq,),
            )
            db.execute("DELETE FROM dead_letters WHERE seq = ?", (seq,))

    def discard(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM dead_letters WHERE seq = ?", (seq,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _dead_letter(seq: int, kind: str, body: str, reason: str, queued_at: str, failed_at: str) -> DeadLetter:
    """Read as plain JSON, not as the record: a dead letter may be one that no longer validates."""
    fields = json.loads(body)
    return DeadLetter(
        seq=seq,
        kind=kind,
        session_id=str(fields.get("session_id", "")),
        turn_id=str(fields.get("turn_id", "")),
        user=str(fields.get("user", "")),
        reason=reason,
        queued_at=datetime.fromisoformat(queued_at),
        failed_at=datetime.fromisoformat(failed_at),
    )
