"""The app's own addresses of cited pages: the document page (`app/document_page.py`) opened on one
cited passage, named by its chunk id alone, so a request never names a file."""

from urllib.parse import urlencode

import streamlit as st

from app import services
from pipeline.records import Citation

DOCUMENT_PAGE = "document"


def page_address(citation: Citation) -> str | None:
    """The relative address of the page that shows `citation`, or None for a citation stored
    without a chunk id. In dev mode the user's name travels along, as it does in every address
    there (`app/identity.py`), so the page opened in a new tab knows who asks."""
    if not citation.chunk_id:
        return None
    params = {"chunk": citation.chunk_id}
    if services.settings().dev_mode and (user := st.query_params.get("user")):
        params["user"] = user
    return f"{DOCUMENT_PAGE}?{urlencode(params)}"


def citation_addresses(citations: list[Citation]) -> dict[int, str]:
    """Passage number (from 1, as the prompt numbers them) → its page's address."""
    return {number: address for number, citation in enumerate(citations, start=1) if (address := page_address(citation))}
