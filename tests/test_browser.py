"""The user's paths in a real browser: Debian's chromium, headless, driving the real app served by
`streamlit run` over the sample documents, the packaged models and DynamoDB Local."""

import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from pipeline.documents import find_files
from pipeline.embeddings import Embedder
from pipeline.feedback import create_tables, make_store
from pipeline.feedback.local_dynamo import free_port
from pipeline.index.embedded import EmbeddedIndex
from pipeline.originals import OriginalStore
from pipeline.ingest import ingest_files, make_splitter
from pipeline.records import Citation, Feedback, Turn
from pipeline.samples import write_samples
from pipeline.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LEAK = "http://127.0.0.1:9/leak.png"  # nothing listens: the test only watches for the browser asking
SITE_NOTES = f"""# Site notes

## Footing rebar `![px]({LEAK}?from=heading)`

Footing rebar is #5 bars at 12 inches on centre each way, with 3 inches of cover to the soil.
"""

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


@contextmanager
def served_app(home: Path, env: dict[str, str]) -> Iterator[str]:
    """The app run by Streamlit in `home` with `env`, on a free port: its URL once it answers."""
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
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # still generating an answer on a busy machine
            process.kill()
            process.wait()


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
    write_samples(home / "samples")
    (home / "samples" / "site-notes.md").write_text(SITE_NOTES)
    ingest_files(find_files([home / "samples"]), index, embedder, make_splitter(embedder, 200, 40),
                 originals=OriginalStore(home / "data" / "originals"))
    index.close()
    with served_app(home, env) as url:
        yield url


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
    box = page.get_by_placeholder("Ask about the documents")
    expect(box).to_be_visible(timeout=120_000)  # the first page of a fresh server loads the models first
    box.fill(question)
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


def test_a_cited_page_opens_with_the_passage_highlighted_and_the_original_to_download(page: Page, app_url: str):
    page.goto(f"{app_url}/?user=dora")
    expect(page.get_by_placeholder("Ask about the documents")).to_be_visible(timeout=120_000)
    ask(page, "What is the basic design wind speed?")
    page.get_by_text("design-criteria.pdf – page 3").first.click()
    link = page.get_by_role("link", name="Open the page").first
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href.startswith("document?chunk=") and "user=dora" in href
    page.goto(f"{app_url}/{href}")
    expect(page.get_by_text("The cited passage is highlighted.")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name="design-criteria.pdf – page 3")).to_be_visible()
    drawn = page.get_by_test_id("stImage").locator("img")
    expect(drawn).to_be_visible(timeout=60_000)
    drawn.evaluate("img => img.decode()")  # rejects unless the served PNG loads and decodes
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download design-criteria.pdf").click()
    assert download_info.value.suggested_filename == "design-criteria.pdf"
    viewer = page.get_by_role("link", name="Open design-criteria.pdf at page 3").get_attribute("href")
    assert re.fullmatch(r"media/[0-9a-f]+\.pdf#page=3", viewer), viewer
    served = page.request.get(f"{app_url}/{viewer}")
    assert served.headers["content-type"] == "application/pdf" and "content-disposition" not in served.headers
    assert served.body().startswith(b"%PDF"), "the original, shown inline so the viewer can open its page"


def test_a_document_page_needs_a_signed_in_user(page: Page, app_url: str):
    page.goto(f"{app_url}/document?chunk=anything")
    expect(page.get_by_role("textbox", name="Your name")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("The cited passage")).to_have_count(0)


def test_restricted_to_one_document_only_its_passages_are_cited(page: Page, app_url: str):
    page.goto(f"{app_url}/?user=erin")
    expect(page.get_by_placeholder("Ask about the documents")).to_be_visible(timeout=120_000)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stMultiSelect").click()
    page.get_by_role("option", name="concrete-spec.md").click()
    page.keyboard.press("Escape")
    ask(page, "What is the basic design wind speed?")
    expect(page.get_by_text("Asked within: concrete-spec.md")).to_be_visible()
    labels = page.get_by_test_id("stExpander").locator("summary").all_inner_texts()
    assert labels and all(re.search(r"\[\d\] concrete-spec\.md", label) for label in labels), labels


