"""Escalation end to end in Debian's chromium: an angry user is told an expert was asked (and the
expert's webhook receives the transcript), the expert claims and answers, the user reads the answer
in the conversation, and once the expert adds it to the knowledge base a new question retrieves it
with a citation."""

import os
import re
from uuid import uuid4

import pytest
from playwright.sync_api import Page, expect

from pipeline.documents import find_files
from pipeline.embeddings import Embedder
from pipeline.feedback import create_tables
from pipeline.feedback.local_dynamo import free_port
from pipeline.index.embedded import EmbeddedIndex
from pipeline.ingest import ingest_files, make_splitter
from pipeline.samples import write_samples
from pipeline.settings import Settings
from tests.test_browser import ask, browser, page, served_app  # noqa: F401 (fixtures)
from tests.test_escalation import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXPERT_ANSWER = "The anchor bolts of the north pump skid are torqued to 85 newton metres, checked after 24 hours."


@pytest.fixture(scope="module")
def receiver():
    hook = Receiver(free_port())
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, dynamo_local, shared_models_dir, embedder: Embedder, receiver):
    home = tmp_path_factory.mktemp("escalation-app")
    env = dict(
        os.environ,
        PLUMB_DATA_DIR=str(home / "data"),
        PLUMB_DYNAMODB_ENDPOINT=dynamo_local.endpoint,
        PLUMB_TABLE_PREFIX=f"e{uuid4().hex[:10]}-",
        PLUMB_EXPERTS='["dana"]',
        PLUMB_ESCALATION_WEBHOOK_URL=f"http://127.0.0.1:{receiver.server.server_port}/hook",
        PLUMB_MAX_NEW_TOKENS="24",
        PLUMB_EMBEDDING_BACKEND="torch",  # the index below is built with the torch embedder; no ONNX export at start
        HF_HUB_OFFLINE="1",
    )
    create_tables(Settings(_env_file=None, dynamodb_endpoint=dynamo_local.endpoint, table_prefix=env["PLUMB_TABLE_PREFIX"]))
    (home / "data").mkdir()
    (home / "data" / "models").symlink_to(shared_models_dir, target_is_directory=True)
    index = EmbeddedIndex(home / "data" / "index", embedder.dimension)
    ingest_files(find_files(write_samples(home / "samples")), index, embedder, make_splitter(embedder, 200, 40))
    index.close()
    with served_app(home, env) as url:
        yield url


def test_angry_user_expert_answers_and_the_answer_becomes_knowledge(page: Page, app_url: str, receiver):
    page.goto(f"{app_url}/?user=angie")
    page.get_by_placeholder("Ask about the documents").wait_for(timeout=180_000)  # the first page loads the models
    ask(page, "This bot is garbage and I hate it. What torque for the north pump skid anchor bolts?")
    expect(page.get_by_text("An expert was asked to look at this conversation")).to_have_count(1)
    conversation = page.url

    expert = page.context.new_page()
    expert.goto(f"{app_url}/expert?user=dana")
    expect(expert.get_by_text("angie · negative · open")).to_be_visible(timeout=60_000)
    expect(expert.get_by_text("This bot is garbage and I hate it.", exact=False)).to_be_visible()
    expert.get_by_role("button", name="Claim").click()
    # Each step waits for its rerun to finish: a widget changed mid-run would cancel the step's run.
    expect(expert.get_by_text("Nothing here.")).to_be_visible(timeout=30_000)
    expert.get_by_role("radio", name="Claimed by me").check(force=True)
    expert.get_by_role("textbox", name="Your answer").fill(EXPERT_ANSWER)
    expert.get_by_role("textbox", name="Your answer").blur()
    expert.get_by_role("button", name="Send answer").click()
    expect(expert.get_by_text("Nothing here.")).to_be_visible(timeout=30_000)
    expert.get_by_role("radio", name="Answered").check(force=True)
    expect(expert.get_by_text("Answer from dana:")).to_be_visible(timeout=30_000)

    page.goto(conversation)
    expect(page.get_by_text("Answer from expert dana to: This bot is garbage", exact=False)).to_be_visible(timeout=60_000)
    expect(page.get_by_text(EXPERT_ANSWER)).to_be_visible()

    expert.get_by_role("button", name="Add to knowledge base").click()
    expect(expert.get_by_text(re.compile(r"In the knowledge base as expert-answers/\w+\.md"))).to_be_visible(timeout=60_000)

    page.goto(f"{app_url}/?user=omar")
    ask(page, "What torque are the north pump skid anchor bolts tightened to?")
    citation = page.get_by_text(re.compile(r"\[\d\] expert-answers/\w+\.md – Expert answer by dana")).first
    expect(citation).to_be_visible()
    citation.click()
    expect(page.get_by_text("85 newton metres", exact=False).first).to_be_visible()

    assert len(receiver.bodies) == 1, "the webhook heard of the escalation once"
    assert "User: This bot is garbage and I hate it." in receiver.bodies[0]["text"]
