"""The DynamoDB tables of the feedback store, as PynamoDB models.

Nine tables, named from `settings.table_prefix` (`plumb-turns`, `plumb-sessions`, `plumb-feedback`,
`plumb-judgements`, `plumb-pair-judgements`, `plumb-reviews`, `plumb-models`, `plumb-escalations`,
`plumb-review-batches`):

- turns: key (session_id, turn_id). LSI `turns_by_time` (session_id, created_at) gives one session's
  turns in order; a get by key finds one turn, so the export can join feedback to its turn.
- sessions: key (user, session_id), one item per chat. LSI `sessions_by_update` (user, updated_at)
  gives a user's sessions newest first for the sidebar.
- feedback: key (turn_user = "<turn_id>#<user>", version), one item per version of a user's verdict on
  a turn. The latest is the highest version, read by a one-item query in reverse key order, so there is
  no separate 'latest' item to keep in step and history is never overwritten. GSI `feedback_by_day`
  (day, stored_at) serves the export's incremental read: `day` is the UTC date the store received the
  item, so a time window is one query per day, each paged. Received time rather than the user's
  `created_at`, so items replayed late from an outbox still land in the next export window. All of one
  day's feedback shares a GSI partition: human feedback is far below a partition's 1,000 writes/s.
- judgements: key (turn_id, judge = "<judge model>#<judge prompt version>"), one item per AI judge's
  verdict on a turn: judging a turn again with the same judge finds the item and writes nothing.
  `stored_at` is when the store received it (absent on items stored before it was kept), by which
  the export reads AI labels in its windows, replays included.
- pair-judgements: key (pair = "<turn id>#<turn id>", smaller first; judge), one item per pairwise
  verdict on two answers to one prompt: comparing them again with the same judge writes nothing.
- reviews: key (turn_judge = "<turn_id>#<judge>", version), one item per version of subject-matter
  experts' decisions on a judgement (accept, or override with a score and a reason), kept beside the
  judgement, which is never changed; the latest is the highest version, as for feedback.
- models: key name (a registered model, "plumb-chat"), one small item per model saying which trained
  version is live and which were live before it (pipeline/models/live.py), read by every app replica.
- escalations: key (session_id, turn_id of the message that called in an expert), one item per
  escalation (pipeline/escalation): creating it again finds the item and writes nothing. The expert
  queue scans it: escalations are a few a day, not worth an index.
- review-batches: key (batch_id, entry), the review batches of sampled transcripts: entry "batch" describes
  one, "item#<position>" a transcript, "rating#<turn_id>#<reviewer>" a reviewer's rating.

Tables are billed per request, so nothing needs sizing. The model classes below carry no table name;
`build_tables(settings)` makes subclasses bound to one prefix, endpoint and region.
"""

import types
from typing import NamedTuple

import botocore.session
from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from pipeline.settings import Settings

# A click must not hang for botocore's defaults (15 s connect, 30 s read, 3 retries): fail within
# seconds so the write goes to the outbox. The pool covers the app's concurrent users.
CONNECTION = {
    "connect_timeout_seconds": 2,
    "read_timeout_seconds": 10,
    "max_retry_attempts": 2,
    "max_pool_connections": 32,
}


class CitationMap(MapAttribute):
    source = UnicodeAttribute()
    page = NumberAttribute()
    passage = UnicodeAttribute()
    passage_truncated = BooleanAttribute(default=False)
    score = NumberAttribute()
    chunk_id = UnicodeAttribute(default="")
    page_label = UnicodeAttribute(default="")
    section = UnicodeAttribute(default="")


class ExchangeMap(MapAttribute):
    """One earlier (question, answer) pair of the conversation that the turn's prompts held."""

    question = UnicodeAttribute()
    answer = UnicodeAttribute()


