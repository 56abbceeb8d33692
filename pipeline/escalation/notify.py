"""Telling experts about an escalation: a Slack-compatible webhook and/or an SNS topic.

Every notification is first written to a local SQLite queue (`notifications.sqlite3` under the data
folder, fsync'd like the feedback outbox), keyed by (escalation, channel), so enqueuing the same
escalation again adds nothing. A background thread delivers what is due; a failed delivery is tried
again after 2, 4, 8 … seconds, then every MAX_BACKOFF_S, for as long as it takes: nothing is ever
dropped, and what has failed at least once is listed on the admin page with the last error. Before
sending, a delivery takes a lease on its row (a conditional update), so two threads or processes
sharing the queue never send the same notification twice.

Hand-written rather than a task queue library: the app has no broker, and the retry state must
survive restarts and be readable by the admin page, which one SQLite table gives.
"""

import json
import logging
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.escalation.records import Escalation
from pipeline.settings import Settings

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0
LEASE_S = 60.0  # a delivery not finished within this is taken as failed (the process died mid-send)
SEND_TIMEOUT_S = 10.0
TRANSCRIPT_CHARS = 3000  # per exchange in a message; Slack shows at most 40,000 characters of text

# The escalated message's own exchange: experts are called in before the bot answers it.
NOT_ANSWERED = "(not answered yet: you are called in before the bot answers)"
Sender = Callable[[str], None]  # sends one stored body; raises on failure


def notifications_path(settings: Settings) -> Path:
    return settings.data_dir / "notifications.sqlite3"


def message_text(escalation: Escalation) -> str:
    """The notification's text: who, why, and the transcript with the passages' sources."""
    lines = [
        f"Expert wanted: {escalation.user} ({escalation.reason}) in conversation {escalation.session_id}, "
        f"turn {escalation.turn_id}.",
    ]
    if escalation.note:
        lines.append(f"Their note: {escalation.note}")
    for exchange in escalation.transcript:
        lines.append(f"\nUser: {exchange.question[:TRANSCRIPT_CHARS]}")
        answer = exchange.answer[:TRANSCRIPT_CHARS] or NOT_ANSWERED
        lines.append(f"{'Expert ' + exchange.expert if exchange.expert else 'Bot'}: {answer}")
        sources = "; ".join(citation.label() for citation in exchange.citations)
        if sources:
            lines.append(f"Sources: {sources}")
    return "\n".join(lines)


def webhook_body(escalation: Escalation) -> str:
    """Slack's incoming-webhook JSON (`text` is the message; other services that take Slack's format
    read the same field)."""
    return json.dumps({"text": message_text(escalation)})


def sns_body(escalation: Escalation) -> str:
    return json.dumps({"Subject": f"Plumbline: expert wanted ({escalation.reason})", "Message": message_text(escalation)})


def post_webhook(url: str) -> Sender:
    def send(body: str) -> None:
        request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:  # HTTPError on 4xx/5xx
            response.read()

    return send


def publish_sns(topic_arn: str, region: str) -> Sender:
    import boto3

    client = boto3.client("sns", region_name=region)

    def send(body: str) -> None:
        fields = json.loads(body)
        client.publish(TopicArn=topic_arn, Subject=fields["Subject"], Message=fields["Message"])

    return send


@dataclass(frozen=True)
class Pending:
    """A notification not delivered yet, for the admin page."""

    key: str
    channel: str
    attempts: int
    last_error: str
    queued_at: datetime
    next_at: datetime


