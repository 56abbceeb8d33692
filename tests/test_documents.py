"""Reading documents into pages: page numbers as a reader sees them, and clear refusals."""

from pathlib import Path

import pytest

from pipeline.documents import find_files, read_pages, source_name
from pipeline.errors import IngestError
from tests.documents_factory import write_encrypted_pdf, write_pdf


def test_pdf_pages_are_numbered_from_one(tmp_path: Path):
    pdf = write_pdf(tmp_path / "criteria.pdf", ["Scope of work.", "Wind speed is 120 mph.", "Snow load is 25 psf."])
    pages = read_pages(pdf)
    assert [page.page for page in pages] == [1, 2, 3]
    assert "120 mph" in pages[1].text
    assert pages[0].source == "criteria.pdf"


def test_blank_pdf_pages_are_dropped_but_numbering_is_kept(tmp_path: Path):
    pdf = write_pdf(tmp_path / "gaps.pdf", ["First page.", "", "Third page."])
    assert [page.page for page in read_pages(pdf)] == [1, 3]


def test_markdown_html_and_text(tmp_path: Path):
    (tmp_path / "spec.md").write_text("# Section 03 30 00\n\nCure for 7 days.\n", encoding="utf-8")
    (tmp_path / "proc.html").write_text("<html><body><h1>Review</h1><p>Allow 14 days.</p><script>x()</script></body></html>")
    (tmp_path / "notes.txt").write_text("page one\fpage two", encoding="utf-8")
    assert read_pages(tmp_path / "spec.md")[0].text.startswith("# Section 03 30 00")
    html = read_pages(tmp_path / "proc.html")[0]
    assert "Allow 14 days." in html.text and html.page == 1
    assert [(p.page, p.text) for p in read_pages(tmp_path / "notes.txt")] == [(1, "page one"), (2, "page two")]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "holds no text"),
        ("blank.txt", b"  \n\n ", "holds no text"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "cannot be read"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "cannot be read"),
    ],
)
def test_unreadable_files_are_refused_by_name(tmp_path: Path, name: str, content: bytes, reason: str):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(IngestError, match=f"{name}.*{reason}"):
        read_pages(tmp_path / name)


def test_encrypted_pdf_is_refused(tmp_path: Path):
    plain = write_pdf(tmp_path / "plain.pdf", ["Confidential clause."])
    locked = write_encrypted_pdf(tmp_path / "locked.pdf", plain)
    with pytest.raises(IngestError, match="locked.pdf.*encrypted"):
        read_pages(locked)


def test_find_files_recurses_and_reports_missing_paths(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.md").write_text("deep")
    (tmp_path / "a" / "image.png").write_bytes(b"\x89PNG")
    assert find_files([tmp_path / "a"]) == [tmp_path / "a" / "b" / "deep.md"]
    with pytest.raises(IngestError, match="Not found: .*nope"):
        find_files([tmp_path / "nope"])


def test_source_name_is_the_same_however_the_path_is_given(tmp_path: Path):
    (tmp_path / "doc.md").write_text("x")
    assert source_name(Path("doc.md")) == source_name(tmp_path / "doc.md") == "doc.md"