class TurnsByTime(LocalSecondaryIndex):
    class Meta:
        index_name = "turns_by_time"
        projection = AllProjection()

    session_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TurnItem(Model):
    session_id = UnicodeAttribute(hash_key=True)
    turn_id = UnicodeAttribute(range_key=True)
    created_at = UTCDateTimeAttribute()
    user = UnicodeAttribute()
    question = UnicodeAttribute()
    condensed_question = UnicodeAttribute()
    answer = UnicodeAttribute()
    citations = ListAttribute(of=CitationMap, default=list)
    history = ListAttribute(of=ExchangeMap, null=True)
    generated = BooleanAttribute(default=False)
    not_covered = BooleanAttribute(default=False)
    model_id = UnicodeAttribute()
    prompt_version = UnicodeAttribute()
    timings_ms = MapAttribute(default=dict)
    tokens_in = NumberAttribute(default=0)
    tokens_out = NumberAttribute(default=0)
    escalation = UnicodeAttribute(default="")
    sentiment = NumberAttribute(default=0)
    expert = UnicodeAttribute(default="")
    scope = ListAttribute(of=UnicodeAttribute, default=list)
    by_time = TurnsByTime()


class SessionsByUpdate(LocalSecondaryIndex):
    class Meta:
        index_name = "sessions_by_update"
        projection = AllProjection()

    user = UnicodeAttribute(hash_key=True)
    updated_at = UTCDateTimeAttribute(range_key=True)


class SessionItem(Model):
    user = UnicodeAttribute(hash_key=True)
    session_id = UnicodeAttribute(range_key=True)
    title = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    by_update = SessionsByUpdate()


class FeedbackByDay(GlobalSecondaryIndex):
    class Meta:
        index_name = "feedback_by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    stored_at = UTCDateTimeAttribute(range_key=True)


class FeedbackItem(Model):
    turn_user = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    feedback_id = UnicodeAttribute()
    submission_id = UnicodeAttribute(default="")  # "" on items stored before submissions had ids
    session_id = UnicodeAttribute()
    turn_id = UnicodeAttribute()
    user = UnicodeAttribute()
    rating = NumberAttribute()
    note = UnicodeAttribute(default="")
    correction = UnicodeAttribute(null=True)
    flagged_citations = ListAttribute(of=NumberAttribute, default=list)
    created_at = UTCDateTimeAttribute()
    stored_at = UTCDateTimeAttribute()
    day = UnicodeAttribute()
    session_deleted = BooleanAttribute(default=False)
    by_day = FeedbackByDay()


class JudgementItem(Model):
    turn_id = UnicodeAttribute(hash_key=True)
    judge = UnicodeAttribute(range_key=True)
    session_id = UnicodeAttribute()
    user = UnicodeAttribute()
    judge_model = UnicodeAttribute()
    prompt_version = UnicodeAttribute()
    score = NumberAttribute()
    comment = UnicodeAttribute(default="")
    reference_kind = UnicodeAttribute()
    judged_at = UTCDateTimeAttribute()
    stored_at = UTCDateTimeAttribute(null=True)


class PairJudgementItem(Model):
    pair = UnicodeAttribute(hash_key=True)
    judge = UnicodeAttribute(range_key=True)
    first_session_id = UnicodeAttribute()
    first_turn_id = UnicodeAttribute()
    first_user = UnicodeAttribute()
    second_session_id = UnicodeAttribute()
    second_turn_id = UnicodeAttribute()
    second_user = UnicodeAttribute()
    judge_model = UnicodeAttribute()
    prompt_version = UnicodeAttribute()
    outcome = UnicodeAttribute()
    judged_at = UTCDateTimeAttribute()
    stored_at = UTCDateTimeAttribute()


class ReviewItem(Model):
    turn_judge = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    submission_id = UnicodeAttribute()
    session_id = UnicodeAttribute()
    turn_id = UnicodeAttribute()
    judge = UnicodeAttribute()
    reviewer = UnicodeAttribute()
    action = UnicodeAttribute()
    score = NumberAttribute()
    reason = UnicodeAttribute(default="")
    seconds = NumberAttribute(default=0)
    reviewed_at = UTCDateTimeAttribute()
    stored_at = UTCDateTimeAttribute()


