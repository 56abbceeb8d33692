"""Reading documents into pages: page numbers as a reader sees them, and clear refusals."""

import os
import re
from pathlib import Path

import pytest

from pipeline.documents import SourceFile, find_files, read_document, read_pages
from pipeline.errors import IngestError
from tests.documents_factory import (
    LIGATURE_CODES,
    write_encrypted_pdf,
    write_labelled_pdf,
    write_ligature_pdf,
    write_pdf,
    write_scanned_pdf,
)


def test_pdf_pages_are_numbered_from_one(tmp_path: Path):
    pdf = write_pdf(tmp_path / "criteria.pdf", ["Scope of work.", "Wind speed is 120 mph.", "Snow load is 25 psf."])
    pages = read_pages(pdf)
    assert [page.page for page in pages] == [1, 2, 3]
    assert "120 mph" in pages[1].text
    assert pages[0].source == "criteria.pdf"


def test_blank_pdf_pages_are_dropped_but_numbering_is_kept(tmp_path: Path):
    pdf = write_pdf(tmp_path / "gaps.pdf", ["First page.", "", "Third page."])
    assert [page.page for page in read_pages(pdf)] == [1, 3]


def test_pdf_pages_carry_their_printed_labels(tmp_path: Path):
    pdf = write_labelled_pdf(tmp_path / "paper.pdf", ["Title page.", "", "Scope of work.", "Wind speed is 120 mph."])
    pages = read_pages(pdf)
    assert [(page.page, page.label) for page in pages] == [(1, "i"), (3, "1"), (4, "2")]  # page ii is blank
    assert "120 mph" in pages[2].text and pages[2].section == ""


def test_pdf_pages_without_labels_are_labelled_by_their_numbers(tmp_path: Path):
    pdf = write_pdf(tmp_path / "plain.pdf", ["One.", "Two."])
    assert [(page.page, page.label) for page in read_pages(pdf)] == [(1, "1"), (2, "2")]


SECTIONED = """Issued for construction.

# Concrete specification

## 3 Execution

### 3.2 *Curing*

Keep surfaces moist for 7 days.

```sh
# not a heading: a comment in a fenced block
cure --days 7
```

Loads
=====

## Wind
Basic wind speed 120 mph.
"""


def test_markdown_is_cut_into_sections_that_know_their_heading_path(tmp_path: Path):
    (tmp_path / "spec.md").write_text(SECTIONED, encoding="utf-8")
    pages = read_pages(tmp_path / "spec.md")
    assert [(page.page, page.label, page.section) for page in pages] == [
        (1, "", ""),
        (1, "", "Concrete specification › 3 Execution › 3.2 Curing"),
        (1, "", "Loads › Wind"),
    ]
    assert pages[0].text == "Issued for construction."
    # Headings with no text of their own stay with the text that follows; a fenced comment is text.
    assert pages[1].text.startswith("# Concrete specification\n\n## 3 Execution\n\n### 3.2 *Curing*\n\nKeep")
    assert pages[1].text.endswith("cure --days 7\n```")
    assert pages[2].text == "Loads\n=====\n\n## Wind\nBasic wind speed 120 mph."


def test_html_is_cut_into_sections_by_its_headings(tmp_path: Path):
    html = (
        "<html><body><p>Issued 2026.</p><h1>Submittals</h1><h2>Review</h2><p>Allow 14 days.</p>"
        "<h2>Resubmittal</h2><p>Allow 7 days.</p><ul><li><h3>Not a section</h3>In a list.</li></ul></body></html>"
    )
    (tmp_path / "proc.html").write_text(html, encoding="utf-8")
    pages = read_pages(tmp_path / "proc.html")
    assert [(page.page, page.section) for page in pages] == [
        (1, ""),
        (1, "Submittals › Review"),
        (1, "Submittals › Resubmittal"),
    ]
    assert "Allow 7 days." in pages[2].text and "In a list." in pages[2].text


