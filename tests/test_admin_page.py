"""The admin page in Streamlit's AppTest, over feedback stored in DynamoDB Local."""

import json
import re
import zipfile
from io import BytesIO

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.admin_page import exports_dir, zipped
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.feedback.outbox import Outbox, outbox_path
from pipeline.feedback.resilient import ResilientStore
from pipeline.records import Feedback
from pipeline.settings import get_settings
from tests.export_factory import CORRECTION, store_seeds
from tests.test_feedback_outbox import wait_for


def admin_script() -> None:
    from app import services
    from app.admin_page import admin_page
    from app.identity import current_user

    admin_page(current_user(services.settings()))


@pytest.fixture
def seeded_app(dynamo_settings, monkeypatch):
    monkeypatch.setenv("PLUMB_ADMINS", '["alice"]')
    get_settings.cache_clear()
    store_seeds(DynamoFeedbackStore(get_settings()))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield get_settings()
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(user: str) -> AppTest:
    at = AppTest.from_function(admin_script, default_timeout=60)
    at.query_params["user"] = user
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_non_admin_cannot_open_the_page(seeded_app):
    at = open_page("bob")
    assert "for admins" in at.error[0].value
    assert not at.title and not at.metric and not at.get("vega_lite_chart")


def test_an_admin_sees_the_negative_share_and_the_charts(seeded_app):
    at = open_page("alice")
    assert at.title[0].value == "Feedback"
    headline = at.metric[0]
    assert headline.label == "Negative answers (rated 1–2)" and headline.value == "33%"
    assert len(at.get("vega_lite_chart")) == 3
    assert at.dataframe[0].value.shape[0] == 6


def test_filter_group_and_drill_down(seeded_app):
    at = open_page("alice")
    at.multiselect(key="filter-rating").set_value(["1 strongly disagree", "2 disagree"]).run()
    assert at.metric[0].value == "100%" and at.dataframe[0].value.shape[0] == 2
    at.selectbox(key="group-by").set_value("Source document").run()
    grouped = at.dataframe[0].value
    assert sorted(grouped.index) == ["design-criteria.pdf", "site-rules.pdf"]
    bob = next(option for option in at.selectbox[2].options if "bob" in option)
    at.selectbox[2].set_value(bob).run()
    shown = [code.value for code in at.code]
    assert CORRECTION in shown and "wrong, see page 21" in shown
    assert at.expander[0].label == "design\\-criteria\\.pdf – page 21"
    assert not [caption for caption in at.caption if "MLflow trace" in caption.value]  # tracing is off


def test_with_tracing_on_the_drill_down_names_the_turns_trace(seeded_app, monkeypatch):
    monkeypatch.setenv("PLUMB_TRACE_SAMPLE_RATE", "0.5")
    get_settings.cache_clear()
    at = open_page("alice")
    bob = next(option for option in at.selectbox[2].options if "bob" in option)
    at.selectbox[2].set_value(bob).run()
    traced = [caption.value for caption in at.caption if "MLflow trace" in caption.value]
    assert len(traced) == 1 and "experiment `plumb-traces`" in traced[0]
    assert re.search(r"tags\.`plumb\.turn_id` = '[0-9a-f]{32}'", traced[0])


def test_an_admin_exports_with_the_chosen_filters_and_gets_a_zip(seeded_app):
    at = open_page("alice")
    at.multiselect(key="filter-rating").set_value(["1 strongly disagree"]).run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Exported 1 feedback items")
    assert at.get("download_button")
    [export] = [path for path in exports_dir().iterdir()]
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["filters"]["ratings"] == [1] and manifest["watermark"] is None
    assert export.name in at.expander[-1].label

    archive = zipfile.ZipFile(BytesIO(zipped(export)))
    assert f"{export.name}/manifest.json" in archive.namelist()
    scores = [json.loads(line)["score"] for line in archive.read(f"{export.name}/ratings/train.jsonl").splitlines()]
    assert scores == [1]


def test_an_admin_sees_dead_letters_and_retries_or_discards_them(seeded_app):
    """Two feedback records DynamoDB refuses for good (a key longer than it holds): the admin sees
    both with the reason; a retry queues one again (refused again, it is listed again, last), and a
    discard removes the other."""
    user = "e" * 3000  # DynamoDB keys hold at most 2,048 bytes
    refused = [Feedback(session_id="s", turn_id=f"t{i}", user=user, rating=2) for i in range(2)]
    outbox = Outbox(outbox_path(seeded_app))
    for feedback in refused:
        outbox.put(feedback)
    ResilientStore(DynamoFeedbackStore(seeded_app), outbox, retry_seconds=60).close()  # replays at once, then stops
    at = open_page("alice")
    assert at.subheader[0].value == "Refused by the feedback store"
    assert "2048 bytes" in at.text[0].value and "2048 bytes" in at.text[1].value
    assert at.markdown[0].value.startswith("**feedback** of eee")
    at.button(key="retry-1").click().run()
    assert not at.exception, at.exception
    letters = Outbox(outbox_path(seeded_app))
    wait_for(lambda: letters.pending() == 0 and [d.turn_id for d in letters.dead_letters()] == ["t1", "t0"])
    at.button(key="discard-2").click().run()
    assert not at.exception, at.exception
    assert [d.turn_id for d in letters.dead_letters()] == ["t0"]