class LiveVersionMap(MapAttribute):
    """One trained version as it is served: everything a replica needs, so it never asks the registry."""

    version = UnicodeAttribute()  # "plumb-chat/3"
    adapter = UnicodeAttribute()  # the adapter folder, as the model server reads it
    base_model = UnicodeAttribute()  # what it was trained on, from its plumb_model.json
    promoted_at = UTCDateTimeAttribute()


class LiveModelItem(Model):
    name = UnicodeAttribute(hash_key=True)
    live = LiveVersionMap(null=True)  # None: the base model answers
    previous = ListAttribute(of=LiveVersionMap, default=list)  # earlier live versions, the last most recent
    revision = VersionAttribute()  # optimistic locking: two promotes at once cannot both win


class TranscriptMap(MapAttribute):
    """One turn of an escalation's transcript."""

    turn_id = UnicodeAttribute()
    question = UnicodeAttribute()
    answer = UnicodeAttribute()
    citations = ListAttribute(of=CitationMap, default=list)
    expert = UnicodeAttribute(default="")


class EscalationItem(Model):
    session_id = UnicodeAttribute(hash_key=True)
    turn_id = UnicodeAttribute(range_key=True)
    user = UnicodeAttribute()
    reason = UnicodeAttribute()
    note = UnicodeAttribute(default="")
    question = UnicodeAttribute()
    transcript = ListAttribute(of=TranscriptMap, default=list)
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    claimed_by = UnicodeAttribute(default="")
    claimed_at = UTCDateTimeAttribute(null=True)
    answer = UnicodeAttribute(default="")
    answer_turn_id = UnicodeAttribute(default="")
    answered_at = UTCDateTimeAttribute(null=True)
    closed_at = UTCDateTimeAttribute(null=True)
    knowledge_source = UnicodeAttribute(default="")
    training_by = UnicodeAttribute(default="")
    training_at = UTCDateTimeAttribute(null=True)


class ReviewEntryItem(Model):
    """One entry of a review batch: its description, one transcript to review, or one reviewer's rating
    (pipeline/escalation/review_store.py), as the JSON of its pydantic record."""

    batch_id = UnicodeAttribute(hash_key=True)
    entry = UnicodeAttribute(range_key=True)
    body = UnicodeAttribute()


class Tables(NamedTuple):
    turns: type[TurnItem]
    sessions: type[SessionItem]
    feedback: type[FeedbackItem]
    judgements: type[JudgementItem]
    pair_judgements: type[PairJudgementItem]
    reviews: type[ReviewItem]
    models: type[LiveModelItem]
    escalations: type[EscalationItem]
    review_batches: type[ReviewEntryItem]


def feedback_key(turn_id: str, user: str) -> str:
    """Unambiguous because turn ids may not contain '#' (checked before every write)."""
    return f"{turn_id}#{user}"


def credentials(settings: Settings) -> dict[str, str]:
    """DynamoDB Local accepts any credentials but botocore will not sign a request without some:
    dummy ones only when an endpoint is set and the usual AWS sources have none."""
    if settings.dynamodb_endpoint and botocore.session.get_session().get_credentials() is None:
        return {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return {}


def build_tables(settings: Settings) -> Tables:
    """Model classes bound to the tables these settings name (host None means AWS itself)."""
    meta = {
        "region": settings.aws_region,
        "host": settings.dynamodb_endpoint or None,
        "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
        **CONNECTION,
        **credentials(settings),
    }

    def bind(model: type[Model], name: str) -> type[Model]:
        table_meta = type("Meta", (), {**meta, "table_name": settings.table_prefix + name})
        return types.new_class(model.__name__, (model,), exec_body=lambda ns: ns.update(Meta=table_meta))

    return Tables(
        bind(TurnItem, "turns"),
        bind(SessionItem, "sessions"),
        bind(FeedbackItem, "feedback"),
        bind(JudgementItem, "judgements"),
        bind(PairJudgementItem, "pair-judgements"),
        bind(ReviewItem, "reviews"),
        bind(LiveModelItem, "models"),
        bind(EscalationItem, "escalations"),
        bind(ReviewEntryItem, "review-batches"),
    )
