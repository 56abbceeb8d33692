"""The user's paths in a real browser: Debian's chromium, headless, driving the real app served by
`streamlit run` over the sample documents, the packaged models and DynamoDB Local."""

import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from uuid import uuid4

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from pipeline.documents import find_files
from pipeline.embeddings import Embedder
from pipeline.feedback import create_tables, make_store
from pipeline.feedback.local_dynamo import free_port
from pipeline.index.embedded import EmbeddedIndex
from pipeline.ingest import ingest_files, make_splitter
from pipeline.records import Citation, Feedback, Turn
from pipeline.samples import write_samples
from pipeline.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP = Path(__file__).resolve().parents[1] / "app" / "main.py"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until_responds(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def seed_feedback(settings: Settings) -> None:
    """One rated turn, so the admin page has something to chart and export."""
    store = make_store(settings)
    turn = Turn(session_id="s-seed", user="carol", question="What is the frost depth?", condensed_question="What is the frost depth?",
                answer="Frost depth is 42 inches.", model_id="SmolLM2-135M-Instruct", prompt_version="plumb-answer-v1",
                citations=[Citation(source="design-criteria.pdf", page=5, passage="Frost depth is 42 inches.", score=0.9)])
    store.save_turn(turn)
    store.save_feedback(Feedback(session_id=turn.session_id, turn_id=turn.turn_id, user="carol", rating=5, note="Right."))
    store.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, dynamo_local, shared_models_dir, embedder: Embedder):
    home = tmp_path_factory.mktemp("browser-app")
    env = dict(
        os.environ,
        PLUMB_DATA_DIR=str(home / "data"),
        PLUMB_DYNAMODB_ENDPOINT=dynamo_local.endpoint,
        PLUMB_TABLE_PREFIX=f"b{uuid4().hex[:10]}-",
        PLUMB_ADMINS='["admin"]',
        PLUMB_MAX_NEW_TOKENS="32",
        HF_HUB_OFFLINE="1",
    )
    store_settings = Settings(_env_file=None, data_dir=home / "seed", dynamodb_endpoint=dynamo_local.endpoint,
                              table_prefix=env["PLUMB_TABLE_PREFIX"])
    create_tables(store_settings)
    seed_feedback(store_settings)
    (home / "data").mkdir()
    (home / "data" / "models").symlink_to(shared_models_dir, target_is_directory=True)
    os.chdir(home)
    index = EmbeddedIndex(home / "data" / "index", embedder.dimension)
    ingest_files(find_files(write_samples(home / "samples")), index, embedder, make_splitter(embedder, 200, 40))
    index.close()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_responds(url + "/_stcore/health", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Page:
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()


def ask(page: Page, question: str) -> None:
    page.get_by_placeholder("Ask about the documents").fill(question)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Answered by SmolLM2-135M-Instruct")).to_be_visible(timeout=120_000)


def test_ask_and_see_streamed_answer_with_page_citation(page: Page, app_url: str):
    page.goto(f"{app_url}/?user=alice")
    ask(page, "What is the basic design wind speed?")
    expect(page.get_by_text("[1] design-criteria.pdf – page 3")).to_be_visible()
    page.get_by_text("[1] design-criteria.pdf – page 3").click()
    expect(page.get_by_text("The basic design wind speed is 120 mph", exact=False).first).to_be_visible()


def test_strongly_disagree_with_note_and_correction_survives_a_reload(page: Page, app_url: str):
    page.goto(f"{app_url}/?user=bob")
    ask(page, "How long must liquid-containing structures be wet cured?")
    page.get_by_test_id("stFeedback").locator("button").first.click()
    expect(page.get_by_text("Your rating: strongly disagree")).to_be_visible()
    page.get_by_role("textbox", name="Note (optional)").fill("This is in section 03 30 00, part 3.2.")
    page.get_by_role("textbox", name="Corrected answer").fill("Liquid-containing structures are wet cured for 14 days.")
    page.get_by_role("textbox", name="Corrected answer").blur()
    page.get_by_role("button", name="Save feedback").click()
    expect(page.get_by_text("Thank you, your feedback is saved.")).to_be_visible(timeout=30_000)
    page.reload()
    expect(page.get_by_text("Saved feedback (version 1): strongly disagree")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Note: This is in section 03 30 00, part 3.2.")).to_be_visible()
    expect(page.get_by_text("Correction: Liquid-containing structures are wet cured for 14 days.")).to_be_visible()


def test_admin_exports_and_downloads(page: Page, app_url: str, tmp_path: Path):
    page.goto(f"{app_url}/admin?user=admin")
    expect(page.get_by_role("button", name="Export feedback")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Export feedback").click()
    expect(page.get_by_text(re.compile(r"Exported \d+ feedback items"))).to_be_visible(timeout=60_000)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the export (zip)").click()
    archive = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(archive)
    names = zipfile.ZipFile(archive).namelist()
    assert any(name.endswith("manifest.json") for name in names)
    assert any("sft" in name for name in names)


def test_non_admin_gets_no_admin_page(page: Page, app_url: str):
    page.goto(f"{app_url}/admin?user=mallory")
    expect(page.get_by_placeholder("Ask about the documents")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Export feedback")).to_have_count(0)
