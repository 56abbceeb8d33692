"""The live version: which trained version answers, recorded where every app replica reads it.

One item per registered model in the DynamoDB table `<prefix>models` (pipeline/feedback/tables.py):
the live version (None: the base model answers) with its adapter folder and base model, and the
versions that were live before it, so a rollback needs nothing but this item. Writes are guarded by
the item's revision (PynamoDB's optimistic locking): of two promotes at once, one wins and the other
is told to look again, never silently lost.

Replicas read the item through `LiveWatch`, at most once per LIVE_CHECK_SECONDS, so a promote reaches
every replica within that time without a redeploy and costs one small read per replica per interval.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import NoCredentialsError
from pynamodb.exceptions import PynamoDBException, TableDoesNotExist

from pipeline.errors import ConfigError, PlumbError, StoreUnavailable
from pipeline.feedback.tables import LiveModelItem, LiveVersionMap, build_tables
from pipeline.models.errors import LiveConflict
from pipeline.models.manifest import CHAT_MODEL
from pipeline.settings import Settings

LIVE_CHECK_SECONDS = 10.0
PREVIOUS_KEPT = 50  # rollbacks possible in a row; 50 entries stay far below DynamoDB's 400 KB per item

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveVersion:
    """A version as served: `version` "plumb-chat/3", `adapter` its adapter folder (as the model server
    reads it), `base_model` what it was trained on."""

    version: str
    adapter: str
    base_model: str
    promoted_at: datetime


@dataclass(frozen=True)
class LiveRecord:
    live: LiveVersion | None
    previous: list[LiveVersion]


class LiveVersions:
    """The live record of one registered model (default `plumb-chat`) in DynamoDB."""

    def __init__(self, settings: Settings, model: str = CHAT_MODEL) -> None:
        self._table: type[LiveModelItem] = build_tables(settings).models
        self._model = model
        self._where = f"{settings.table_prefix}models at {settings.dynamodb_endpoint or 'AWS ' + settings.aws_region}"

    def read(self) -> LiveRecord:
        """The record; the base model live and no history when nothing was ever promoted."""
        item = self._get()
        if item is None:
            return LiveRecord(None, [])
        return LiveRecord(_version(item.live) if item.live else None, [_version(entry) for entry in item.previous])

    def promote(self, version: str, adapter: str, base_model: str) -> LiveRecord:
        """Make `version` live, keeping the one it replaces for rollback. LiveConflict when it is live
        already or another promote or rollback wrote in between."""
        item = self._item()
        if item.live and item.live.version == version:
            raise LiveConflict(f"{version} is already live.")
        if item.live:
            item.previous = [*item.previous, item.live][-PREVIOUS_KEPT:]
        item.live = LiveVersionMap(
            version=version, adapter=adapter, base_model=base_model, promoted_at=datetime.now(UTC)
        )
        self._save(item)
        return self.read()

    def rollback(self) -> LiveRecord:
        """Make the previously live version live again, or the base model when there was none.
        LiveConflict when the base model is live already or another change wrote in between."""
        item = self._item()
        if item.live is None:
            raise LiveConflict(f"The base model is live: {self._model} has no promoted version to roll back.")
        item.live = item.previous[-1] if item.previous else None
        item.previous = item.previous[:-1]
        self._save(item)
        return self.read()

    def _item(self) -> LiveModelItem:
        return self._get() or self._table(self._model, previous=[])

    def _get(self) -> LiveModelItem | None:
        try:
            return self._table.get(self._model, consistent_read=True)
        except self._table.DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise self._translate(exc) from exc

    def _save(self, item: LiveModelItem) -> None:
        """Write `item` if its revision is still the one read (PynamoDB adds that condition)."""
        try:
            item.save()
        except PynamoDBException as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise LiveConflict(
                    f"The live version of {self._model} changed while this change was being made: "
                    "`plumb model list` shows it now; try again if it is still wanted."
                ) from exc
            raise self._translate(exc) from exc

    def _translate(self, exc: PynamoDBException) -> PlumbError:
        if isinstance(exc, TableDoesNotExist) or exc.cause_response_code == "ResourceNotFoundException":
            return ConfigError(f"The table {self._where} does not exist: run `plumb db init`.")
        if isinstance(exc.cause, NoCredentialsError):
            return ConfigError(f"No AWS credentials found for {self._where}: configure them, or set an endpoint.")
        return StoreUnavailable(f"The live-version record {self._where} cannot be read or written ({exc.cause or exc}).")


def _version(entry: LiveVersionMap) -> LiveVersion:
    return LiveVersion(entry.version, entry.adapter, entry.base_model, entry.promoted_at)


class LiveWatch:
    """The live version as one replica sees it, read at most once per `ttl_s` seconds (thread-safe).

    When the record cannot be read (DynamoDB down, table missing) the replica keeps what it last read,
    the base model if nothing yet, and tries again after `ttl_s`: answering never waits on a failing store
    for longer than one read.
    """

    def __init__(
        self, read: Callable[[], LiveRecord], ttl_s: float = LIVE_CHECK_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._live: LiveVersion | None = None
        self._checked_at: float | None = None

    def current(self) -> LiveVersion | None:
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self._ttl_s:
                self._checked_at = now
                try:
                    self._live = self._read().live
                except PlumbError as error:
                    shown = self._live.version if self._live else "the base model"
                    log.warning("The live model version could not be read (%s); answering with %s.", error, shown)
            return self._live
