"""Real documents made by the tests: a multi-page PDF with known text per page, one with page
labels, an encrypted PDF, a PDF whose text layer holds ligatures, a PDF with scanned pages, Markdown
and HTML files."""

from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from pypdf.constants import PageLabelStyle
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject


def write_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def write_labelled_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF of `pages` labelled as books and papers are: the first two in lower-case roman
    numerals (i, ii), the rest in arabic numerals from 1, so physical page 3 is printed "1"."""
    write_pdf(path, pages)
    writer = PdfWriter(clone_from=PdfReader(path))
    writer.set_page_label(0, 1, style=PageLabelStyle.LOWERCASE_ROMAN, start=1)
    writer.set_page_label(2, len(pages) - 1, style=PageLabelStyle.DECIMAL, start=1)
    writer.write(path)
    return path


def write_encrypted_pdf(path: Path, source: Path) -> Path:
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner")
    writer.write(path)
    return path


# Byte codes 1..5 of the font below draw the ligature glyphs, as in PDFs typeset by TeX and word processors.
LIGATURE_CODES = {"ff": b"\x01", "fi": b"\x02", "fl": b"\x03", "ffi": b"\x04", "ffl": b"\x05"}


def write_ligature_pdf(path: Path, lines: list[bytes]) -> Path:
    """A one-page PDF whose Type 1 font maps byte codes to the glyphs named ff, fi, fl, ffi and ffl
    (so its text layer reads U+FB00..U+FB04); `lines` are the font's byte strings, one per line."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    glyphs = [NameObject(f"/{name}") for name in LIGATURE_CODES]
    encoding = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Encoding"),
            NameObject("/BaseEncoding"): NameObject("/WinAnsiEncoding"),
            NameObject("/Differences"): ArrayObject([NumberObject(1), *glyphs]),
        }
    )
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Times-Roman"),
            NameObject("/Encoding"): encoding,
        }
    )
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    shown = b" ".join(b"(" + line + b") Tj T*" for line in lines)
    content = DecodedStreamObject()
    content.set_data(b"BT /F1 12 Tf 14 TL 72 720 Td " + shown + b" ET")
    page.replace_contents(content)
    writer.write(path)
    return path


def write_scanned_pdf(path: Path, pages: list[str], scanned: set[int]) -> Path:
    """A PDF of `pages`; those numbered in `scanned` (from 1) hold only a picture of their text, as a
    scanner without OCR makes them (a blank picture for ""); the others hold their text."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        if number in scanned:
            pdf.image(_picture_of(text), x=0, y=0, w=pdf.w, h=pdf.h)
        else:
            pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def _picture_of(text: str) -> Image.Image:
    """A page-sized greyscale picture (A4 at 150 dpi) with `text` printed on it."""
    image = Image.new("L", (1240, 1754), color=255)
    ImageDraw.Draw(image).multiline_text((120, 150), text, font=ImageFont.load_default(size=40), fill=0, spacing=16)
    return image
