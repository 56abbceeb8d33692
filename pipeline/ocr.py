"""OCR of scanned PDF pages, for `plumb ingest --ocr`: each page is rendered by PDFium (pypdfium2, which
ships its own PDFium) and read by Tesseract (Debian's `tesseract-ocr`, through pytesseract), in English.

The whole page is rendered, rather than its embedded images extracted, so a scan stored in strips,
rotated or scaled is read as a reader sees it. 300 dpi is what Tesseract recommends for printed text.
"""

from pathlib import Path

from pipeline.errors import IngestError

DPI = 300
_MISSING = "OCR needs Tesseract: install Debian's tesseract-ocr (apt-get install tesseract-ocr) and run again."


def require_tesseract() -> None:
    """IngestError when the Tesseract program cannot be run, so `--ocr` fails before any work."""
    import pytesseract

    try:
        pytesseract.get_tesseract_version()
    except pytesseract.TesseractNotFoundError:
        raise IngestError(_MISSING) from None


def ocr_pages(path: Path, numbers: list[int]) -> dict[int, str]:
    """The text Tesseract reads on each of the pages `numbers` (from 1) of the PDF at `path`.
    IngestError when Tesseract is missing; ValueError when PDFium cannot render the file."""
    import pypdfium2
    import pytesseract

    texts: dict[int, str] = {}
    try:
        document = pypdfium2.PdfDocument(path)
        try:
            for number in numbers:
                image = document[number - 1].render(scale=DPI / 72).to_pil()
                texts[number] = pytesseract.image_to_string(image)
        finally:
            document.close()
    except pytesseract.TesseractNotFoundError:
        raise IngestError(_MISSING) from None
    except pypdfium2.PdfiumError as exc:
        raise ValueError(f"PDFium cannot render it for OCR: {exc}") from exc
    return texts