def test_markdown_html_and_text(tmp_path: Path):
    (tmp_path / "spec.md").write_text("# Section 03 30 00\n\nCure for 7 days.\n", encoding="utf-8")
    (tmp_path / "proc.html").write_text("<html><body><h1>Review</h1><p>Allow 14 days.</p><script>x()</script></body></html>")
    (tmp_path / "notes.txt").write_text("page one\fpage two", encoding="utf-8")
    assert read_pages(tmp_path / "spec.md")[0].text.startswith("# Section 03 30 00")
    html = read_pages(tmp_path / "proc.html")[0]
    assert "Allow 14 days." in html.text and html.page == 1
    assert [(p.page, p.text, p.label, p.section) for p in read_pages(tmp_path / "notes.txt")] == [
        (1, "page one", "", ""),
        (2, "page two", "", ""),
    ]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "holds no text"),
        ("blank.txt", b"  \n\n ", "holds no text"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "cannot be read"),
        ("binary.txt", bytes(range(256)) * 4, "cannot be read"),
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
    assert find_files([tmp_path / "a"]) == [SourceFile(tmp_path / "a" / "b" / "deep.md", "b/deep.md")]
    with pytest.raises(IngestError, match="Not found: .*nope"):
        find_files([tmp_path / "nope"])


def test_names_do_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch):
    """A folder's files are named by their path below it, a file given alone by its file name, after
    the collection if one is given; hidden files and folders (such as `.plumb`) are left out."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / ".plumb" / "samples").mkdir(parents=True)
    for name in ("prices.md", "sub/x.md", ".plumb/samples/design.md", ".notes.md"):
        (docs / name).write_text(name)

    def names(paths: list[Path], collection: str = "") -> list[str]:
        return [file.source for file in find_files(paths, collection)]

    assert names([Path("docs")]) == names([docs]) == names([Path("docs/sub/../")]) == ["prices.md", "sub/x.md"]
    monkeypatch.chdir(docs / "sub")
    assert names([Path("..")]) == names([Path("../../docs/")]) == ["prices.md", "sub/x.md"]
    assert names([Path("../prices.md")]) == names([docs / "prices.md"]) == ["prices.md"]
    assert names([Path(".")], "specs/") == names([docs / "sub" / "x.md"], "/specs") == ["specs/x.md"]
    assert names([Path("..")], "specs") == ["specs/prices.md", "specs/sub/x.md"]


def test_two_files_that_would_share_a_name_are_refused(tmp_path: Path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.md").write_text(folder)
    with pytest.raises(IngestError, match="a/x.md and .*b/x.md would both be named 'x.md'.*--collection"):
        find_files([tmp_path / "a" / "x.md", tmp_path / "b" / "x.md"])
    assert find_files([tmp_path / "a", tmp_path / "a" / "x.md"]) == [SourceFile(tmp_path / "a" / "x.md", "x.md")]


# One normalisation for every format: each file below holds the faults its format meets in practice.
POSTGRESQL_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")  # Debian's python3.11-doc, where the benchmarks read it
CLEAN = "The office has a fire door; reinforcement is checked by the inspector."
FAULTY = "The o\ufb03ce has a \ufb01re door;\x00 rein\u00adforcement\x07 is checked by the in-\r\nspector.\x9b"


@pytest.mark.parametrize("name", ["notes.txt", "spec.md"])
def test_text_and_markdown_are_normalised(tmp_path: Path, name: str):
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + FAULTY.encode("utf-8"))
    assert read_pages(tmp_path / name)[0].text == CLEAN


def test_html_is_normalised(tmp_path: Path):
    """A line break in HTML source is a space to a browser, never a break inside a word, so this page
    has no hyphenated line end; its other faults are those of the text files."""
    page = "<html><body><p>" + FAULTY.replace("in-\r\n", "in") + "</p></body></html>"
    (tmp_path / "page.html").write_bytes(b"\xef\xbb\xbf" + page.encode("utf-8"))
    assert read_pages(tmp_path / "page.html")[0].text == CLEAN


def test_pdf_ligatures_and_broken_words_are_normalised(tmp_path: Path):
    fi, ffi = LIGATURE_CODES["fi"], LIGATURE_CODES["ffi"]
    lines = [b"The o" + ffi + b"ce has a " + fi + b"re door; rein-", b"forcement is checked by the inspector."]
    pdf = write_ligature_pdf(tmp_path / "typeset.pdf", lines)
    assert read_pages(pdf)[0].text == CLEAN


HIDDEN_PARTS = """<!doctype html>
<html><head><title>Page title text</title><style>p { color: red }</style>
<script>var note = "script text";</script></head>
<body>
<noscript>Enable JavaScript to see this page.</noscript>
<h1>Beam Schedule</h1>
<p hidden>Hidden attribute text.</p>
<div style="color: red; display: none">Display none text.</div>
<span style="visibility:hidden">Visibility hidden text.</span>
<template><p>Template text.</p></template>
<script type="application/ld+json">{"@type": "Article"}</script>
<p aria-hidden="true">Decorative but shown.</p>
<h2>Connections<a class="headerlink" href="#connections" title="Link to this heading">¶</a></h2>
<p>End plates are shop
   welded. See <a href="https://example.com/details">the details</a>.</p>
