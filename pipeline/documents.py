"""Reading documents into pages of text, the unit a citation points at.

PDF pages are numbered from 1 as a reader sees them in a viewer, and carry the label the viewer
shows as well (a PDF's own page labels: "iv" in front matter in roman numerals, "1" on the third
page). Markdown, HTML and plain text have no pages of their own, so they are page 1, except that a
form feed in plain text starts a new page (the way printers and many text exports mark page breaks).
Markdown and HTML (which `html_text` turns into Markdown) are cut into sections instead, each
knowing the headings it falls under (`sections.py`), so they are cited by section.

Every format's text goes through `normalise` (ligatures, soft hyphens, control characters, words
hyphenated across lines) and HTML through `html_text` (only what a browser shows). Text files are
read as UTF-8 when they are UTF-8, otherwise in the encoding detected (see `_decode`); an HTML page's
own charset declaration wins. A file whose name is not UTF-8 is refused (and so skipped by ingestion)
rather than indexed under a name no citation, terminal or `--delete` could show faithfully. PDF pages
that draw an image but hold no text are scans: named in a note, or read by OCR on request (`ocr.py`).
"""

import codecs
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from bs4.dammit import EncodingDetector
from charset_normalizer import from_bytes
from pypdf import PageObject, PdfReader
from pypdf.errors import PdfReadError

from pipeline.errors import IngestError, NoTextError
from pipeline.html_text import html_text
from pipeline.normalise import normalise
from pipeline.ocr import ocr_pages
from pipeline.sections import split_sections

# pypdf logs what it works around in a damaged PDF ("EOF marker not found") as warnings that name no
# file; with logging not configured, Python prints them as bare lines. Ingestion reports a PDF it
# cannot read by name, so pypdf gets the handler that Python's logging guide asks libraries to add:
# its warnings show only where an application configures logging.
logging.getLogger("pypdf").addHandler(logging.NullHandler())

SUFFIXES = {".pdf", ".md", ".markdown", ".txt", ".text", ".html", ".htm"}
BY_SECTION = {".md", ".markdown", ".html", ".htm"}  # formats cited by heading, not page
# Raised whenever reading a format gives different text for the same file, so that ingestion reads
# files again instead of skipping them as unchanged (part of `ingest.file_fingerprint`).
# 2: HTML navigation (<nav>, role="navigation") is no longer text.
# 3: HTML processing instructions (an XHTML page's <?xml ...?>) and CDATA sections are no longer text.
# 4: DocBook's page navigation (div.navheader, div.navfooter) is no longer text.
# 5: in-page tables of contents and page footers are no longer text; headings in boxed asides are
#    not section headings.
READER_VERSION = 5


@dataclass(frozen=True)
class Page:
    """Text that one citation points at: a PDF or text page, or a section of a Markdown or HTML page.

    `label` is the page's printed label for PDFs (the number when the file declares no labels),
    "" for other formats; `section` is the heading path of a Markdown or HTML section, "" otherwise
    and for text before the first heading."""

    source: str
    page: int
    text: str
    label: str = ""
    section: str = ""


@dataclass(frozen=True)
class Document:
    """A document's non-empty pages, and notes for the reader of the ingest summary."""

    pages: list[Page]
    notes: list[str]


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest and its source name: the name citations show and `--delete` takes (an
    `ingest.DocumentFile`, as `s3_documents.S3Document` is)."""

    path: Path
    source: str

    def version(self) -> str:
        """The SHA-256 of the file's bytes, in hex; OSError when it cannot be read."""
        with self.path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()

    def read(self, ocr: bool) -> Document:
        return read_document(self.path, ocr, self.source)

    def data(self) -> bytes:
        return self.path.read_bytes()


def find_files(paths: list[Path], collection: str = "") -> list[SourceFile]:
    """Every document under `paths` with its source name. A folder is searched recursively for known
    types (hidden files and folders left out) and its files are named by their path below it
    (`docs/` gives `prices.md`, `sub/x.md`); a file given alone is named by its file name. With
    `collection`, names start with it (`specs/prices.md`). So a name never depends on the working
    directory or on how the path was written. IngestError when a path is missing or two different
    files would get one name."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise IngestError(f"Not found: {', '.join(missing)}. Check the paths and try again.")
    collection = collection.strip("/")
    prefix = f"{collection}/" if collection else ""
    named: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            below = [(p.relative_to(path), p) for p in found]
            pairs = [(prefix + name.as_posix(), p) for name, p in below if not _hidden(name)]
        else:
            pairs = [(prefix + path.name, path)]
        for source, file in pairs:
            if source in named and named[source].resolve() != file.resolve():
                raise IngestError(
                    f"{named[source]} and {file} would both be named {source!r}: ingest them in separate runs "
                    "with different --collection names."
                )
            named[source] = file
    return [SourceFile(path, source) for source, path in named.items()]


def _hidden(name: Path) -> bool:
    """Whether a file found in a folder is hidden or lies in a hidden folder (a name starting with a
    dot): left out, as ripgrep and most indexers do, so `.git` or Plumbline's own `.plumb` is never indexed."""
    return any(part.startswith(".") for part in name.parts)


def read_pages(path: Path) -> list[Page]:
    """The non-empty pages of one document (`read_document` without its notes)."""
    return read_document(path).pages


