"""Reading documents into pages of text, the unit a citation points at.

PDF pages are numbered from 1 as a reader sees them in a viewer; Markdown, HTML and plain text have
no pages of their own, so they are page 1, except that a form feed in plain text starts a new page
(the way printers and many text exports mark page breaks).
"""

from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from pipeline.errors import IngestError

SUFFIXES = {".pdf", ".md", ".markdown", ".txt", ".text", ".html", ".htm"}


@dataclass(frozen=True)
class Page:
    source: str
    page: int
    text: str


def find_files(paths: list[Path]) -> list[Path]:
    """Every document under `paths`: files as given, folders searched recursively for known types."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise IngestError(f"Not found: {', '.join(missing)}. Check the paths and try again.")
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES))
        else:
            files.append(path)
    return files


def source_name(path: Path) -> str:
    """The name a document is cited and deleted by: relative to the working directory when it lies
    below it, so the same file gets the same name however it was given on the command line."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def read_pages(path: Path) -> list[Page]:
    """The non-empty pages of one document; IngestError when it cannot be read or holds no text."""
    source = source_name(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            texts = _pdf_pages(path)
        elif suffix in {".html", ".htm"}:
            texts = [BeautifulSoup(path.read_bytes(), "html.parser").get_text("\n")]
        elif suffix in SUFFIXES:
            texts = path.read_text(encoding="utf-8").split("\f")
        else:
            raise IngestError(f"{source}: unsupported file type {suffix!r} (PDF, Markdown, HTML and text are read).")
    except (OSError, UnicodeDecodeError, PdfReadError, ValueError) as exc:
        raise IngestError(f"{source}: cannot be read ({exc}).") from exc
    pages = [Page(source, number, _tidy(text)) for number, text in enumerate(texts, start=1)]
    pages = [page for page in pages if page.text]
    if not pages:
        raise IngestError(f"{source}: holds no text (empty, or a scanned PDF without a text layer).")
    return pages


def _pdf_pages(path: Path) -> list[str]:
    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise IngestError(f"{source_name(path)}: is encrypted; save an unprotected copy and ingest that.")
    return [page.extract_text() or "" for page in reader.pages]


def _tidy(text: str) -> str:
    """Collapse runs of blank lines and trailing spaces that PDF and HTML extraction leave behind."""
    lines = [line.rstrip() for line in text.splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip()
