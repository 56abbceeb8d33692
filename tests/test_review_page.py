"""The reviewers' page in Streamlit's AppTest, over judgements stored in DynamoDB Local."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Judgement
from pipeline.settings import get_settings
from tests.export_factory import CORRECTION, store_seeds

# AI scores of the seeded turns, whose users rated 5, 1, 4, 3, 2, 4: bob's 4.5 (level 5) and erin's
# 4.0 are 4 and 2 levels from the ratings, the others agree.
SCORES = [5.0, 4.5, 4.0, 3.0, 4.0, 4.0]
JUDGE = "judge-model#plumb-judge-v1"


def review_script() -> None:
    from app import services
    from app.identity import current_user
    from app.review_page import review_page

    review_page(current_user(services.settings()))


@pytest.fixture
def judged(dynamo_settings, monkeypatch):
    monkeypatch.setenv("PLUMB_REVIEWERS", '["rita"]')
    get_settings.cache_clear()
    dynamo = DynamoFeedbackStore(get_settings())
    pairs = store_seeds(dynamo)
    for (turn, _), score in zip(pairs, SCORES, strict=True):
        dynamo.save_judgement(
            Judgement(session_id=turn.session_id, turn_id=turn.turn_id, user=turn.user, judge_model="judge-model",
                      prompt_version="plumb-judge-v1", score=score, comment=f"Judged {turn.user}.",
                      reference_kind="none")
        )
    st.cache_data.clear()
    st.cache_resource.clear()
    yield dynamo, pairs
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(user: str) -> AppTest:
    at = AppTest.from_function(review_script, default_timeout=60)
    at.query_params["user"] = user
    at.run()
    assert not at.exception, at.exception
    return at


def pick_first_row(at: AppTest) -> None:
    at.session_state["review-table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception


def test_a_non_reviewer_cannot_open_the_page(judged):
    at = open_page("alice")
    assert "for reviewers" in at.error[0].value
    assert not at.title and not at.dataframe and not at.metric


def test_counts_filters_and_groups(judged):
    at = open_page("rita")
    assert [(m.label, m.value) for m in at.metric] == [("Reviewed", "0"), ("Pending", "6"), ("Median time per review", "–")]
    assert at.dataframe[0].value.shape[0] == 6
    at.multiselect(key="filter-agreement").set_value(["Disagree (2+ levels apart)"]).run()
    shown = at.dataframe[0].value
    assert list(shown["ai_score"]) == [4.5, 4.0] and list(shown["gap"]) == [4, 2]  # largest disagreement first
    at.multiselect(key="filter-agreement").set_value([]).run()
    at.multiselect(key="filter-model").set_value(["mistral-7b-v2"]).run()
    assert list(at.dataframe[0].value["question"]) == ["How far apart are the anchor bolts?"]
    at.multiselect(key="filter-model").set_value([]).run()
    at.selectbox(key="group-by").set_value("AI score").run()
    groups = at.dataframe[0].value
    assert groups.loc[4.0, "judgements"] == 3 and groups.loc[4.0, "mean_user_rating"] == pytest.approx((4 + 2 + 4) / 3)


def test_a_reviewer_overrides_a_score_and_it_shows_as_a_new_version(judged):
    dynamo, pairs = judged
    bob = pairs[1][0]
    at = open_page("rita")
    at.multiselect(key="filter-agreement").set_value(["Disagree (2+ levels apart)"]).run()
    pick_first_row(at)
    assert at.subheader[0].value == bob.question
    assert CORRECTION in [code.value for code in at.code] and "Judged bob." in [text.value for text in at.text]

    at.radio(key="review-decision").set_value("Override")
    at.select_slider(key="review-score").set_value(1.0)
    at.button[0].click().run()  # no reason given
    assert "an override needs a reason" in at.error[0].value
    assert dynamo.review_history(bob.turn_id, JUDGE) == []

    at.radio(key="review-decision").set_value("Override")
    at.select_slider(key="review-score").set_value(1.0)
    at.text_area(key="review-reason").set_value("The ramp limit is 1:12, the answer says 1:10.")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Saved: the score is overridden (version 1)."
    [first] = dynamo.review_history(bob.turn_id, JUDGE)
    assert (first.action, first.score, first.reviewer, first.version) == ("override", 1.0, "rita", 1)
    assert 0 < first.seconds < 120

    at.radio(key="review-decision").set_value("Accept the AI score")
    at.button[0].click().run()
    assert at.success[0].value == "Saved: the score is accepted (version 2)."
    versions = at.dataframe[-1].value
    assert list(versions["version"]) == [1, 2] and list(versions["action"]) == ["override", "accept"]
    assert list(versions["score"]) == [1.0, 4.5]
    # The AI's judgement is as it was: decisions are versions beside it.
    [judgement] = [j for j in dynamo.judgements() if j.turn_id == bob.turn_id]
    assert (judgement.score, judgement.comment) == (4.5, "Judged bob.")
    assert [(m.label, m.value) for m in at.metric][:2] == [("Reviewed", "1"), ("Pending", "5")]
