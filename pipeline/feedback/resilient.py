"""The store the app uses: DynamoDB first, the local outbox when DynamoDB cannot be reached.

A user's click or page read never waits for a backlog: while any record waits in the outbox, new
writes queue behind it (the store assigns feedback versions, so the order of writes matters), and
only a background thread replays them, oldest first, at once and then every `retry_seconds` while
DynamoDB cannot be reached. After an outage, writes go straight to the outbox for `retry_seconds`
instead of each making the user wait for a connection timeout. A queued record DynamoDB refuses for
good (anything but an outage, StoreUnavailable, or a setup fault such as missing tables or refused
credentials, ConfigError, while which every record waits) becomes a dead letter, with the reason, and the records behind it
go on; an admin retries or discards it. Replaying is safe to repeat (the Dynamo store's writes are
idempotent), so a record replayed twice, by two threads or two processes sharing the outbox, is still
stored once.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, PlumbError, StoreUnavailable
from pipeline.feedback.dynamo import DynamoFeedbackStore, checked_review, checked_turn
from pipeline.feedback.outbox import DeadLetter, Outbox, Record, outbox_path
from pipeline.feedback.store import DeletedSession, R, Saved, SessionSummary, checked_feedback
from pipeline.records import Escalation
from pipeline.records import Feedback, Judgement, PairJudgement, Review, Turn
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.escalation.review_store import ReviewStore
    from pipeline.escalation.storage import Escalations

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
        """Replay queued writes oldest first and return how many were stored. A record refused for
        good becomes a dead letter and the next one goes on; StoreUnavailable stops the replay and is
        raised, leaving that record and the rest queued."""
        with self._drain_lock:
            replayed = 0
            while (entry := self._outbox.peek()) is not None:
                seq, record = entry
                try:
                    self._write(record)
                except (StoreUnavailable, ConfigError):
                    raise  # an outage or a setup fault (tables, credentials): every record waits, none is refused
                except PlumbError as exc:
                    log.error("The feedback store refused a queued %s for good, kept as a dead letter: %s",
                              type(record).__name__, exc)
                    self._outbox.bury(seq, str(exc))
                    continue
                self._outbox.remove(seq)
                replayed += 1
            return replayed

    def _write(self, record: Record) -> None:
        if isinstance(record, Turn):
            self._store.save_turn(record)
        elif isinstance(record, Feedback):
            self._store.save_feedback(record)
        elif isinstance(record, Escalation):
            self._store.save_escalation(record)
        elif isinstance(record, Judgement):
            self._store.save_judgement(record)
        elif isinstance(record, PairJudgement):
            self._store.save_pair_judgement(record)
        else:
            self._store.save_review(record)

    def _save(self, record: R, write: Callable[[R], Saved[R]]) -> Saved[R]:
        if time.monotonic() >= self._down_until and not self._outbox.pending():
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

    def save_judgement(self, judgement: Judgement) -> Saved[Judgement]:
        return self._save(judgement, self._store.save_judgement)

    def save_escalation(self, escalation: Escalation) -> Saved[Escalation]:
        """Created once per triggering turn, or queued; the expert's later steps need DynamoDB (`escalations`)."""
        return self._save(escalation, self._store.save_escalation)

    @property
    def escalations(self) -> "Escalations":
        return self._store.escalations

    @property
    def review_batches(self) -> "ReviewStore":
        """Review batches and ratings; they need DynamoDB (a reviewer sees a rating fail and retries)."""
        return self._store.review_batches

    def save_pair_judgement(self, verdict: PairJudgement) -> Saved[PairJudgement]:
        return self._save(verdict, self._store.save_pair_judgement)

    def save_review(self, review: Review) -> Saved[Review]:
        """Queued while DynamoDB is down, the review gets its version when it is replayed."""
        return self._save(checked_review(review), self._store.save_review)

    def dead_letters(self) -> list[DeadLetter]:
        """Queued records the store refused for good, oldest first."""
        return self._outbox.dead_letters()

    def retry_dead_letter(self, seq: int) -> None:
        """Queue a dead letter again (after what refused it was fixed); the background thread replays it."""
        self._outbox.retry(seq)
        self._start_drainer()

    def discard_dead_letter(self, seq: int) -> None:
        self._outbox.discard(seq)

    def _start_drainer(self) -> None:
        with self._drainer_lock:
            if self._drainer is None and not self._closed.is_set():
                self._drainer = threading.Thread(target=self._drain_in_background, name="feedback-outbox", daemon=True)
                self._drainer.start()

    def _drain_in_background(self) -> None:
        while True:
            try:
                self.drain()
                self._down_until = 0.0
                synced = True
            except (StoreUnavailable, ConfigError) as exc:
                log.warning("Queued feedback not synced yet: %s", exc)
                synced = False
            except Exception:  # a bug must not end the thread and leave the backlog without a drainer
                log.exception("Replaying queued feedback failed")
                synced = False
            # Decided under the lock _start_drainer takes: a record queued meanwhile always has a drainer.
            with self._drainer_lock:
                if self._closed.is_set() or not self._outbox.pending():
                    self._drainer = None
                    return
            if not synced:
                self._closed.wait(self._retry_seconds)

    def close(self) -> None:
        """Stop the background replay; what is still queued stays on disk for the next start."""
        self._closed.set()
        with self._drainer_lock:
            drainer = self._drainer
        if drainer is not None:
            drainer.join()
        self._outbox.close()

    def get_turn(self, session_id: str, turn_id: str) -> Turn | None:
        return self._store.get_turn(session_id, turn_id)

    def session_turns(self, session_id: str) -> list[Turn]:
        return self._store.session_turns(session_id)

    def user_sessions(self, user: str, limit: int = 20) -> list[SessionSummary]:
        return self._store.user_sessions(user, limit)

    def rename_session(self, user: str, session_id: str, title: str) -> None:
        self._store.rename_session(user, session_id, title)

    def delete_session(self, user: str, session_id: str) -> DeletedSession:
        """Not queued: deleting needs DynamoDB (StoreUnavailable when it cannot be reached)."""
        return self._store.delete_session(user, session_id)

    def latest_feedback(self, turn_id: str, user: str) -> Feedback | None:
        return self._store.latest_feedback(turn_id, user)

    def feedback_history(self, turn_id: str, user: str) -> list[Feedback]:
        return self._store.feedback_history(turn_id, user)

    def feedback_between(self, start: datetime, end: datetime) -> Iterator[Feedback]:
        return self._store.feedback_between(start, end)


def make_store(settings: Settings) -> ResilientStore:
    """The app's store: DynamoDB as the settings say, with the outbox under the data folder."""
    return ResilientStore(DynamoFeedbackStore(settings), Outbox(outbox_path(settings)))
