"""Never lost: while DynamoDB cannot be reached, writes wait in the local outbox and are replayed,
exactly once each, when it is back, even across a restart of the app."""

import threading
import time
from datetime import UTC, datetime

import boto3
import pytest

from pipeline.errors import ConfigError, InvalidFeedback, StoreUnavailable
from pipeline.feedback.dynamo import DynamoFeedbackStore, create_tables
from pipeline.feedback.local_dynamo import LocalDynamo, free_port
from pipeline.feedback.outbox import Outbox
from pipeline.feedback.resilient import ResilientStore, make_store
from pipeline.feedback.store import TurnRejected
from pipeline.records import Feedback, Turn
from pipeline.settings import Settings


def make_turn(i: int, user: str = "ann") -> Turn:
    return Turn(
        session_id=f"s{i % 3}",
        turn_id=f"t{i}-{user}",
        user=user,
        question=f"question {i}",
        condensed_question=f"question {i}",
        answer=f"answer {i}",
        model_id="m",
        prompt_version="p",
    )


def make_feedback(turn: Turn, rating: int = 2) -> Feedback:
    return Feedback(session_id=turn.session_id, turn_id=turn.turn_id, user=turn.user, rating=rating, note="n")


def raw_items(settings: Settings, table: str) -> list[dict]:
    client = boto3.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint,
        region_name=settings.aws_region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    pages = client.get_paginator("scan").paginate(TableName=settings.table_prefix + table)
    return [item for page in pages for item in page["Items"]]


@pytest.fixture
def unreachable(tmp_path) -> Settings:
    """Settings pointing at a port where nothing listens."""
    return Settings(dynamodb_endpoint=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path / "data")


