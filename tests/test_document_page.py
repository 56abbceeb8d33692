"""The page a citation opens (AppTest of `app/document_page.py` over the sample documents)."""

import re

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pipeline.wiring import open_originals

pytestmark = pytest.mark.slow


def _document_app():
    from app.document_page import document_page

    document_page()


@pytest.fixture
def open_page(prepared_models, sample_index):
    """Opens the document page on a chunk id, as the address of a citation does."""
    st.cache_resource.clear()

    def opened(chunk_id: str | None) -> AppTest:
        at = AppTest.from_function(_document_app, default_timeout=120)
        if chunk_id is not None:
            at.query_params["chunk"] = chunk_id
        return at.run()

    yield opened
    st.cache_resource.clear()


def chunk_of(index, source: str, words: str):
    return next(chunk for chunk in index.get(list(all_ids(index))) if chunk.source == source and words in chunk.text)


def all_ids(index):
    snapshot = index._current()  # the test reads every id; the app only ever gets one from a citation
    return snapshot.chunk_ids


def test_a_cited_pdf_page_is_drawn_with_the_passage_highlighted_and_the_original_offered(open_page, sample_index):
    chunk = chunk_of(sample_index, "design-criteria.pdf", "basic design wind speed")
    at = open_page(chunk.chunk_id)
    assert not at.exception, at.exception
    assert at.title[0].value == "design\\-criteria\\.pdf – page 3"
    assert "The cited passage is highlighted." in [caption.value for caption in at.caption]
    assert at.image, "the page is shown as an image"
    [download] = at.get("download_button")
    assert download.proto.label == "Download design-criteria.pdf"
    [viewer] = at.get("link_button")
    assert viewer.proto.label == "Open design-criteria.pdf at page 3"
    assert re.fullmatch(r"(mock/)?media/[0-9a-f]+\.pdf#page=3", viewer.proto.url), "relative; the viewer opens the cited page"


def test_a_cited_markdown_section_is_shown_as_text_with_the_passage_marked(open_page, sample_index):
    chunk = chunk_of(sample_index, "concrete-spec.md", "Curing")
    at = open_page(chunk.chunk_id)
    [html] = [h.proto.body for h in at.get("html")]
    assert "<mark>" in html and chunk.section.split(" › ")[-1] in html
    assert not at.image and not at.get("link_button"), "no page to open a viewer at"


def test_a_passage_gone_from_the_index_says_so(open_page):
    at = open_page("0" * 32)
    assert "no longer in the index" in at.warning[0].value and not at.get("download_button")


@pytest.mark.parametrize("address", ["../../../../etc/passwd", "/etc/passwd", "design-criteria.pdf", "originals/files/x.pdf"])
def test_a_path_in_the_address_opens_nothing(open_page, address):
    """The address is looked up as a chunk id in the index, never read as a path or a document's name."""
    at = open_page(address)
    assert "no longer in the index" in at.warning[0].value
    assert not at.get("download_button") and not at.image and not at.get("link_button")


def test_without_a_passage_the_page_says_where_to_open_one(open_page):
    assert "Open a document from a citation" in open_page(None).info[0].value


def test_a_document_whose_original_was_not_kept_shows_the_passage(open_page, sample_index):
    chunk = chunk_of(sample_index, "design-criteria.pdf", "basic design wind speed")
    from pipeline.settings import get_settings

    open_originals(get_settings()).delete("design-criteria.pdf")
    at = open_page(chunk.chunk_id)
    assert "is not stored here" in at.warning[0].value and not at.get("download_button")
