"""A PDF page as an image, with a cited passage highlighted where its text can be found on the page.

The page is drawn by PDFium (pypdfium2), as a viewer draws it. The passage was read by pypdf and
normalised (`pipeline/normalise.py`: ligatures, soft hyphens, words joined across line ends), so it
is not found by PDFium's own search, which wants the page's characters as they are. Both texts are
compared on their letters and digits alone, case- and compatibility-folded (NFKC: "ﬁ" is "fi"),
which normalising cannot change; each page character keeps its index, so the match gives PDFium's
character range, and PDFium gives that range's boxes, one per line.
When the whole passage is not found (text drawn in another order than pypdf reads it), what lies
between the first of its opening windows of ANCHOR_CHARS letters found on the page and the last of
its closing ones is highlighted.
"""

import ctypes
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageDraw

from pipeline.errors import PlumbError

ANCHOR_CHARS = 40
ANCHOR_STEP = 8  # letters between the windows tried, so at most this many of an end go unmarked
HIGHLIGHT = (255, 214, 0, 96)  # translucent yellow, RGBA
SCALE = 2.0  # pixels per PDF point: 1224 px across a Letter page


@dataclass(frozen=True)
class PageImage:
    """A rendered page: PNG bytes, and whether the passage was found and highlighted."""

    png: bytes
    highlighted: bool


def render_page(path: Path, page_number: int, passage: str, scale: float = SCALE) -> PageImage:
    """Page `page_number` (from 1) of the PDF at `path` as a PNG, with `passage` highlighted when
    found. PlumbError when the file cannot be read or has no such page."""
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        raise PlumbError(f"The stored original cannot be read as a PDF ({exc}).") from exc
    try:
        if not 1 <= page_number <= len(pdf):
            raise PlumbError(f"The document has {len(pdf)} pages, so it has no page {page_number}.")
        page = pdf[page_number - 1]
        image = page.render(scale=scale).to_pil().convert("RGBA")
        boxes = _passage_boxes(page, passage)
        if boxes:
            image = _highlight(image, [_to_pixels(page, box, image.size) for box in boxes])
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG")
        return PageImage(out.getvalue(), bool(boxes))
    finally:
        pdf.close()


def _folded(text: str) -> list[str]:
    """Each character of `text` as its letters and digits, case- and compatibility-folded."""
    return ["".join(c for c in unicodedata.normalize("NFKC", char).casefold() if c.isalnum()) for char in text]


def _passage_boxes(page: pdfium.PdfPage, passage: str) -> list[tuple[float, float, float, float]]:
    """The boxes (left, bottom, right, top in PDF points), one per line, of the passage on `page`;
    [] when it cannot be found."""
    text_page = page.get_textpage()
    try:
        count = text_page.count_chars()
        chars = [chr(pdfium_c.FPDFText_GetUnicode(text_page, i)) for i in range(count)]
        keys, owners = [], []  # the page's folded letters, and the character index each came from
        for index, folded in enumerate(_folded(chars)):
            keys.extend(folded)
            owners.extend([index] * len(folded))
        page_text, wanted = "".join(keys), "".join(_folded(passage))
        found = _locate(page_text, wanted)
        if found is None:
            return []
        first, last = owners[found[0]], owners[found[1] - 1]
        rects = text_page.count_rects(first, last - first + 1)
        return [text_page.get_rect(i) for i in range(rects)]
    finally:
        text_page.close()


def _locate(page_text: str, wanted: str) -> tuple[int, int] | None:
    """Start and end of `wanted` in `page_text`; else the span from the first of its leading
    ANCHOR_CHARS-letter windows found on the page to the last of its trailing ones (windows
    ANCHOR_STEP letters apart over each half of the passage, so a margin note or a heading that
    PDFium reads on the other side of the passage's first or last line does not lose the whole
    highlight); None when no such span is found."""
    if not wanted:
        return None
    start = page_text.find(wanted)
    if start >= 0:
        return start, start + len(wanted)
    half = max(len(wanted) // 2, 1)
    heads = range(0, max(half - ANCHOR_CHARS, 0) + 1, ANCHOR_STEP)
    start = next((found for offset in heads if (found := page_text.find(wanted[offset:offset + ANCHOR_CHARS])) >= 0), -1)
    if start < 0:
        return None
    for offset in heads:
        tail = wanted[len(wanted) - offset - ANCHOR_CHARS:len(wanted) - offset]
        end = page_text.find(tail, start + 1)
        if end >= 0:
            return start, end + len(tail)
    return None


def _to_pixels(page: pdfium.PdfPage, box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box in PDF points as (left, top, right, bottom) pixels of the rendered image: PDFium's own
    conversion, which knows the page's crop box and rotation."""
    left, bottom, right, top = box
    corners = [_device(page, x, y, size) for x, y in ((left, top), (right, bottom))]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return min(xs), min(ys), max(xs), max(ys)


def _device(page: pdfium.PdfPage, x: float, y: float, size: tuple[int, int]) -> tuple[int, int]:
    device_x, device_y = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(page, 0, 0, size[0], size[1], 0, x, y, device_x, device_y)
    return device_x.value, device_y.value


def _highlight(image: Image.Image, boxes: list[tuple[int, int, int, int]]) -> Image.Image:
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for left, top, right, bottom in boxes:
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=HIGHLIGHT)
    return Image.alpha_composite(image, layer)
