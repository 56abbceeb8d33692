"""Real documents made by the tests: a multi-page PDF with known text per page, an encrypted PDF,
Markdown and HTML files."""

from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter


def write_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def write_encrypted_pdf(path: Path, source: Path) -> Path:
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner")
    writer.write(path)
    return path
