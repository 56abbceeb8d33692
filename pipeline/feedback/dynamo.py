"""The feedback store on DynamoDB (AWS, or DynamoDB Local in dev and tests).

Size rule (DynamoDB holds at most 400 KB per item): each citation's passage is stored up to
PASSAGE_MAX_CHARS characters; a longer one is cut there and marked `passage_truncated`, and its full
text stays in the index under its `chunk_id`; the export leaves such a turn out, since the prompt that
held the passage can no longer be rebuilt exactly. Everything else of a turn is stored whole; a turn that
would still pass 400 KB (a question or answer of hundreds of thousands of characters) is refused with
TurnRejected before anything is written. Feedback always fits: its note and correction are capped by
`pipeline.records` (4,000 and 20,000 characters, under 100 KB even at 4 bytes a character).

Writes are idempotent. A turn is keyed by its client-made ids, so writing it again rewrites the same
item. Feedback is keyed by turn, user and version; the store assigns the version, written only if
that key is free, so versions run 1, 2, 3... without gaps. Each submission carries its own
`submission_id`: a submission already stored under its id with its verdict (a retry, an outbox
replay) gets the stored item back. A new submission equal in verdict (rating, note, correction,
flagged sources) to the latest version is a repeat (a double click, a second tab) and stores nothing;
any other becomes the next version, so the verdict sent last is always the latest, whatever version
the client thought it had.

A first verdict (nearly every submission) costs one conditional write of version 1: with versions
gapless, a free version 1 means no history to compare against. Only when version 1 is taken is the
history read, and the write repeated at the next free version if another writer took it meanwhile.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import NoCredentialsError
from pydantic import ValidationError
from pynamodb.exceptions import PynamoDBException, TableDoesNotExist
from pynamodb.models import Model

from pipeline.errors import ConfigError, InvalidFeedback, PlumbError, StoreUnavailable
from pipeline.feedback.judge_items import item_pair, item_review, pair_item, review_item, review_key
from pipeline.feedback.store import DeletedSession, Saved, SessionSummary, TurnRejected, checked_feedback, checked_ids
from pipeline.feedback.tables import (
    CitationMap,
    ExchangeMap,
    FeedbackItem,
    JudgementItem,
    TurnItem,
    build_tables,
    feedback_key,
)
from pipeline.records import Citation, Feedback, Judgement, PairJudgement, ReferenceKind, Review, Turn, weaker_references
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.records import Escalation
    from pipeline.escalation.review_store import ReviewStore
    from pipeline.escalation.storage import Escalations

PASSAGE_MAX_CHARS = 2000
TITLE_MAX_CHARS = 200
ITEM_MAX_BYTES = 400 * 1024

UNREACHABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "AccessDeniedException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "MissingAuthenticationTokenException",
}


def utc(moment: datetime) -> datetime:
    """Naive timestamps are taken as UTC (PynamoDB would take them as the machine's local time)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def citation_map(citation: Citation) -> CitationMap:
    return CitationMap(
        source=citation.source,
        page=citation.page,
        passage=citation.passage[:PASSAGE_MAX_CHARS],
        passage_truncated=citation.passage_truncated or len(citation.passage) > PASSAGE_MAX_CHARS,
        score=citation.score,
        chunk_id=citation.chunk_id,
        page_label=citation.page_label,
        section=citation.section,
    )


def turn_item(model: type[TurnItem], turn: Turn) -> TurnItem:
    return model(
        turn.session_id,
        turn.turn_id,
        created_at=utc(turn.created_at),
        user=turn.user,
        question=turn.question,
        condensed_question=turn.condensed_question,
        answer=turn.answer,
        citations=[citation_map(citation) for citation in turn.citations],
        history=None if turn.history is None else [ExchangeMap(question=q, answer=a) for q, a in turn.history],
        generated=turn.generated,
        not_covered=turn.not_covered,
        model_id=turn.model_id,
        prompt_version=turn.prompt_version,
        timings_ms=dict(turn.timings_ms),
        tokens_in=turn.tokens_in,
        tokens_out=turn.tokens_out,
        escalation=turn.escalation,
        sentiment=turn.sentiment,
        expert=turn.expert,
        scope=list(turn.scope),
    )


def item_turn(item: TurnItem) -> Turn:
    return Turn(
        session_id=item.session_id,
        turn_id=item.turn_id,
        user=item.user,
        created_at=item.created_at,
        question=item.question,
        condensed_question=item.condensed_question,
        answer=item.answer,
        citations=[
            Citation(
                source=c.source,
                page=c.page,
                passage=c.passage,
                score=c.score,
                chunk_id=c.chunk_id,
                passage_truncated=c.passage_truncated,
                page_label=c.page_label,
                section=c.section,
            )
            for c in item.citations
        ],
        history=None if item.history is None else [(h.question, h.answer) for h in item.history],
        generated=item.generated,
        not_covered=item.not_covered,
        model_id=item.model_id,
        prompt_version=item.prompt_version,
        timings_ms=item.timings_ms.as_dict(),
        tokens_in=item.tokens_in,
        tokens_out=item.tokens_out,
        escalation=item.escalation,
        sentiment=item.sentiment,
        expert=item.expert,
        scope=list(item.scope or []),
    )


def feedback_item(model: type[FeedbackItem], feedback: Feedback, stored_at: datetime) -> FeedbackItem:
    return model(
        feedback_key(feedback.turn_id, feedback.user),
        feedback.version,
        feedback_id=feedback.feedback_id,
        submission_id=feedback.submission_id,
        session_id=feedback.session_id,
        turn_id=feedback.turn_id,
        user=feedback.user,
        rating=feedback.rating,
        note=feedback.note,
        correction=feedback.correction,
        flagged_citations=feedback.flagged_citations,
        created_at=utc(feedback.created_at),
        stored_at=stored_at,
        day=stored_at.date().isoformat(),
    )


def item_feedback(item: FeedbackItem) -> Feedback:
    return Feedback(
        feedback_id=item.feedback_id,
        submission_id=item.submission_id,
        session_id=item.session_id,
        turn_id=item.turn_id,
        user=item.user,
        rating=item.rating,
        note=item.note,
        correction=item.correction,
        flagged_citations=item.flagged_citations,
        created_at=item.created_at,
        version=item.version,
        session_deleted=bool(item.session_deleted),
    )


def judgement_item(
    model: type[JudgementItem], judgement: Judgement, stored_at: datetime | None = None
) -> JudgementItem:
    return model(
        judgement.turn_id,
        judgement.judge,
        session_id=judgement.session_id,
        user=judgement.user,
        judge_model=judgement.judge_model,
        prompt_version=judgement.prompt_version,
        score=judgement.score,
        comment=judgement.comment,
        reference_kind=judgement.reference_kind,
        judged_at=utc(judgement.judged_at),
        stored_at=stored_at,
    )


def item_judgement(item: JudgementItem) -> Judgement:
    return Judgement(
        session_id=item.session_id,
        turn_id=item.turn_id,
        user=item.user,
        judge_model=item.judge_model,
        prompt_version=item.prompt_version,
        score=item.score,
        comment=item.comment,
        reference_kind=item.reference_kind,
        judged_at=item.judged_at,
    )


def item_bytes(item: Model) -> int:
    """An upper bound of DynamoDB's item size: the serialized item as UTF-8 JSON, names and type tags included."""
    return len(json.dumps(item.serialize(), ensure_ascii=False).encode())


def checked_turn(turn: Turn) -> Turn:
    """Refuse a turn DynamoDB would refuse, before it is written or queued (see the size rule above)."""
    checked_ids(turn)
    size = item_bytes(turn_item(TurnItem, turn))
    if size > ITEM_MAX_BYTES:
        raise TurnRejected(
            f"The answer was not stored: with its question and sources it takes {size // 1024} KB and "
            f"DynamoDB holds at most {ITEM_MAX_BYTES // 1024} KB per item. Ask a shorter question."
        )
    return turn


def same_verdict(a: Feedback, b: Feedback) -> bool:
    fields = {"session_id", "rating", "note", "correction", "flagged_citations"}
    return a.model_dump(include=fields) == b.model_dump(include=fields)


def repeat_of(feedback: Feedback, history: list[Feedback]) -> Feedback | None:
    """The stored version this submission repeats: the one stored by the same submission (a retry or
    a replay: same id, same verdict), else the latest version if it holds the same verdict (a double
    click, a second tab). A different verdict under a stored id is no retry: it is stored, not lost."""
    same = next(
        (s for s in history if s.submission_id == feedback.submission_id and same_verdict(s, feedback)), None
    )
    if same is None and history and same_verdict(history[-1], feedback):
        return history[-1]
    return same


def is_condition_failure(exc: PynamoDBException) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


class DynamoFeedbackStore:
    """FeedbackStore on the tables `create_tables` makes. Reads of one session, turn or verdict are
    strongly consistent; `feedback_between` reads a GSI, which may lag writes by a moment on AWS."""

    def __init__(self, settings: Settings) -> None:
        self._tables = build_tables(settings)
        self._where = settings.dynamodb_endpoint or f"AWS DynamoDB in {settings.aws_region}"
        self._prefix = settings.table_prefix

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except PynamoDBException as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: PynamoDBException) -> PlumbError:
        code = exc.cause_response_code
        if isinstance(exc, TableDoesNotExist) or code == "ResourceNotFoundException":
            return ConfigError(
                f"The feedback tables ('{self._prefix}turns', ...) do not exist at {self._where}: "
                "run `plumb db init`."
            )
        if isinstance(exc.cause, NoCredentialsError):
            return ConfigError(f"No AWS credentials found for {self._where}: configure them, or set an endpoint.")
        if code in CREDENTIAL_CODES:
            return ConfigError(f"DynamoDB at {self._where} refused the AWS credentials: {exc.cause_response_message}")
        if code is None or code in UNREACHABLE_CODES:
            return StoreUnavailable(
                f"The feedback store at {self._where} cannot be reached ({exc.cause or exc}): "
                "check that DynamoDB is running and reachable, then try again."
            )
        return PlumbError(f"DynamoDB at {self._where} refused the request: {code}: {exc.cause_response_message}")

    def create_tables(self) -> None:
        with self._errors():
            for table in self._tables:
                try:
                    table.create_table(wait=True)
                except PynamoDBException as exc:
                    if exc.cause_response_code != "ResourceInUseException":
                        raise

    def save_turn(self, turn: Turn) -> Saved[Turn]:
        item = turn_item(self._tables.turns, checked_turn(turn))
        with self._errors():
            item.save()
            self._touch_session(turn)
        return Saved(turn)

    def _touch_session(self, turn: Turn) -> None:
        """Keep the sidebar item in step: title from the earliest turn, updated_at from the latest,
        whatever order turns arrive in (an outbox may replay an older one late)."""
        table = self._tables.sessions
        session, at, title = table(turn.user, turn.session_id), utc(turn.created_at), turn.question[:TITLE_MAX_CHARS]
        newest = [
            table.title.set(table.title | title),
            table.started_at.set(table.started_at | at),
            table.updated_at.set(at),
        ]
        try:
            session.update(newest, condition=table.updated_at.does_not_exist() | (table.updated_at <= at))
            return
        except PynamoDBException as exc:
            if not is_condition_failure(exc):
                raise
        try:
            session.update([table.title.set(title), table.started_at.set(at)], condition=table.started_at > at)
        except PynamoDBException as exc:
            if not is_condition_failure(exc):
                raise

    def save_feedback(self, feedback: Feedback) -> Saved[Feedback]:
        """Store a submission as the latest version, or return the stored item it repeats (see above).
        The record returned carries the version the store gave it."""
        feedback = checked_feedback(feedback).model_copy(update={"version": 1})
        with self._errors():
            if self._put_new_version(feedback):
                return Saved(feedback)
            while True:
                history = self.feedback_history(feedback.turn_id, feedback.user)
                repeat = repeat_of(feedback, history)
                if repeat is not None:
                    return Saved(repeat)
                stored = feedback.model_copy(update={"version": history[-1].version + 1})
                if self._put_new_version(stored):
                    return Saved(stored)

    def _put_new_version(self, feedback: Feedback) -> bool:
        """Write this version of the verdict if no item holds it yet; False if one does."""
        table = self._tables.feedback
        try:
            feedback_item(table, feedback, datetime.now(UTC)).save(condition=table.version.does_not_exist())
        except PynamoDBException as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def get_turn(self, session_id: str, turn_id: str) -> Turn | None:
        table = self._tables.turns
        with self._errors():
            try:
                return item_turn(table.get(session_id, turn_id, consistent_read=True))
            except table.DoesNotExist:
                return None

    def session_turns(self, session_id: str) -> list[Turn]:
        with self._errors():
            return [item_turn(item) for item in self._tables.turns.by_time.query(session_id, consistent_read=True)]

    def user_sessions(self, user: str, limit: int = 20) -> list[SessionSummary]:
        query = self._tables.sessions.by_update.query(user, consistent_read=True, scan_index_forward=False, limit=limit)
        with self._errors():
            return [SessionSummary(item.session_id, item.title, item.updated_at) for item in query]

    def rename_session(self, user: str, session_id: str, title: str) -> None:
        """Give one of `user`'s conversations a title of their own; PlumbError for an empty title or a
        conversation that is not theirs (or no longer exists)."""
        title = " ".join(title.split())[:TITLE_MAX_CHARS]
        if not title:
            raise PlumbError("A conversation's name cannot be empty: type a name.")
        table = self._tables.sessions
        with self._errors():
            try:
                table(user, session_id).update([table.title.set(title)], condition=table.session_id.exists())
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    raise PlumbError("That conversation no longer exists: reload the page.") from None
                raise

    def delete_session(self, user: str, session_id: str) -> DeletedSession:
        """Take one of `user`'s conversations off their list. Answers they rated stay, with every
        version of their feedback marked `session_deleted`, so training keeps them; the others go."""
        kept = removed = 0
        feedback = self._tables.feedback
        with self._errors():
            for turn in self.session_turns(session_id):
                if turn.user != user:
                    continue
                versions = list(feedback.query(feedback_key(turn.turn_id, user), consistent_read=True))
                for item in versions:
                    item.update([feedback.session_deleted.set(True)])
                if versions:
                    kept += 1
                else:
                    self._tables.turns(session_id, turn.turn_id).delete()
                    removed += 1
            self._tables.sessions(user, session_id).delete()
        return DeletedSession(kept=kept, removed=removed)

    def latest_feedback(self, turn_id: str, user: str) -> Feedback | None:
        key = feedback_key(turn_id, user)
        query = self._tables.feedback.query(key, consistent_read=True, scan_index_forward=False, limit=1)
        with self._errors():
            return next((item_feedback(item) for item in query), None)

    def feedback_history(self, turn_id: str, user: str) -> list[Feedback]:
        """Every version of a user's verdict on a turn, oldest first."""
        query = self._tables.feedback.query(feedback_key(turn_id, user), consistent_read=True)
        with self._errors():
            return [item_feedback(item) for item in query]

    def feedback_between(self, start: datetime, end: datetime) -> Iterator[Feedback]:
        """Every feedback version the store received in [start, end), oldest first, one page at a time.

        Time is when the store received the item, not the user's `created_at` (see tables.py), so an
        export that reads consecutive windows sees each item exactly once, replays included.
        """
        start, last = utc(start), utc(end) - timedelta(microseconds=1)
        table = self._tables.feedback
        day = start.date()
        with self._errors():
            while start <= last and day <= last.date():
                for item in table.by_day.query(day.isoformat(), table.stored_at.between(start, last)):
                    yield item_feedback(item)
                day += timedelta(days=1)


    def save_judgement(self, judgement: Judgement) -> Saved[Judgement]:
        """Store a judge's verdict unless this judge (model and prompt version) already judged the
        turn against as strong a reference; then the stored one is returned and nothing is written.
        The condition makes a replay, or two runs at once, write one judgement."""
        judgement = Judgement.model_validate(judgement.model_dump())
        table = self._tables.judgements
        condition = table.judge.does_not_exist()
        if weaker := weaker_references(judgement.reference_kind):
            condition |= table.reference_kind.is_in(*weaker)
        with self._errors():
            try:
                judgement_item(table, judgement, datetime.now(UTC)).save(condition=condition)
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise
                return Saved(item_judgement(table.get(judgement.turn_id, judgement.judge, consistent_read=True)))
        return Saved(judgement)

    def judged(self, turn_ids: list[str], judge: str) -> dict[str, ReferenceKind]:
        """Which of `turn_ids` this judge (`records.judge_key`) has judged, with the kind of
        reference each was judged against: batch reads of 100 keys."""
        with self._errors():
            items = self._tables.judgements.batch_get([(t, judge) for t in turn_ids])
            return {item.turn_id: item.reference_kind for item in items}

    def judgements(self) -> Iterator[Judgement]:
        """Every stored judgement, one page at a time (a scan: for agreement figures and reviews)."""
        with self._errors():
            for item in self._tables.judgements.scan():
                yield item_judgement(item)

    def turns_between(self, start: datetime | None, end: datetime) -> Iterator[Turn]:
        """Every turn created in [start, end) (all before `end` when start is None), one page at a time.

        A scan: the turns table has no index by time across sessions, and judging reads every turn
        of the window once, so the cost is linear in the table either way.
        """
        table = self._tables.turns
        condition = table.created_at < utc(end)
        if start is not None:
            condition &= table.created_at >= utc(start)
        with self._errors():
            for item in table.scan(condition):
                yield item_turn(item)


    def save_escalation(self, escalation: "Escalation") -> Saved["Escalation"]:
        """Store an escalation once per triggering turn (see pipeline/escalation/storage.py)."""
        return Saved(self.escalations.create(escalation))

    @property
    def escalations(self) -> "Escalations":
        from pipeline.escalation.storage import Escalations

        return Escalations(self._tables.escalations, self._errors)

    @property
    def review_batches(self) -> "ReviewStore":
        from pipeline.escalation.review_store import ReviewStore

        return ReviewStore(self._tables.review_batches, self._errors)

    def judgement(self, turn_id: str, judge: str) -> Judgement | None:
        """One judgement by its key, or None."""
        table = self._tables.judgements
        with self._errors():
            try:
                return item_judgement(table.get(turn_id, judge, consistent_read=True))
            except table.DoesNotExist:
                return None

    def save_pair_judgement(self, verdict: PairJudgement) -> Saved[PairJudgement]:
        """Store a pairwise verdict unless this judge already compared the pair; then the stored one is
        returned and nothing is written (a retry, an outbox replay, a second run)."""
        verdict = PairJudgement.model_validate(verdict.model_dump())
        table = self._tables.pair_judgements
        with self._errors():
            try:
                pair_item(table, verdict, datetime.now(UTC)).save(condition=table.judge.does_not_exist())
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise
                return Saved(item_pair(table.get(verdict.pair, verdict.judge, consistent_read=True)))
        return Saved(verdict)

    def pairs_judged(self, pairs: list[str], judge: str) -> set[str]:
        """Which of `pairs` (`records.pair_key`) this pairwise judge has compared: batch reads of 100 keys."""
        with self._errors():
            return {item.pair for item in self._tables.pair_judgements.batch_get([(p, judge) for p in pairs])}

    def pair_judgements(self) -> Iterator[PairJudgement]:
        """Every stored pairwise verdict (a scan: for agreement figures)."""
        with self._errors():
            for item in self._tables.pair_judgements.scan():
                yield item_pair(item)

    def save_review(self, review: Review) -> Saved[Review]:
        """Store an expert's decision on a judgement as its next version; a submission already stored
        (a retry or an outbox replay: the same submission id) is returned as stored. The judgement
        itself is never written."""
        review = checked_review(review)
        table = self._tables.reviews
        with self._errors():
            while True:
                history = self.review_history(review.turn_id, review.judge)
                stored = next((r for r in history if r.submission_id == review.submission_id), None)
                if stored is not None:
                    return Saved(stored)
                review = review.model_copy(update={"version": history[-1].version + 1 if history else 1})
                try:
                    review_item(table, review, datetime.now(UTC)).save(condition=table.version.does_not_exist())
                    return Saved(review)
                except PynamoDBException as exc:
                    if not is_condition_failure(exc):
                        raise  # else another reviewer took this version: read again

    def review_history(self, turn_id: str, judge: str) -> list[Review]:
        """Every version of the experts' decisions on one judgement, oldest first."""
        query = self._tables.reviews.query(review_key(turn_id, judge), consistent_read=True)
        with self._errors():
            return [item_review(item) for item in query]

    def reviews(self) -> Iterator[Review]:
        """Every version of every review (a scan: for the review page and agreement figures)."""
        with self._errors():
            for item in self._tables.reviews.scan():
                yield item_review(item)

    def received(self, kind: str, start: datetime | None, end: datetime) -> Iterator[tuple[datetime, object]]:
        """(received time, record) of the judgements, pair judgements or reviews (`kind`) the store
        received in [start, end): a scan, as AI labels are few next to turns. Judgements stored before
        receipt times were kept count as received when they were judged."""
        table, read = {
            "judgements": (self._tables.judgements, item_judgement),
            "pair_judgements": (self._tables.pair_judgements, item_pair),
            "reviews": (self._tables.reviews, item_review),
        }[kind]
        with self._errors():
            for item in table.scan():
                at = item.stored_at or item.judged_at
                if (start is None or at >= utc(start)) and at < utc(end):
                    yield at, read(item)


def checked_review(review: Review) -> Review:
    """Validate again before storing or queueing (see `checked_feedback`); InvalidFeedback names the problem."""
    try:
        review = Review.model_validate(review.model_dump())
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InvalidFeedback(f"The review was not saved: {problem['msg'].removeprefix('Value error, ')}.") from None
    for name in ("session_id", "turn_id", "judge", "reviewer", "submission_id"):
        if not getattr(review, name):
            raise InvalidFeedback(f"The review was not saved: its {name} is empty.")
    if "#" in review.turn_id:
        raise InvalidFeedback("The review was not saved: a turn id cannot contain '#'.")
    return review


def create_tables(settings: Settings) -> None:
    """Create the store's tables where missing (`plumb db init`); running it again changes nothing."""
    DynamoFeedbackStore(settings).create_tables()
