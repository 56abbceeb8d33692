"""One behavioural suite for the FeedbackStore interface, run against both implementations on a
real DynamoDB Local: what is written comes back whole, repeats are stored once, bad input stores nothing."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from pipeline.errors import InvalidFeedback
from pipeline.feedback.dynamo import ITEM_MAX_BYTES, PASSAGE_MAX_CHARS, DynamoFeedbackStore
from pipeline.feedback.outbox import Outbox, outbox_path
from pipeline.feedback.resilient import ResilientStore
from pipeline.feedback.store import FeedbackStore, TurnRejected, checked_feedback
from pipeline.records import CORRECTION_MAX_CHARS, NOTE_MAX_CHARS, Citation, Feedback, Turn

ODD_TEXT = "Ünïcödé é 👩‍🔬 עברית العربية 漢字 𝐀𝐁 “quotes” \\ back\\slash\ttab\nnew line"


@pytest.fixture(params=["dynamo", "resilient"])
def store(request: pytest.FixtureRequest, dynamo_settings) -> Iterator[FeedbackStore]:
    dynamo = DynamoFeedbackStore(dynamo_settings)
    if request.param == "dynamo":
        yield dynamo
        return
    resilient = ResilientStore(dynamo, Outbox(outbox_path(dynamo_settings)))
    yield resilient
    assert resilient.pending() == 0, "a write was queued although DynamoDB was up"
    resilient.close()


def make_turn(session_id: str = "s1", user: str = "ann", **changes) -> Turn:
    fields = dict(
        session_id=session_id,
        user=user,
        question="What is the minimum cover for rebar in footings?",
        condensed_question="minimum rebar cover footings",
        answer="75 mm where cast against earth [1].",
        citations=[
            Citation(
                source="specs/033000.pdf", page=21, passage="Against earth: 75 mm.", score=0.83, chunk_id="c-21",
                page_label="C-3",
            ),
            Citation(
                source="design criteria.md", page=1, passage=ODD_TEXT, score=0.412345678901, chunk_id="",
                section="Lo𝐀ds › Wind",
            ),
        ],
        history=[("What cover do walls need?", "50 mm [1]."), ("And slabs?", ODD_TEXT)],
        generated=True,
        not_covered=False,
        model_id="mistral-7b-lora-3",
        prompt_version="answer-v2",
        timings_ms={"retrieve": 12.5, "generate": 2345.25},
        tokens_in=812,
        tokens_out=64,
    )
    return Turn(**(fields | changes))


def make_feedback(turn: Turn, **changes) -> Feedback:
    fields = dict(
        session_id=turn.session_id,
        turn_id=turn.turn_id,
        user=turn.user,
        rating=2,
        note="This is on page 21 of section 01 13 10.",
        correction="75 mm, per section 03 30 00, page 21.",
        flagged_citations=[1],
    )
    return Feedback(**(fields | changes))


def test_turn_round_trips_every_field(store):
    turn = make_turn(not_covered=True)
    saved = store.save_turn(turn)
    assert (saved.record, saved.queued) == (turn, False)
    assert store.get_turn(turn.session_id, turn.turn_id) == turn
    assert store.get_turn(turn.session_id, "no-such-turn") is None
    unrecorded = make_turn(history=None, generated=False)
    store.save_turn(unrecorded)
    assert store.get_turn(unrecorded.session_id, unrecorded.turn_id).history is None, "not recorded stays unknown"


def test_a_turn_stored_before_page_labels_and_sections_loads_with_its_old_labels(store, dynamo_settings, dynamo_items):
    turn = make_turn()
    store.save_turn(turn)
    (item,) = dynamo_items("turns")
    for citation in item["citations"]["L"]:
        del citation["M"]["page_label"], citation["M"]["section"]
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamo_settings.dynamodb_endpoint,
        region_name=dynamo_settings.aws_region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    client.put_item(TableName=dynamo_settings.table_prefix + "turns", Item=item)
    stored = store.get_turn(turn.session_id, turn.turn_id)
    assert [(c.page_label, c.section) for c in stored.citations] == [("", ""), ("", "")]
    assert [c.label() for c in stored.citations] == ["specs/033000.pdf – page 21", "design criteria.md – page 1"]


def test_feedback_round_trips_every_field(store):
    turn = make_turn()
    store.save_turn(turn)
    feedback = make_feedback(turn, flagged_citations=[1, 0], note=ODD_TEXT, correction=ODD_TEXT)
    saved = store.save_feedback(feedback)
    assert not saved.queued
    assert saved.record == feedback
    assert store.latest_feedback(turn.turn_id, turn.user) == feedback
    assert store.latest_feedback(turn.turn_id, "someone else") is None


def test_markup_in_a_note_is_stored_verbatim(store):
    turn = make_turn()
    note = '<script>alert("x")</script> <b>bold</b> &amp; {{ template }}'
    store.save_feedback(make_feedback(turn, note=note, correction=note))
    stored = store.latest_feedback(turn.turn_id, turn.user)
    assert (stored.note, stored.correction) == (note, note)


def test_a_changed_verdict_keeps_its_history(store, dynamo_items):
    turn = make_turn()
    first = store.save_feedback(make_feedback(turn, rating=2)).record
    second = store.save_feedback(make_feedback(turn, rating=5, note="", correction=None, version=2)).record
    assert (first.version, second.version) == (1, 2)
    assert store.latest_feedback(turn.turn_id, turn.user) == second
    assert store.feedback_history(turn.turn_id, turn.user) == [first, second]
    assert len(dynamo_items("feedback")) == 2


def test_a_change_sent_with_a_taken_version_becomes_the_next_version(store):
    turn = make_turn()
    store.save_feedback(make_feedback(turn, rating=2))
    changed = store.save_feedback(make_feedback(turn, rating=4)).record
    assert changed.version == 2
    assert store.latest_feedback(turn.turn_id, turn.user).rating == 4


def test_a_double_click_or_retry_is_stored_once(store, dynamo_items):
    turn = make_turn()
    feedback = make_feedback(turn)
    for repeat in [feedback, feedback, make_feedback(turn), make_feedback(turn, version=2)]:
        assert store.save_feedback(repeat).record.version == 1
    changed = store.save_feedback(make_feedback(turn, rating=4, version=2)).record
    assert store.save_feedback(changed).record == changed
    assert [item["version"]["N"] for item in dynamo_items("feedback")] == ["1", "2"]


def test_a_new_verdict_always_becomes_the_latest_version(store, dynamo_items):
    """Ratings 5, 1, 5, each sent as version 1, as the form did when reading the stored feedback
    failed: every new verdict is stored, in order, and the last one counts."""
    turn = make_turn()
    sent = [make_feedback(turn, rating=rating, version=1) for rating in (5, 1, 5)]
    saved = [store.save_feedback(feedback).record for feedback in sent]
    assert [(f.version, f.rating) for f in saved] == [(1, 5), (2, 1), (3, 5)]
    assert [(f.version, f.rating) for f in store.feedback_history(turn.turn_id, turn.user)] == [(1, 5), (2, 1), (3, 5)]
    assert store.latest_feedback(turn.turn_id, turn.user).rating == 5
    assert [f.submission_id for f in saved] == [f.submission_id for f in sent]
    assert sorted(item["submission_id"]["S"] for item in dynamo_items("feedback")) == sorted(f.submission_id for f in sent)


def test_a_replayed_submission_is_stored_once_and_does_not_become_the_latest(store, dynamo_items):
    turn = make_turn()
    first = make_feedback(turn, rating=5)
    store.save_feedback(first)
    second = store.save_feedback(make_feedback(turn, rating=1)).record
    replayed = store.save_feedback(first.model_copy(update={"version": 3})).record
    assert (replayed.version, replayed.rating, replayed.submission_id) == (1, 5, first.submission_id)
    assert store.latest_feedback(turn.turn_id, turn.user) == second
    assert len(dynamo_items("feedback")) == 2


TYPED_TEXTS = {
    "Persian with ZWNJ": "می\u200cخواهم این پاسخ را اصلاح کنم",
    "Hindi with ZWJ and ZWNJ": "क्\u200dष और क्\u200cष, हिन्दी",
    "emoji ZWJ sequences": "👨\u200d👩\u200d👧\u200d👦 👩🏽\u200d🔬 🏳️\u200d🌈",
    "flags and skin tones": "🇩🇪 🇯🇵 👍🏿 👋🏻",
    "variation selectors and combining marks": "❤️ ☺︎ e\u0301 n\u0303 अ\u0902",
    "Arabic": "غطاء الخرسانة ٧٥ مم",
    "CJK": "混凝土保护层 75 毫米、コンクリート",
    "line and paragraph separators": "a\u2028b\u2029c",
}


@pytest.mark.parametrize("text", TYPED_TEXTS.values(), ids=TYPED_TEXTS.keys())
def test_text_is_stored_as_typed_in_every_script(store, text):
    turn = make_turn()
    store.save_feedback(make_feedback(turn, note=text, correction=text))
    stored = store.latest_feedback(turn.turn_id, turn.user)
    assert (stored.note, stored.correction) == (text, text)


def test_only_what_is_never_content_is_dropped(store):
    turn = make_turn()
    typed = "a\u202eb\u202ac\u2066d\u2069e\x00f\x07g\x1bh\x85i\x9fj\x7fk\r\nl\rm\tn\u200do"
    store.save_feedback(make_feedback(turn, note=typed, correction=typed))
    stored = store.latest_feedback(turn.turn_id, turn.user)
    assert stored.note == stored.correction == "abcdefghijk\nl\nm\tn\u200do"


def test_a_turn_saved_twice_is_one_item(store, dynamo_items):
    turn = make_turn()
    store.save_turn(turn)
    store.save_turn(turn)
    assert len(dynamo_items("turns")) == 1
    assert len(dynamo_items("sessions")) == 1


def test_concurrent_writers_store_every_item_exactly_once(store, dynamo_items):
    writers, per_writer = 16, 100
    start = datetime.now(UTC)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for i in range(per_writer):
                turn = make_turn(session_id=f"s{writer}", user=f"user{writer}")
                # A note of about 1 KB puts the 1,600 items on more than one DynamoDB page.
                feedback = make_feedback(turn, rating=1 + i % 5, note=f"writer {writer} item {i} " + "x" * 1000)
                store.save_feedback(feedback)
                store.save_feedback(feedback)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    items = dynamo_items("feedback")
    assert len(items) == writers * per_writer
    assert {item["version"]["N"] for item in items} == {"1"}
    assert len({item["turn_user"]["S"] for item in items}) == writers * per_writer
    assert sum(1 for _ in store.feedback_between(start, datetime.now(UTC) + timedelta(seconds=1))) == len(items)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rating": 0}, "rating must be a whole number from 1 (strongly disagree) to 5"),
        ({"rating": 6}, "rating must be a whole number from 1 (strongly disagree) to 5"),
        ({"rating": None}, "rating must be a whole number"),
        ({"note": "n" * (NOTE_MAX_CHARS + 1)}, f"note is longer than {NOTE_MAX_CHARS} characters"),
        ({"correction": "c" * (CORRECTION_MAX_CHARS + 1)}, f"correction is longer than {CORRECTION_MAX_CHARS}"),
        ({"correction": " \n "}, "the corrected answer is empty"),
        ({"user": ""}, "user is empty"),
        ({"turn_id": "a#b"}, "cannot contain '#'"),
    ],
)
def test_bad_feedback_is_refused_with_a_clear_error_and_nothing_is_stored(store, dynamo_items, change, message):
    turn = make_turn()
    good = make_feedback(turn).model_dump()
    bad = Feedback.model_construct(**{key: value for key, value in (good | change).items() if value is not None})
    with pytest.raises(InvalidFeedback, match="The feedback was not saved") as caught:
        store.save_feedback(bad)
    assert message in str(caught.value)
    assert dynamo_items("feedback") == []


def test_missing_rating_is_named():
    data = {"session_id": "s", "turn_id": "t", "user": "u"}
    with pytest.raises(InvalidFeedback, match="rating must be a whole number from 1"):
        checked_feedback(data)


def test_longest_allowed_feedback_in_four_byte_characters_round_trips(store):
    turn = make_turn()
    wide = "𝐀"  # 4 bytes in UTF-8
    feedback = make_feedback(turn, note=wide * NOTE_MAX_CHARS, correction=wide * CORRECTION_MAX_CHARS)
    store.save_feedback(feedback)
    assert store.latest_feedback(turn.turn_id, turn.user) == feedback


def test_long_passages_are_cut_to_the_documented_size(store, dynamo_items):
    citations = [
        Citation(source=f"doc{i}.pdf", page=i + 1, passage=f"{i:02d}" + "p" * 9998, score=0.5, chunk_id=f"c{i}")
        for i in range(50)
    ]
    turn = make_turn(citations=citations)
    store.save_turn(turn)
    stored = store.get_turn(turn.session_id, turn.turn_id)
    assert [c.passage for c in stored.citations] == [c.passage[:PASSAGE_MAX_CHARS] for c in citations]
    assert [c.chunk_id for c in stored.citations] == [c.chunk_id for c in citations]
    raw = dynamo_items("turns")[0]["citations"]["L"]
    assert all(entry["M"]["passage_truncated"]["BOOL"] for entry in raw)
    assert all(c.passage_truncated for c in stored.citations), "the turn says its prompt cannot be rebuilt"
    assert stored.model_copy(update={"citations": citations}) == turn
    store.save_turn(stored)
    assert store.get_turn(turn.session_id, turn.turn_id) == stored, "stored again, still marked truncated"


def test_a_turn_over_the_item_limit_is_refused_and_nothing_is_stored(store, dynamo_items):
    turn = make_turn(answer="a" * ITEM_MAX_BYTES)
    with pytest.raises(TurnRejected, match="DynamoDB holds at most 400 KB per item"):
        store.save_turn(turn)
    assert dynamo_items("turns") == []
    assert dynamo_items("sessions") == []


def test_a_turn_without_a_user_is_refused(store):
    with pytest.raises(TurnRejected, match="its user is empty"):
        store.save_turn(make_turn(user=""))


def test_naive_timestamps_are_taken_as_utc(store):
    turn = make_turn(created_at=datetime(2025, 3, 1, 12, 30))
    store.save_turn(turn)
    assert store.get_turn(turn.session_id, turn.turn_id).created_at == datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def test_session_turns_come_in_order(store):
    base = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    turns = [make_turn(question=f"q{i}", created_at=base + timedelta(minutes=i)) for i in range(5)]
    for turn in [turns[3], turns[0], turns[4], turns[1], turns[2]]:
        store.save_turn(turn)
    store.save_turn(make_turn(session_id="other"))
    assert store.session_turns("s1") == turns
    assert store.session_turns("nobody's") == []


def test_user_sessions_newest_first_titled_by_their_first_question(store):
    base = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    store.save_turn(make_turn("old", question="old first", created_at=base))
    store.save_turn(make_turn("busy", question="busy later", created_at=base + timedelta(hours=3)))
    store.save_turn(make_turn("new", question="new first", created_at=base + timedelta(hours=2)))
    # Arriving late (as from an outbox): an earlier turn of 'busy' still gives the session its title.
    store.save_turn(make_turn("busy", question="busy first", created_at=base + timedelta(hours=1)))
    store.save_turn(make_turn("theirs", user="bob", created_at=base + timedelta(hours=9)))
    sessions = store.user_sessions("ann")
    assert [(s.session_id, s.title, s.updated_at) for s in sessions] == [
        ("busy", "busy first", base + timedelta(hours=3)),
        ("new", "new first", base + timedelta(hours=2)),
        ("old", "old first", base),
    ]
    assert [s.session_id for s in store.user_sessions("ann", limit=2)] == ["busy", "new"]
    assert store.user_sessions("nobody") == []


def test_feedback_between_reads_a_half_open_window_of_receipt_times(store):
    turn = make_turn()
    t0 = datetime.now(UTC)
    # Made long ago (e.g. queued offline): it belongs to the window in which the store received it.
    first = make_feedback(turn, user="ann", created_at=t0 - timedelta(days=30))
    store.save_feedback(first)
    time.sleep(0.01)
    t1 = datetime.now(UTC)
    second = make_feedback(turn, user="bob")
    store.save_feedback(second)
    time.sleep(0.01)
    t2 = datetime.now(UTC)
    window = store.feedback_between(t0, t1)
    assert isinstance(window, Iterator)
    assert list(window) == [first]
    assert list(store.feedback_between(t1, t2)) == [second]
    assert list(store.feedback_between(t0 - timedelta(days=3), t2)) == [first, second]
    assert list(store.feedback_between(t2, t2 + timedelta(hours=1))) == []
    assert list(store.feedback_between(t2, t0)) == []
