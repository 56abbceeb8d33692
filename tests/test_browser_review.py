"""A reviewer's path in a real browser (the harness of tests/test_browser.py): filter the AI scores
to those that disagree with the users, open one, override it with a reason."""

import os
from uuid import uuid4

import pytest
from playwright.sync_api import Page, expect

from pipeline.feedback import create_tables
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Citation, Feedback, Judgement, Turn
from pipeline.settings import Settings
from tests.test_browser import browser, page, served_app  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JUDGE = "judge-model#plumb-judge-v1"
# (asker, question, answer, user's rating, AI score): only the first pair disagrees (AI 5 vs user 1).
SEEDED = [
    ("bob", "What is the frost depth?", "Frost depth is 24 inches.", 1, 5.0),
    ("carol", "What is the roof live load?", "Roof live load is 20 psf.", 5, 5.0),
    ("dave", "What is the snow importance factor?", "It is 1.20.", 4, 3.5),
]


def seed_judgements(settings: Settings) -> dict[str, Turn]:
    store = DynamoFeedbackStore(settings)
    turns = {}
    for user, question, answer, rating, score in SEEDED:
        turn = Turn(session_id=f"s-{user}", user=user, question=question, condensed_question=question, answer=answer,
                    model_id="SmolLM2-135M-Instruct", prompt_version="plumb-answer-v1", history=[], generated=True,
                    citations=[Citation(source="design-criteria.pdf", page=5, passage=answer, score=0.9)])
        store.save_turn(turn)
        store.save_feedback(Feedback(session_id=turn.session_id, turn_id=turn.turn_id, user=user, rating=rating))
        store.save_judgement(Judgement(session_id=turn.session_id, turn_id=turn.turn_id, user=user,
                                       judge_model="judge-model", prompt_version="plumb-judge-v1", score=score,
                                       comment=f"The judge on {user}'s answer.", reference_kind="none"))
        turns[user] = turn
    return turns


@pytest.fixture(scope="module")
def review_app(tmp_path_factory, dynamo_local):
    home = tmp_path_factory.mktemp("review-app")
    prefix = f"r{uuid4().hex[:10]}-"
    env = dict(os.environ, PLUMB_DATA_DIR=str(home / "data"), PLUMB_DYNAMODB_ENDPOINT=dynamo_local.endpoint,
               PLUMB_TABLE_PREFIX=prefix, PLUMB_REVIEWERS='["rita"]', HF_HUB_OFFLINE="1")
    settings = Settings(_env_file=None, data_dir=home / "seed", dynamodb_endpoint=dynamo_local.endpoint,
                        table_prefix=prefix)
    create_tables(settings)
    turns = seed_judgements(settings)
    with served_app(home, env) as url:
        yield url, settings, turns


def test_a_reviewer_filters_to_disagreements_and_overrides_one(page: Page, review_app):  # noqa: F811
    url, settings, turns = review_app
    page.goto(f"{url}/review?user=rita")
    expect(page.get_by_text("Review AI scores")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("3 judgements. Click a row to review it.")).to_be_visible(timeout=60_000)
    page.get_by_test_id("stMultiSelect").filter(has_text="AI vs user").click()
    page.get_by_role("option", name="Disagree (2+ levels apart)").click()
    page.keyboard.press("Escape")
    expect(page.get_by_text("1 judgements. Click a row to review it.")).to_be_visible(timeout=30_000)

    grid = page.get_by_test_id("stDataFrame")
    grid.click(position={"x": 12, "y": 35 + 17})  # the row marker of the first row, under the header
    expect(page.get_by_role("heading", name="What is the frost depth?")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("The judge on bob's answer.")).to_be_visible()

    page.get_by_text("Override", exact=True).click()
    slider = page.get_by_role("slider")
    slider.focus()
    for _ in range(8):  # from the AI's 5.0 down to 1.0 in half points
        slider.press("ArrowLeft")
    reason = page.get_by_role("textbox", name="Reason (needed to override)")
    reason.fill("The frost depth is 42 inches, not 24.")
    reason.blur()
    page.get_by_role("button", name="Save review").click()
    expect(page.get_by_text("Saved: the score is overridden (version 1).")).to_be_visible(timeout=30_000)

    [review] = DynamoFeedbackStore(settings).review_history(turns["bob"].turn_id, JUDGE)
    assert (review.action, review.score, review.reviewer) == ("override", 1.0, "rita")
    assert review.reason == "The frost depth is 42 inches, not 24." and review.seconds > 0
    [judgement] = [j for j in DynamoFeedbackStore(settings).judgements() if j.turn_id == turns["bob"].turn_id]
    assert judgement.score == 5.0