<table>
  <tr><th>Mark</th><th>Section</th><th>End plate</th></tr>
  <tr><td>B1</td><td>W12x26</td><td><p>12 mm</p></td></tr>
  <tr><td>B2</td><td>W14x30</td><td>16 mm</td></tr>
</table>
</body></html>"""


def test_html_gives_only_what_a_browser_shows_with_table_rows(tmp_path: Path):
    (tmp_path / "schedule.html").write_text(HIDDEN_PARTS, encoding="utf-8")
    text = "\n".join(page.text for page in read_pages(tmp_path / "schedule.html"))  # one page per section
    for hidden in ("Page title", "color: red", "script text", "JavaScript", "Hidden attribute", "Display none",
                   "Visibility hidden", "Template text", "Article", "example.com"):
        assert hidden not in text
    lines = text.splitlines()
    assert lines[0] == "# Beam Schedule"
    assert "Decorative but shown." in lines
    assert "## Connections" in lines
    assert "End plates are shop welded. See the details." in lines
    assert "| Mark | Section | End plate |" in lines
    assert "| B1 | W12x26 | 12 mm |" in lines
    assert "| B2 | W14x30 | 16 mm |" in lines


SPHINX_PAGE = """<html><body>
<div class="mobile-nav"><nav class="nav-content" role="navigation"><a href="../index.html">Python 3.11 Docs</a></nav></div>
<div class="related" role="navigation" aria-label="related navigation"><a href="modules.html">next</a> | previous</div>
<div class="body" role="main"><section><h1>12. Virtual Environments</h1><p>Create one with venv.</p></section></div>
<div class="sphinxsidebar" role="navigation"><h3>Next topic</h3><p>13. What Now?</p><h3>This Page</h3></div>
<nav><ul><li>Table of contents</li></ul></nav>
<div class="footer">&copy; Copyright 2001-2026, Python Software Foundation. Created using Sphinx 5.3.0.</div>
<footer role="contentinfo">Found a bug?</footer><div role="contentinfo">Last updated on Nov 30, 2026.</div>
</body></html>"""


def test_html_site_navigation_is_not_page_text(tmp_path: Path):
    (tmp_path / "venv.html").write_text(SPHINX_PAGE, encoding="utf-8")
    text = "\n".join(page.text for page in read_pages(tmp_path / "venv.html"))
    assert text.splitlines() == ["# 12. Virtual Environments", "", "Create one with venv."]


XHTML_PAGE = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Part III</title></head><body>
<!-- generated by DocBook --><?php echo "hi"; ?>
<div class="navheader"><table width="100%"><tr><th colspan="3">Part III. Server Administration</th></tr>
<tr><td><a accesskey="p" href="x.html">Prev</a></td><td><a accesskey="u" href="index.html">Up</a></td><td><a accesskey="n" href="y.html">Next</a></td></tr></table><hr /></div>
<p>Before the first heading.</p><![CDATA[ raw data ]]>
<h1>Server Administration</h1><p>This part covers installing the server.</p>
<div class="navfooter"><hr /><table><tr><td>Prev</td><td>Home</td><td>Next</td></tr></table></div>
</body></html>"""


