"""The admin page (AppTest) lists an expert notification that could not be delivered, with its error,
and shows the escalation figures."""

import re

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pipeline.escalation.notify import make_notifier
from pipeline.escalation.records import Escalation
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.feedback.local_dynamo import free_port
from pipeline.settings import get_settings


def admin_script() -> None:
    from app import services
    from app.admin_page import admin_page
    from app.identity import current_user

    admin_page(current_user(services.settings()))


@pytest.fixture
def admin_settings(dynamo_settings, monkeypatch):
    monkeypatch.setenv("PLUMB_ADMINS", '["alice"]')
    monkeypatch.setenv("PLUMB_ESCALATION_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hook")  # nothing listens
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield get_settings()
    st.cache_resource.clear()


def test_undelivered_notification_and_figures_are_on_the_admin_page(admin_settings):
    escalation = Escalation(session_id="s", turn_id="t1", user="ann", reason="negative", question="q", transcript=[])
    DynamoFeedbackStore(admin_settings).save_escalation(escalation)
    notifier = make_notifier(admin_settings)
    notifier.enqueue(escalation)
    assert notifier.deliver_due() == 0
    notifier.close()
    at = AppTest.from_function(admin_script, default_timeout=60)
    at.query_params["user"] = "alice"
    at.run()
    assert not at.exception, at.exception
    assert at.warning[0].value == "1 expert notifications not delivered yet; they are retried in the background."
    # the app's own delivery thread may have tried again meanwhile
    assert any(re.search(r"\*\*webhook\*\* · escalation `s/t1` · \d+ tries", m.value) for m in at.markdown), [m.value for m in at.markdown]
    assert any("Connection refused" in t.value for t in at.text), [t.value for t in at.text]
    figures = {m.label: m.value for m in at.metric}
    assert figures["Escalations"] == "1" and figures["Waiting for an expert"] == "1"
    assert figures["Time to first expert response (median)"] == "–"
