"""The page a citation opens: for a PDF the cited page as an image drawn on the server with the
cited passage highlighted and a link that opens the original in the browser's viewer at that page,
for Markdown and HTML the cited section as text with the passage marked; and a download of the
original document.

The address names one cited passage by its chunk id (`app/citation_links.py`) and nothing else: the
index gives the passage's document, page and section, and the store of originals
(`pipeline/originals.py`) the document's file, so no part of a request ever becomes a path. The page
runs only after `app/main.py` has identified the user, so documents are shown only to signed-in users.
"""

import mimetypes
from html import escape
from pathlib import Path

import streamlit as st
from streamlit import runtime

from app import services
from app.literal import literal
from pipeline.documents import read_document
from pipeline.errors import PlumbError
from pipeline.index import Chunk
from pipeline.originals import Original
from pipeline.page_image import render_page
from pipeline.records import Citation

GONE = (
    "This passage is no longer in the index: its document was changed or removed since the answer "
    "was given. Ask again to cite the current text."
)


def document_page() -> None:
    chunk = _cited_chunk(st.query_params.get("chunk", ""))
    citation = Citation(source=chunk.source, page=chunk.page, page_label=chunk.page_label, section=chunk.section,
                        passage=chunk.text, score=0.0)
    st.title(literal(citation.label()))
    original = services.originals().get(chunk.source)
    if original is None:
        st.warning(f"The original of {chunk.source} is not stored here (it was ingested before originals were "
                   "kept): ingest it again to open it. The cited passage:")
        st.text(chunk.text)
        return
    try:
        if original.suffix == ".pdf":
            _pdf_page(original.path, chunk)
            _viewer_link(original, chunk.page)
        else:
            st.html(_section_html(str(original.path), chunk.source, chunk.page, chunk.section, chunk.text))
    except PlumbError as exc:
        st.error(str(exc))
    st.download_button(f"Download {original.file_name}", data=original.path.read_bytes(), file_name=original.file_name,
                       mime=mimetypes.guess_type(original.file_name)[0] or "application/octet-stream",
                       icon=":material/download:", on_click="ignore")


def _cited_chunk(chunk_id: str) -> Chunk:
    """The indexed passage the address names; otherwise says why there is none and stops."""
    if not chunk_id:
        st.info("Open a document from a citation under an answer.")
        st.stop()
    found = services.index().get([chunk_id])
    if not found:
        st.warning(GONE)
        st.stop()
    return found[0]


def _pdf_page(path: Path, chunk: Chunk) -> None:
    page = _page_image(str(path), chunk.page, chunk.text)
    if page.highlighted:
        st.caption("The cited passage is highlighted.")
    else:
        st.caption("The cited passage could not be located on the page image; here it is as text:")
        st.text(chunk.text)
    st.image(page.png, caption=f"{Path(chunk.source).name}, PDF page {chunk.page}")


def _viewer_link(original: Original, page: int) -> None:
    """A link that opens the original PDF in the browser's own viewer at the cited page: the file is
    served inline by Streamlit's media endpoint (under a name made from a digest of its bytes, for
    as long as this page is open) and the address ends in `#page=N`, the open parameter of RFC 8118
    that Chromium's, Firefox's and Safari's viewers honour. The address is relative, so it holds
    under a `server.baseUrlPath` too. Without a Streamlit runtime (a script run bare) no link is made."""
    if not runtime.exists():
        return
    address = runtime.get_instance().media_file_mgr.add(str(original.path), "application/pdf", "plumb-original-pdf")
    st.link_button(f"Open {original.file_name} at page {page}", f"{address.lstrip('/')}#page={page}",
                   icon=":material/picture_as_pdf:")


@st.cache_data(max_entries=64, show_spinner="Drawing the page…")
def _page_image(path: str, page: int, passage: str):
    """Cached by the stored file's path, which is named by its bytes' digest, so a changed
    document never shows an old drawing."""
    return render_page(Path(path), page, passage)


@st.cache_data(max_entries=64, show_spinner="Reading the section…")
def _section_html(path: str, source: str, page: int, section: str, passage: str) -> str:
    """The cited section (or, for plain text, page) as preformatted text, the passage marked."""
    pages = read_document(Path(path), source=source).pages
    text = next((p.text for p in pages if p.page == page and p.section == section), passage)
    start = text.find(passage)
    if start < 0:
        body = escape(text)
    else:
        end = start + len(passage)
        body = f"{escape(text[:start])}<mark>{escape(passage)}</mark>{escape(text[end:])}"
    return f'<pre style="white-space:pre-wrap;font-family:inherit">{body}</pre>'
