"""A cited PDF page drawn as an image, the passage highlighted where it is found."""

import io
from pathlib import Path

import pytest
from PIL import Image

from pipeline.documents import read_document
from pipeline.errors import PlumbError
from pipeline.page_image import HIGHLIGHT, render_page
from pipeline.samples import write_samples


@pytest.fixture(scope="module")
def pdf(tmp_path_factory) -> Path:
    return next(path for path in write_samples(tmp_path_factory.mktemp("samples")) if path.suffix == ".pdf")


def highlighted_rows(png: bytes) -> list[int]:
    """The pixel rows holding the highlight's yellow."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    yellow = lambda p: p[2] < 180 and p[0] > 230 and p[1] > 200  # noqa: E731 - white paper, yellow wash
    return [y for y in range(0, height, 2) if any(yellow(pixels[x, y]) for x in range(0, width, 4))]


def test_the_cited_passage_is_highlighted_on_its_page(pdf: Path):
    passage = read_document(pdf).pages[2].text
    wind = passage[passage.index("The basic design wind speed") :]
    page = render_page(pdf, 3, wind)
    assert page.highlighted and HIGHLIGHT[:2] == (255, 214)
    rows = highlighted_rows(page.png)
    assert rows and rows[0] < 400, "the highlight starts near the top, where the wind paragraph is"


def test_a_passage_with_other_spacing_and_case_is_still_found(pdf: Path):
    assert render_page(pdf, 3, "THE BASIC   design\nwind speed is 120 mph").highlighted


def test_a_passage_not_on_the_page_draws_the_page_without_highlight(pdf: Path):
    page = render_page(pdf, 1, "The basic design wind speed is 120 mph")
    assert not page.highlighted and not highlighted_rows(page.png)
    assert Image.open(io.BytesIO(page.png)).size == (1224, 1584), "a Letter page at 2 px per point"


def test_a_page_the_document_lacks_is_a_clear_error(pdf: Path):
    with pytest.raises(PlumbError, match="has 6 pages, so it has no page 9"):
        render_page(pdf, 9, "x")


def test_a_file_that_is_no_pdf_is_a_clear_error(tmp_path: Path):
    (tmp_path / "x.pdf").write_text("not a pdf")
    with pytest.raises(PlumbError, match="cannot be read as a PDF"):
        render_page(tmp_path / "x.pdf", 1, "x")


def test_a_passage_whose_first_and_last_lines_the_pdf_holds_elsewhere_is_still_highlighted(pdf: Path):
    """pypdf and PDFium can read a margin note or a running head on opposite sides of a passage's
    first or last line (a LaTeX manual's "tabularx (env.)" beside its first line): the rest of the
    passage is still found and highlighted."""
    passage = read_document(pdf).pages[2].text
    wind = passage[passage.index("The basic design wind speed") :]
    moved = f"A margin note read here by one reader and elsewhere by the other. {wind}\nRunning footer of the design criteria, also read out of place."
    page = render_page(pdf, 3, moved)
    rows, whole = highlighted_rows(page.png), highlighted_rows(render_page(pdf, 3, wind).png)
    assert page.highlighted and rows[0] == whole[0]
    assert 0 <= whole[-1] - rows[-1] < 40, "at most the end of the last line is left unmarked"