def test_outbox_keeps_records_in_order_across_reopening(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    turn = make_turn(1)
    feedback = make_feedback(turn)
    outbox = Outbox(path)
    outbox.put(turn)
    outbox.put(feedback)
    outbox.close()
    reopened = Outbox(path)
    assert reopened.pending() == 2
    seq, first = reopened.peek()
    assert first == turn
    reopened.remove(seq)
    assert reopened.peek()[1] == feedback
    reopened.close()


def test_dynamo_store_says_the_store_is_unreachable(unreachable):
    store = DynamoFeedbackStore(unreachable)
    with pytest.raises(StoreUnavailable, match=f"feedback store at {unreachable.dynamodb_endpoint} cannot be reached"):
        store.save_turn(make_turn(1))
    with pytest.raises(StoreUnavailable):
        store.latest_feedback("t1", "ann")


def test_missing_tables_say_to_run_db_init(dynamo_local):
    store = DynamoFeedbackStore(Settings(dynamodb_endpoint=dynamo_local.endpoint, table_prefix="never-made-"))
    with pytest.raises(ConfigError, match="run `plumb db init`"):
        store.get_turn("s", "t")


def test_aws_without_credentials_says_so(tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = DynamoFeedbackStore(Settings(dynamodb_endpoint=""))
    with pytest.raises(ConfigError, match="No AWS credentials found for AWS DynamoDB in us-east-1"):
        store.get_turn("s", "t")


def test_create_tables_twice_changes_nothing(dynamo_settings):
    store = DynamoFeedbackStore(dynamo_settings)
    turn = make_turn(1)
    store.save_turn(turn)
    create_tables(dynamo_settings)
    assert store.get_turn(turn.session_id, turn.turn_id) == turn


def test_writes_while_unreachable_are_queued_and_reads_say_why(unreachable, tmp_path):
    store = ResilientStore(DynamoFeedbackStore(unreachable), Outbox(tmp_path / "outbox.sqlite3"), retry_seconds=60)
    turn = make_turn(1)
    assert store.save_turn(turn).queued
    saved = store.save_feedback(make_feedback(turn))
    assert saved.queued and saved.record.rating == 2
    assert store.pending() == 2
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        store.session_turns(turn.session_id)
    with pytest.raises(StoreUnavailable):
        store.drain()
    assert store.pending() == 2
    store.close()


def test_bad_input_is_never_queued(unreachable, tmp_path):
    store = ResilientStore(DynamoFeedbackStore(unreachable), Outbox(tmp_path / "outbox.sqlite3"), retry_seconds=60)
    turn = make_turn(1)
    with pytest.raises(InvalidFeedback):
        store.save_feedback(Feedback.model_construct(**(make_feedback(turn).model_dump() | {"rating": 9})))
    with pytest.raises(TurnRejected):
        store.save_turn(turn.model_copy(update={"answer": "a" * 500_000}))
    assert store.pending() == 0
    store.close()


def test_a_restarted_app_replays_what_the_last_one_queued(dynamo_settings, tmp_path):
    path = tmp_path / "outbox.sqlite3"
    offline = Settings(dynamodb_endpoint=f"http://127.0.0.1:{free_port()}", table_prefix=dynamo_settings.table_prefix)
    before = ResilientStore(DynamoFeedbackStore(offline), Outbox(path), retry_seconds=60)
    turn = make_turn(1)
    before.save_turn(turn)
    before.save_feedback(make_feedback(turn, rating=1))
    before.save_feedback(make_feedback(turn, rating=5).model_copy(update={"version": 2}))
    before.close()

    after = ResilientStore(DynamoFeedbackStore(dynamo_settings), Outbox(path), retry_seconds=0.05)
    deadline = time.monotonic() + 20
    while after.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert after.pending() == 0, "the background replay did not empty the outbox"
    assert after.get_turn(turn.session_id, turn.turn_id) == turn
    assert [f.rating for f in after.feedback_history(turn.turn_id, turn.user)] == [1, 5]
    after.close()


def test_replaying_the_same_records_twice_stores_them_once(dynamo_settings, tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    store = ResilientStore(DynamoFeedbackStore(dynamo_settings), outbox, retry_seconds=60)
    turn = make_turn(1)
    feedback = make_feedback(turn)
    for record in [turn, feedback, turn, feedback]:
        outbox.put(record)  # behind the store's back: no background replay is started
    assert store.drain() == 4
    assert len(raw_items(dynamo_settings, "turns")) == 1
    assert len(raw_items(dynamo_settings, "feedback")) == 1
    store.close()


def test_dynamodb_stopped_mid_run_and_restarted_loses_nothing(tmp_path):
    """Writers keep submitting while DynamoDB Local (kept on disk) stops and comes back on the same port."""
    db_path, port = tmp_path / "dynamodb", free_port()
    local = LocalDynamo(db_path=db_path, port=port).start()
    settings = Settings(dynamodb_endpoint=local.endpoint, table_prefix="outage-", data_dir=tmp_path / "data")
    create_tables(settings)
    store = ResilientStore(DynamoFeedbackStore(settings), Outbox(tmp_path / "outbox.sqlite3"), retry_seconds=0.2)
    writers, per_writer, done = 4, 60, []
    results: list[bool] = []
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for i in range(per_writer):
                turn = make_turn(i, user=f"user{writer}")
                results.append(store.save_turn(turn).queued)
                results.append(store.save_feedback(make_feedback(turn)).queued)
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)
        done.append(writer)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(results) >= writers * per_writer * 2 // 3)
    local.stop()
    wait_for(lambda: len(results) >= writers * per_writer * 4 // 3 or len(done) == writers)
    restarted = LocalDynamo(db_path=db_path, port=port).start()
    try:
        for thread in threads:
            thread.join()
        wait_for(lambda: store.pending() == 0, timeout=60)
        assert errors == []
        assert any(results) and not all(results), "the run should have both stored and queued writes"
        turns = raw_items(settings, "turns")
        feedback = raw_items(settings, "feedback")
        assert len(turns) == len({(t["session_id"]["S"], t["turn_id"]["S"]) for t in turns}) == writers * per_writer
        assert len(feedback) == writers * per_writer
        assert {item["version"]["N"] for item in feedback} == {"1"}
        window = store.feedback_between(datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC))
        assert sum(1 for _ in window) == len(feedback)
    finally:
        store.close()
        restarted.stop()


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_the_app_store_keeps_its_outbox_under_the_data_folder(dynamo_settings):
    store = make_store(dynamo_settings)
    turn = make_turn(1)
    assert not store.save_turn(turn).queued
    assert (dynamo_settings.data_dir / "outbox.sqlite3").is_file()
    assert store.get_turn(turn.session_id, turn.turn_id) == turn
    store.close()


def queue_while_down(path, table_prefix: str, records: list[Turn | Feedback]) -> None:
    """Queue records as the app does while DynamoDB cannot be reached (checked, then put on disk)."""
    offline = Settings(dynamodb_endpoint=f"http://127.0.0.1:{free_port()}", table_prefix=table_prefix)
    down = ResilientStore(DynamoFeedbackStore(offline), Outbox(path), retry_seconds=60)
    for record in records:
        assert (down.save_turn(record) if isinstance(record, Turn) else down.save_feedback(record)).queued
    down.close()


def test_a_record_refused_for_good_becomes_a_dead_letter_and_the_rest_go_on(dynamo_settings, tmp_path):
    path = tmp_path / "outbox.sqlite3"
    good, refused = make_turn(1), make_turn(2, user="u" * 3000)  # DynamoDB keys hold at most 2,048 bytes
    queue_while_down(path, dynamo_settings.table_prefix, [refused, make_feedback(refused), good, make_feedback(good)])

    # A long retry interval: the replay must start at once, not after one.
    store = ResilientStore(DynamoFeedbackStore(dynamo_settings), Outbox(path), retry_seconds=60)
    wait_for(lambda: store.pending() == 0)
    letters = store.dead_letters()
    assert [(d.kind, d.turn_id, d.user) for d in letters] == [("turn", refused.turn_id, refused.user),
                                                               ("feedback", refused.turn_id, refused.user)]
    assert all("must be under 2048 bytes" in d.reason for d in letters)
    assert store.get_turn(good.session_id, good.turn_id) == good
    assert store.latest_feedback(good.turn_id, good.user).rating == 2
    later = make_turn(3)
    assert not store.save_turn(later).queued, "a dead letter must not hold up later saves"

    store.retry_dead_letter(letters[0].seq)
    wait_for(lambda: len(store.dead_letters()) == 2 and store.pending() == 0)
    assert [d.seq for d in store.dead_letters()][0] == letters[1].seq, "retried, refused again, listed last"
    store.discard_dead_letter(letters[1].seq)
    assert [d.kind for d in store.dead_letters()] == ["turn"]
    store.close()


def test_a_record_that_no_longer_reads_as_its_kind_becomes_a_dead_letter(dynamo_settings, tmp_path):
    path = tmp_path / "outbox.sqlite3"
    turn = make_turn(1)
    outbox = Outbox(path)
    outbox.put(turn.model_copy(update={"question": None}))  # as an older app version with another schema might have
    outbox.put(turn)
    store = ResilientStore(DynamoFeedbackStore(dynamo_settings), outbox, retry_seconds=60)
    wait_for(lambda: store.pending() == 0)
    [letter] = store.dead_letters()
    assert (letter.kind, letter.turn_id) == ("turn", turn.turn_id) and "not a valid turn" in letter.reason
    assert store.get_turn(turn.session_id, turn.turn_id) == turn
    store.close()


class GatedStore(DynamoFeedbackStore):
    """DynamoDB Local whose turn writes wait until `gate` is set: a replay held mid-backlog."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.gate = threading.Event()

    def save_turn(self, turn: Turn):
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        return super().save_turn(turn)


def test_a_backlog_is_replayed_in_the_background_and_new_writes_queue_behind_it(dynamo_settings, tmp_path):
    """The replay is held on its first record: the user's click must come back while it is held (a
    click that replayed the backlog itself would wait on the gate), queued behind the backlog."""
    path = tmp_path / "outbox.sqlite3"
    turn = make_turn(1)
    backlog = [make_turn(i) for i in range(2, 300)]
    queue_while_down(path, dynamo_settings.table_prefix, [turn, make_feedback(turn, rating=5), *backlog])

    gated = GatedStore(dynamo_settings)
    store = ResilientStore(gated, Outbox(path), retry_seconds=60)
    saved = store.save_feedback(make_feedback(turn, rating=1))
    assert saved.queued, "while records wait, a new write queues behind them"
    assert store.pending() == len(backlog) + 3, "nothing was replayed while the gate was shut"
    gated.gate.set()
    wait_for(lambda: store.pending() == 0, timeout=120)
    assert [(f.version, f.rating) for f in store.feedback_history(turn.turn_id, turn.user)] == [(1, 5), (2, 1)]
    assert not store.save_feedback(make_feedback(turn, rating=3)).queued
    store.close()


def test_missing_tables_keep_the_backlog_queued_until_they_exist(dynamo_settings, tmp_path):
    """A setup fault (no tables yet) is not a refusal of the records: they wait, and sync once it is fixed."""
    path = tmp_path / "outbox.sqlite3"
    missing = Settings(dynamodb_endpoint=dynamo_settings.dynamodb_endpoint, table_prefix="x" + dynamo_settings.table_prefix)
    turn = make_turn(1)
    queue_while_down(path, missing.table_prefix, [turn, make_feedback(turn)])
    store = ResilientStore(DynamoFeedbackStore(missing), Outbox(path), retry_seconds=0.2)
    time.sleep(1.5)
    assert store.pending() == 2 and store.dead_letters() == []
    create_tables(missing)
    wait_for(lambda: store.pending() == 0)
    assert store.dead_letters() == [] and store.get_turn(turn.session_id, turn.turn_id) == turn
    store.close()