def open_menu(page: Page, sidebar, inside) -> None:
    """Open the first conversation's menu. A click that lands while the app is still rerunning after
    an answer is undone by that rerun, so click again until what the menu holds shows."""
    for _ in range(6):
        sidebar.get_by_role("button", name="more_vert icon").first.click()
        try:
            inside.wait_for(state="visible", timeout=5_000)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    expect(inside).to_be_visible()


def test_rename_and_delete_a_conversation(page: Page, app_url: str):
    page.goto(f"{app_url}/?user=frank")
    expect(page.get_by_placeholder("Ask about the documents")).to_be_visible(timeout=120_000)
    ask(page, "What is the frost depth?")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("button", name=re.compile(r"^\d\d \w{3} \d{4} · What is the frost depth\?"))).to_be_visible()
    open_menu(page, sidebar, page.get_by_role("textbox", name="Name"))
    page.get_by_role("textbox", name="Name").fill("Frost")
    page.get_by_role("button", name="Rename").click()
    expect(sidebar.get_by_role("button", name=re.compile(r"\d{4} · Frost$"))).to_be_visible(timeout=30_000)
    open_menu(page, sidebar, page.get_by_role("button", name="Delete…"))
    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("marked as from a deleted conversation")).to_be_visible()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(sidebar.get_by_role("button", name=re.compile(r"\d{4} · Frost$"))).to_have_count(0, timeout=30_000)


def test_the_faces_name_their_level_on_hover_and_a_saved_verdict_steps_aside(page: Page, app_url: str):
    page.goto(f"{app_url}/?user=gina")
    expect(page.get_by_placeholder("Ask about the documents")).to_be_visible(timeout=120_000)
    ask(page, "What is the frost depth?")
    faces = page.get_by_test_id("stFeedback").locator("button")
    # the rating widget is drawn after the answer's caption: on a loaded machine seconds after it
    expect(page.get_by_text("Rate this answer: 😞 strongly disagree · 🙁 disagree")).to_be_visible(timeout=30_000)
    faces.nth(3).hover()
    label = faces.nth(3).evaluate("face => getComputedStyle(face, '::after').content")
    assert label == '"agree"'
    faces.nth(3).click()
    page.get_by_role("button", name="Save feedback").click()
    expect(page.get_by_text("Saved feedback (version 1): agree")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stFeedback")).to_have_count(0)
    page.get_by_role("button", name="Change").click()
    expect(page.get_by_role("button", name="Save feedback")).to_be_visible(timeout=60_000)


def test_a_heading_that_carries_an_image_shows_as_text_and_nothing_is_fetched(page: Page, app_url: str):
    """A document's section heading reaches the citation's label, the feedback form's flags and the
    cited page's title: it shows as written, and the browser asks nothing of any other host."""
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{app_url}/?user=hana")
    expect(page.get_by_placeholder("Ask about the documents")).to_be_visible(timeout=120_000)
    page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").click()
    page.keyboard.type("site-notes")
    page.get_by_role("option", name="site-notes.md").click()
    page.keyboard.press("Escape")
    ask(page, "What rebar is in the footings?")
    label = f"[1] site-notes.md – … › Footing rebar ![px]({LEAK}?from=heading)"
    page.get_by_text(label).click()
    href = page.get_by_role("link", name="Open the section").first.get_attribute("href")
    page.goto(f"{app_url}/{href}")
    expect(page.get_by_role("heading", name=f"site-notes.md – … › Footing rebar ![px]({LEAK}?from=heading)")).to_be_visible(
        timeout=60_000)
    assert page.locator("img[src*='leak']").count() == 0
    elsewhere = [url for url in asked if not url.startswith((app_url, "data:"))]
    assert not elsewhere, elsewhere
