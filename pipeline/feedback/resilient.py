"""The store the app uses: DynamoDB first, the local outbox when DynamoDB cannot be reached.

Queued writes are replayed oldest first: before the next write or read, and by a background thread
every `retry_seconds` while any wait. After an outage, writes go straight to the outbox for
`retry_seconds` instead of each making the user wait for a connection timeout. Replaying is safe to
repeat (the Dynamo store's writes are idempotent), so a record replayed twice, by two threads or
two processes sharing the outbox, is still stored once.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from pipeline.errors import PlumbError, StoreUnavailable
from pipeline.feedback.dynamo import DynamoFeedbackStore, checked_turn
from pipeline.feedback.outbox import Outbox, outbox_path
from pipeline.feedback.store import R, Saved, SessionSummary, checked_feedback
from pipeline.records import Feedback, Turn
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class ResilientStore:
    """FeedbackStore whose writes are never lost: each is stored, or queued on disk and synced later
    (`Saved.queued`). Reads need DynamoDB and raise StoreUnavailable while it is down."""

    def __init__(self, store: DynamoFeedbackStore, outbox: Outbox, retry_seconds: float = 5.0) -> None:
        self._store = store
        self._outbox = outbox
        self._retry_seconds = retry_seconds
        self._down_until = 0.0
        self._drain_lock = threading.Lock()
        self._drainer_lock = threading.Lock()
        self._drainer: threading.Thread | None = None
        self._closed = threading.Event()
        if outbox.pending():
            self._start_drainer()

    def pending(self) -> int:
        """How many writes wait in the outbox."""
        return self._outbox.pending()

    def drain(self) -> int:
        """Replay queued writes oldest first and return how many were stored. Stops at the first
        failure and raises it, leaving that record and the rest queued."""
        with self._drain_lock:
            return self._replay()

    def _replay(self) -> int:
        replayed = 0
        while (entry := self._outbox.peek()) is not None:
            seq, record = entry
            if isinstance(record, Turn):
                self._store.save_turn(record)
            else:
                self._store.save_feedback(record)
            self._outbox.remove(seq)
            replayed += 1
        return replayed

    def _caught_up(self) -> bool:
        """True when nothing waits in the outbox, replaying first if DynamoDB may be back. Never waits
        for another thread's replay: a write that finds one running is queued behind it."""
        if not self._outbox.pending():
            return True
        if time.monotonic() < self._down_until or not self._drain_lock.acquire(blocking=False):
            return False
        try:
            self._replay()
        except StoreUnavailable:
            self._down_until = time.monotonic() + self._retry_seconds
            return False
        finally:
            self._drain_lock.release()
        return True

    def _save(self, record: R, write: Callable[[R], Saved[R]]) -> Saved[R]:
        if self._caught_up():
            try:
                return write(record)
            except StoreUnavailable as exc:
                log.warning("Feedback store unreachable, queueing locally: %s", exc)
                self._down_until = time.monotonic() + self._retry_seconds
        self._outbox.put(record)
        self._start_drainer()
        return Saved(record, queued=True)

    def save_turn(self, turn: Turn) -> Saved[Turn]:
        return self._save(checked_turn(turn), self._store.save_turn)

    def save_feedback(self, feedback: Feedback) -> Saved[Feedback]:
        return self._save(checked_feedback(feedback), self._store.save_feedback)

    def _start_drainer(self) -> None:
        with self._drainer_lock:
            if self._drainer is None and not self._closed.is_set():
                self._drainer = threading.Thread(target=self._drain_in_background, name="feedback-outbox", daemon=True)
                self._drainer.start()

    def _drain_in_background(self) -> None:
        while not self._closed.wait(self._retry_seconds):
            try:
                self.drain()
            except PlumbError as exc:
                log.warning("Queued feedback not synced yet: %s", exc)
            # Decided under the lock _start_drainer takes: a record queued meanwhile always has a drainer.
            with self._drainer_lock:
                if not self._outbox.pending():
                    self._drainer = None
                    return

    def close(self) -> None:
        """Stop the background replay; what is still queued stays on disk for the next start."""
        self._closed.set()
        with self._drainer_lock:
            drainer = self._drainer
        if drainer is not None:
            drainer.join()
        self._outbox.close()

    def _read(self) -> None:
        """Let reads see queued writes once DynamoDB is back."""
        self._caught_up()

    def get_turn(self, session_id: str, turn_id: str) -> Turn | None:
        self._read()
        return self._store.get_turn(session_id, turn_id)

    def session_turns(self, session_id: str) -> list[Turn]:
        self._read()
        return self._store.session_turns(session_id)

    def user_sessions(self, user: str, limit: int = 20) -> list[SessionSummary]:
        self._read()
        return self._store.user_sessions(user, limit)

    def latest_feedback(self, turn_id: str, user: str) -> Feedback | None:
        self._read()
        return self._store.latest_feedback(turn_id, user)

    def feedback_history(self, turn_id: str, user: str) -> list[Feedback]:
        self._read()
        return self._store.feedback_history(turn_id, user)

    def feedback_between(self, start: datetime, end: datetime) -> Iterator[Feedback]:
        self._read()
        return self._store.feedback_between(start, end)


def make_store(settings: Settings) -> ResilientStore:
    """The app's store: DynamoDB as the settings say, with the outbox under the data folder."""
    return ResilientStore(DynamoFeedbackStore(settings), Outbox(outbox_path(settings)))