def read_document(path: Path, ocr: bool = False, source: str = "") -> Document:
    """The non-empty pages of one document, cited as `source` (default: the file name; see
    `find_files`). PDF pages that draw an image but hold no text (scans without a text layer) are
    read by OCR when `ocr` is set, else named in a note; a note also names the pages OCR read.
    IngestError when the document cannot be read or its name is not UTF-8; NoTextError, one of
    them, when it was read and holds no text."""
    source = _utf8(source or path.name)
    try:
        texts, pictured, labels = _raw_texts(path, source)
        texts = [_tidy(normalise(text)) for text in texts]
        without_text = [number for number in pictured if not texts[number - 1]]
        if ocr and without_text:
            for number, text in ocr_pages(path, without_text).items():
                texts[number - 1] = _tidy(normalise(text))
    except (OSError, PdfReadError, ValueError) as exc:
        raise IngestError(f"{source}: cannot be read ({exc}).") from exc
    pages = [Page(source, number, text, label) for number, (text, label) in enumerate(zip(texts, labels), 1) if text]
    if path.suffix.lower() in BY_SECTION:
        pages = _sections(pages)
    notes = _scan_notes(source, without_text, ocr)
    if not pages and without_text and not ocr:
        raise NoTextError(notes[0])
    if not pages:
        raise NoTextError(f"{source}: holds no text (empty, or a PDF without a text layer).")
    return Document(pages, notes)


def _raw_texts(path: Path, source: str) -> tuple[list[str], list[int], list[str]]:
    """The text of each page as extracted, the numbers of the PDF pages that draw images, and
    each page's printed label ("" where the format has none)."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _pdf_pages(path, source)
    if suffix in {".html", ".htm"}:
        return [html_text(_decode_html(path.read_bytes()))], [], [""]
    if suffix in SUFFIXES:
        texts = _decode(path.read_bytes()).split("\f")
        return texts, [], [""] * len(texts)
    raise IngestError(f"{source}: unsupported file type {suffix!r} (PDF, Markdown, HTML and text are read).")


def _utf8(source: str) -> str:
    """`source` itself; IngestError, naming it with its odd bytes escaped, when it is not UTF-8
    (Python keeps such bytes of a file name as lone surrogates, which no index, terminal or JSON can carry)."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        shown = source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise IngestError(f"{shown}: the file name is not UTF-8; rename the file and ingest it again.") from None
    return source


def _scan_notes(source: str, without_text: list[int], ocr: bool) -> list[str]:
    """The summary's note on the pages that have no text layer, if any."""
    if not without_text:
        return []
    if ocr:
        return [f"{source}: {_page_list(without_text)} read by OCR."]
    return [f"{source}: no text layer on {_page_list(without_text)} (scanned?); `--ocr` reads them."]


def _page_list(numbers: list[int]) -> str:
    """'page 2' or 'pages 2, 3'."""
    return f"page {numbers[0]}" if len(numbers) == 1 else f"pages {', '.join(map(str, numbers))}"


def _decode(data: bytes) -> str:
    """The text of a file's bytes: UTF-8 when they are UTF-8 (a byte-order mark is removed later by
    `normalise`), else the encoding charset-normalizer detects. Windows-1252 is taken when it reads
    the bytes as cleanly and as much like a language as the first guess: on short Western text (one
    "é" or "°") the detector cannot tell Windows-1252 from Windows-1250 or a CJK code page, and
    Windows-1252 (printable Latin-1 plus curly quotes and dashes) is what Western office software
    writes. ValueError when no encoding gives text (a binary file)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise ValueError("not text in any known encoding")
    western = from_bytes(data, cp_isolation=["cp1252"]).best()
    if western is not None and western.chaos <= best.chaos and western.coherence >= best.coherence:
        return str(western)
    return str(best)


# Browsers read pages labelled Latin-1 or ASCII as Windows-1252 (WHATWG Encoding Standard), and such
# pages often hold its curly quotes and dashes.
_READ_AS_WINDOWS_1252 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "ascii", "us-ascii"}


def _decode_html(data: bytes) -> str:
    """A page's text in the charset its <meta> or XML declaration names, else as `_decode` finds."""
    declared = EncodingDetector.find_declared_encoding(data, is_html=True)
    if declared and not data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("cp1252" if declared in _READ_AS_WINDOWS_1252 else declared)
        except (LookupError, UnicodeDecodeError):
            pass
    return _decode(data)


def _pdf_pages(path: Path, source: str) -> tuple[list[str], list[int], list[str]]:
    """Each page's text, the numbers of the pages that draw images or forms (a scan does), and each
    page's label as a viewer shows it (pypdf reads the /PageLabels tree; the number without one)."""
    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise IngestError(f"{source}: is encrypted; save an unprotected copy and ingest that.")
    texts = [page.extract_text() or "" for page in reader.pages]
    pictured = [number for number, page in enumerate(reader.pages, start=1) if _draws_objects(page)]
    return texts, pictured, list(reader.page_labels)


def _sections(pages: list[Page]) -> list[Page]:
    """Each page cut into its Markdown sections, each knowing its heading path."""
    return [
        Page(page.source, page.page, text, page.label, section)
        for page in pages
        for section, text in split_sections(page.text)
    ]


def _draws_objects(page: PageObject) -> bool:
    resources = page.get("/Resources") or {}
    return bool(resources.get("/XObject"))


def _tidy(text: str) -> str:
    """Collapse runs of blank lines and trailing spaces that PDF and HTML extraction leave behind."""
    lines = [line.rstrip() for line in text.splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip()