def test_xhtml_declarations_doctype_comments_and_docbook_navigation_are_not_text(tmp_path: Path):
    """What PostgreSQL's XHTML pages start with never shows in a browser, so never in a chunk; nor
    does the Prev / Up / Next table DocBook puts above and below each page."""
    (tmp_path / "admin.html").write_text(XHTML_PAGE, encoding="utf-8")
    pages = read_pages(tmp_path / "admin.html")
    assert [(page.section, page.text) for page in pages] == [
        ("", "Before the first heading."),
        ("Server Administration", "# Server Administration\n\nThis part covers installing the server."),
    ]


DOCBOOK_BOXES = """<html><body><div class="sect1"><div class="titlepage"><h2 class="title">8.1. Numeric Types</h2></div>
<div class="toc"><dl class="toc"><dt><a href="#int">8.1.1. Integer Types</a></dt><dt><a href="#serial">8.1.2. Serial Types</a></dt></dl></div>
<p>Numeric types are integers and decimals.</p>
<div class="sect2"><h3 class="title">8.1.1. Integer Types</h3><p>smallint takes 2 bytes.</p>
<div class="note"><h3 class="title">Note</h3><p>SQL names only integer and smallint.</p></div>
<p>bigint takes 8 bytes.</p></div>
<div class="sect2"><h3 class="title">8.1.2. Serial Types</h3><div class="warning"><h3 class="title">Warning</h3><p>Serial is not a true type.</p></div>
<aside><h4>Aside</h4><p>Sequences back them.</p></aside></div></div></body></html>"""


def test_a_heading_inside_a_note_box_titles_the_box_not_a_section(tmp_path: Path):
    """DocBook titles its note, tip and warning boxes with <h3>s: taken as headings, the text after
    each box was cited as '... › Note', and a section that opens with a box was lost. Nor is the
    section's own table of contents page text."""
    (tmp_path / "datatype.html").write_text(DOCBOOK_BOXES, encoding="utf-8")
    pages = read_pages(tmp_path / "datatype.html")
    assert [(page.section, page.text) for page in pages] == [
        ("8.1. Numeric Types", "## 8.1. Numeric Types\n\nNumeric types are integers and decimals."),
        (
            "8.1. Numeric Types › 8.1.1. Integer Types",
            "### 8.1.1. Integer Types\n\nsmallint takes 2 bytes.\n\n**Note**\n\nSQL names only integer and smallint."
            "\n\nbigint takes 8 bytes.",
        ),
        (
            "8.1. Numeric Types › 8.1.2. Serial Types",
            "### 8.1.2. Serial Types\n\n**Warning**\n\nSerial is not a true type.\n\n**Aside**\n\nSequences back them.",
        ),
    ]


@pytest.mark.skipif(not POSTGRESQL_DOCS.exists(), reason="Debian's postgresql-doc-15 is not installed")
def test_a_real_docbook_page_keeps_its_sections_past_its_notes():
    sections = [page.section for page in read_pages(POSTGRESQL_DOCS / "datatype-numeric.html")]
    assert sections == ["8.1. Numeric Types"] + [
        f"8.1. Numeric Types › 8.1.{n}. {title}"
        for n, title in enumerate(["Integer Types", "Arbitrary Precision Numbers", "Floating-Point Types", "Serial Types"], 1)
    ]


@pytest.mark.skipif(not PYTHON_DOCS.exists(), reason="Debian's python3.11-doc is not installed")
def test_a_real_sphinx_page_gives_its_content_without_navigation():
    text = "\n".join(page.text for page in read_pages(PYTHON_DOCS / "tutorial" / "venv.html"))
    for chrome in ("Next topic", "Previous topic", "This Page", "Navigation", "Table of Contents", "Copyright", "Sphinx"):
        assert chrome not in text
    assert "python -m venv" in text.replace("python3 -m venv", "python -m venv")


