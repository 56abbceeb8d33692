"""Ingestion throughput against the raw encoder's throughput on the same chunks.

    .venv/bin/python bench/bench_ingest.py [--copies 8]

Writes `--copies` copies of the sample documents plus a long generated PDF, runs the real
ingestion (read, split, embed, index) and then encodes exactly the chunks it produced with the bare
sentence-transformers model. Target: ingestion >= 80% of the raw encoder's chunks/s.
"""

import argparse
import tempfile
import time
from pathlib import Path

from pipeline.documents import find_files, read_pages
from pipeline.embeddings import Embedder, default_model_path
from pipeline.index.embedded import EmbeddedIndex
from pipeline.ingest import ingest_files, make_splitter, split_pages
from pipeline.samples import DESIGN_CRITERIA_PAGES, write_samples
from fpdf import FPDF


def write_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 5, text)
    pdf.output(str(path))
    return path


def make_documents(folder: Path, copies: int) -> list[Path]:
    files: list[Path] = []
    for copy in range(copies):
        files += write_samples(folder / f"set{copy}")
        pages = [" ".join(p) * 3 for _, p in DESIGN_CRITERIA_PAGES] * 5
        files.append(write_pdf(folder / f"set{copy}" / "long.pdf", pages))
    return files


def main(copies: int) -> None:
    embedder = Embedder(default_model_path())
    embedder.encode(["warm up"] * 64)
    splitter = make_splitter(embedder, 200, 40)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_documents(Path(tmp) / "docs", copies)
        index = EmbeddedIndex(Path(tmp) / "index", embedder.dimension)
        started = time.perf_counter()
        summary = ingest_files(find_files([Path(tmp) / "docs"]), index, embedder, splitter)
        ingest_s = time.perf_counter() - started
        index.close()
        texts = [text for path in files for _, _, text in split_pages(read_pages(path), splitter)]
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - started
    ingest_rate, raw_rate = summary.chunks / ingest_s, len(texts) / raw_s
    print(f"files {summary.files}, pages {summary.pages}, chunks {summary.chunks}")
    print(f"ingestion   {ingest_rate:8.1f} chunks/s ({ingest_s:.1f} s)")
    print(f"raw encoder {raw_rate:8.1f} chunks/s ({raw_s:.1f} s)")
    print(f"ratio       {ingest_rate / raw_rate:8.1%} (target >= 80%)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8, help="Copies of the sample set to ingest.")
    main(parser.parse_args().copies)
