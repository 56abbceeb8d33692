"""Renaming and deleting a conversation, on DynamoDB Local through both store implementations."""

import pytest

from pipeline.errors import PlumbError
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.feedback.outbox import Outbox, outbox_path
from pipeline.feedback.resilient import ResilientStore
from pipeline.records import Feedback
from tests.test_feedback_store import make_turn


@pytest.fixture(params=["dynamo", "resilient"])
def store(request, dynamo_settings):
    dynamo = DynamoFeedbackStore(dynamo_settings)
    if request.param == "dynamo":
        yield dynamo
        return
    resilient = ResilientStore(dynamo, Outbox(outbox_path(dynamo_settings)))
    yield resilient
    resilient.close()


def test_rename_keeps_the_name_through_later_turns(store):
    store.save_turn(make_turn("s1"))
    store.rename_session("ann", "s1", "  Rebar   cover\n")
    store.save_turn(make_turn("s1", question="And in slabs?"))
    [summary] = store.user_sessions("ann")
    assert summary.title == "Rebar cover"


@pytest.mark.parametrize(("user", "title", "message"), [("ann", "   ", "cannot be empty"), ("bob", "Mine", "no longer exists")])
def test_rename_refuses_an_empty_name_and_another_users_conversation(store, user, title, message):
    store.save_turn(make_turn("s1"))
    with pytest.raises(PlumbError, match=message):
        store.rename_session(user, "s1", title)
    assert [s.title for s in store.user_sessions("ann")] == [make_turn().question]
    assert store.user_sessions("bob") == []


def test_delete_keeps_rated_answers_with_their_feedback_marked_and_removes_the_rest(store, dynamo_items):
    rated, unrated = make_turn("s1"), make_turn("s1", question="And in slabs?")
    store.save_turn(rated)
    store.save_turn(unrated)
    for rating in (2, 4):
        store.save_feedback(Feedback(session_id="s1", turn_id=rated.turn_id, user="ann", rating=rating))
    deleted = store.delete_session("ann", "s1")
    assert (deleted.kept, deleted.removed) == (1, 1)
    assert store.user_sessions("ann") == []
    assert [turn.turn_id for turn in store.session_turns("s1")] == [rated.turn_id]
    history = store.feedback_history(rated.turn_id, "ann")
    assert [(f.version, f.rating, f.session_deleted) for f in history] == [(1, 2, True), (2, 4, True)]
    assert all(item["session_deleted"] == {"BOOL": True} for item in dynamo_items("feedback"))


def test_delete_touches_only_the_users_own_turns(store):
    store.save_turn(make_turn("s1", user="ann"))
    store.save_turn(make_turn("s1", user="bob"))
    store.delete_session("ann", "s1")
    assert [turn.user for turn in store.session_turns("s1")] == ["bob"]
    assert [s.session_id for s in store.user_sessions("bob")] == ["s1"]