@pytest.mark.skipif(not POSTGRESQL_DOCS.exists(), reason="Debian's postgresql-doc-15 is not installed")
def test_a_real_docbook_page_gives_its_content_without_navigation():
    pages = read_pages(POSTGRESQL_DOCS / "sql-select.html")
    text = "\n".join(page.text for page in pages)
    assert "xml version" not in text and "Home" not in text and not re.search(r"\bPrev\b|\bNext\b", text)
    assert pages[0].text == "## SELECT\n\nSELECT, TABLE, WITH — retrieve rows from a table or view"


@pytest.mark.parametrize(
    ("name", "text", "encoding"),
    [
        ("short.txt", "café", "latin-1"),
        ("notes.txt", "The “basic” wind speed – 120 mph, ½ in cover.", "cp1252"),
        ("spec.md", "# Béton\n\nCure à 10 °C pendant 7 jours; façade naïve.", "latin-1"),
        ("ru.txt", "Бетон класса B25, защитный слой 40 мм.", "cp1251"),
    ],
)
def test_legacy_encodings_are_detected(tmp_path: Path, name: str, text: str, encoding: str):
    (tmp_path / name).write_bytes(text.encode(encoding))
    assert read_pages(tmp_path / name)[0].text == text


@pytest.mark.parametrize(
    ("meta", "encoding", "text"),
    [
        ('<meta charset="windows-1252">', "cp1252", "The “basic” wind speed – café"),
        ('<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">', "cp1252", "“Quoted” café"),
        ('<meta charset="koi8-r">', "koi8-r", "Бетон"),
    ],
)
def test_html_is_read_in_its_declared_charset(tmp_path: Path, meta: str, encoding: str, text: str):
    page = f"<html><head>{meta}</head><body><p>{text}</p></body></html>"
    (tmp_path / "page.html").write_bytes(page.encode(encoding))
    assert read_pages(tmp_path / "page.html")[0].text == text


def test_a_file_name_that_is_not_utf8_is_refused_with_its_name_escaped(tmp_path: Path):
    name = os.fsdecode(b"caf\xe9.txt")
    (tmp_path / name).write_text("Menu of the day.", encoding="utf-8")
    with pytest.raises(IngestError, match=r"^caf\\xe9\.txt: the file name is not UTF-8") as refused:
        read_pages(tmp_path / name)
    str(refused.value).encode("utf-8")  # printable anywhere


def test_scanned_pages_are_named_and_blank_ones_are_not(tmp_path: Path):
    pages = ["Cover sheet.", "Pile cap schedule.", "Frost depth is 42 inches.", ""]
    pdf = write_scanned_pdf(tmp_path / "scan.pdf", pages, scanned={2, 3})
    document = read_document(pdf)
    assert [page.page for page in document.pages] == [1]
    assert document.notes == ["scan.pdf: no text layer on pages 2, 3 (scanned?); `--ocr` reads them."]


def test_a_wholly_scanned_pdf_is_refused_by_page(tmp_path: Path):
    pdf = write_scanned_pdf(tmp_path / "scan.pdf", ["Frost depth is 42 inches."], scanned={1})
    with pytest.raises(IngestError, match=r"^scan\.pdf: no text layer on page 1 "):
        read_document(pdf)


def test_ocr_reads_scanned_pages(tmp_path: Path):
    pages = ["Cover sheet.", "The frost depth is 42 inches\nbelow finished grade.", ""]
    pdf = write_scanned_pdf(tmp_path / "scan.pdf", pages, scanned={2, 3})
    document = read_document(pdf, ocr=True)
    assert [page.page for page in document.pages] == [1, 2]
    assert document.pages[1].text == "The frost depth is 42 inches\nbelow finished grade."
    assert document.notes == ["scan.pdf: pages 2, 3 read by OCR."]