class Notifier:
    """The queue and its delivery thread. `channels` maps a channel name ("webhook", "sns") to its
    sender and to how an escalation becomes that channel's body; none configured means nothing is sent."""

    def __init__(self, path: Path, channels: dict[str, tuple[Sender, Callable[[Escalation], str]]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._channels = channels
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS notifications (key TEXT NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, last_error TEXT NOT NULL DEFAULT '', "
            "queued_at TEXT NOT NULL, delivered_at TEXT, PRIMARY KEY (key, channel))"
        )
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def enqueue(self, escalation: Escalation) -> int:
        """Queue one notification per channel for `escalation`; returns how many were new (0 when it was
        queued before) and wakes the delivery thread."""
        added = 0
        now = datetime.now(UTC).isoformat()
        for channel, (_, body) in self._channels.items():
            with self._lock:
                added += self._db.execute(
                    "INSERT OR IGNORE INTO notifications (key, channel, body, next_at, queued_at) VALUES (?, ?, ?, 0, ?)",
                    (escalation.key, channel, body(escalation), now),
                ).rowcount
        self._wake.set()
        return added

    def deliver_due(self) -> int:
        """Send every notification that is due, once each; returns how many were delivered."""
        now = time.time()
        with self._lock:
            due = self._db.execute(
                "SELECT key, channel, body, attempts FROM notifications WHERE delivered_at IS NULL AND next_at <= ?",
                (now,),
            ).fetchall()
        delivered = 0
        for key, channel, body, attempts in due:
            if channel in self._channels and self._lease(key, channel, now):
                delivered += self._deliver(key, channel, body, attempts)
        return delivered

    def _lease(self, key: str, channel: str, now: float) -> bool:
        with self._lock:
            return self._db.execute(
                "UPDATE notifications SET next_at = ? WHERE key = ? AND channel = ? AND next_at <= ? AND delivered_at IS NULL",
                (now + LEASE_S, key, channel, now),
            ).rowcount == 1

    def _deliver(self, key: str, channel: str, body: str, attempts: int) -> bool:
        try:
            self._channels[channel][0](body)
        except Exception as exc:  # any failure of the far side: kept and tried again later, never dropped
            wait = min(FIRST_BACKOFF_S * 2**attempts, MAX_BACKOFF_S)
            log.warning("The %s notification of %s failed (try %d), again in %.0f s: %s", channel, key, attempts + 1, wait, exc)
            with self._lock:
                self._db.execute(
                    "UPDATE notifications SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE key = ? AND channel = ?",
                    (time.time() + wait, f"{type(exc).__name__}: {exc}"[:500], key, channel),
                )
            return False
        with self._lock:
            self._db.execute(
                "UPDATE notifications SET attempts = attempts + 1, delivered_at = ? WHERE key = ? AND channel = ?",
                (datetime.now(UTC).isoformat(), key, channel),
            )
        return True

    def pending(self) -> list[Pending]:
        """Notifications not delivered yet, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, channel, attempts, last_error, queued_at, next_at FROM notifications "
                "WHERE delivered_at IS NULL ORDER BY queued_at"
            ).fetchall()
        return [
            Pending(k, c, a, e, datetime.fromisoformat(q), datetime.fromtimestamp(n, UTC)) for k, c, a, e, q, n in rows
        ]

    def retry_now(self, key: str, channel: str) -> None:
        """Make a waiting notification due at once (an admin fixed the receiver)."""
        with self._lock:
            self._db.execute(
                "UPDATE notifications SET next_at = 0 WHERE key = ? AND channel = ? AND delivered_at IS NULL", (key, channel)
            )
        self._wake.set()

    def start(self) -> None:
        """Deliver in a background thread until `close`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="escalation-notify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self.deliver_due()
            except Exception:  # a bug must not end the thread and leave notifications unsent
                log.exception("Delivering escalation notifications failed")
            self._wake.wait(self._next_wait())
            self._wake.clear()

    def _next_wait(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT min(next_at) FROM notifications WHERE delivered_at IS NULL").fetchone()
        return MAX_BACKOFF_S if row[0] is None else min(max(row[0] - time.time(), 0.05), MAX_BACKOFF_S)

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._db.close()


def make_notifier(settings: Settings) -> Notifier:
    """The notifier for the configured channels (PLUMB_ESCALATION_WEBHOOK_URL, PLUMB_ESCALATION_SNS_TOPIC)."""
    channels: dict[str, tuple[Sender, Callable[[Escalation], str]]] = {}
    url = urllib.parse.urlsplit(settings.escalation_webhook_url)
    if settings.escalation_webhook_url and (url.scheme not in ("http", "https") or not url.netloc):
        # Checked here: a URL urllib cannot send to would otherwise fail every try, forever, in the background.
        raise ConfigError(
            f"PLUMB_ESCALATION_WEBHOOK_URL {settings.escalation_webhook_url!r} is not an http(s) address such as "
            "https://hooks.slack.com/services/…: fix it or leave it empty."
        )
    if settings.escalation_webhook_url:
        channels["webhook"] = (post_webhook(settings.escalation_webhook_url), webhook_body)
    if settings.escalation_sns_topic:
        channels["sns"] = (publish_sns(settings.escalation_sns_topic, settings.aws_region), sns_body)
    return Notifier(notifications_path(settings), channels)
