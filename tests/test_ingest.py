"""Ingestion into the real embedded index with the real packaged embedding model."""

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ingest import IngestProgress, ingest_files, make_splitter
from tests.documents_factory import write_encrypted_pdf, write_pdf, write_scanned_pdf

SPLITTER = make_splitter(400, 50)


def _hits(index, embedder, text, mode="keyword", k=5):
    return index.search(text, embedder.encode_one(text), k, mode=mode)


def test_pages_survive_into_the_index(tmp_path: Path, index, embedder):
    pdf = write_pdf(tmp_path / "criteria.pdf", ["Scope.", "The basic wind speed is 120 mph.", "Frost depth is 42 inches."])
    summary = ingest_files([pdf], index, embedder, SPLITTER)
    assert (summary.files, summary.pages, summary.chunks, summary.skipped) == (1, 3, 3, [])
    hit = _hits(index, embedder, "frost depth")[0]
    assert (hit.source, hit.page) == ("criteria.pdf", 3)


def test_reingest_replaces_instead_of_duplicating(tmp_path: Path, index, embedder):
    doc = tmp_path / "spec.md"
    doc.write_text("Cure concrete for 7 days.\n\n" + "Filler sentence about formwork. " * 40)
    ingest_files([doc], index, embedder, SPLITTER)
    first = index.sources()["spec.md"]
    ingest_files([doc], index, embedder, SPLITTER)
    assert index.sources()["spec.md"] == first
    doc.write_text("Cure concrete for 14 days.")
    ingest_files([doc], index, embedder, SPLITTER)
    assert index.sources()["spec.md"] == 1
    assert "14 days" in _hits(index, embedder, "cure concrete")[0].text


def _paragraph(topic: str) -> str:
    """About 300 characters: with SPLITTER (400, overlap 50) every paragraph is a chunk of its own."""
    return f"{topic}. " + " ".join(f"Requirement {n} of {topic.lower()} applies." for n in range(1, 9))


def _chunks_of(index, embedder, source: str) -> dict[str, str]:
    """chunk id -> text of every chunk of `source`."""
    hits = index.search("requirement", embedder.encode_one("requirement"), 100, mode="dense", source=source)
    return {hit.chunk_id: hit.text for hit in hits}


def test_an_old_chunk_id_finds_its_own_text_or_nothing_after_an_edit(tmp_path: Path, index, embedder):
    topics = ["Formwork", "Curing", "Note", "Reinforcement", "Note", "Inspection"]
    doc = tmp_path / "spec.md"
    doc.write_text("\n\n".join(_paragraph(topic) for topic in topics))
    ingest_files([doc], index, embedder, SPLITTER)
    before = _chunks_of(index, embedder, "spec.md")
    assert len(before) == 6, "the two identical notes are two chunks with ids of their own"

    edited = ["Scope", *topics]
    edited[4] = "Rebar"
    doc.write_text("\n\n".join(_paragraph(topic) for topic in edited))
    ingest_files([doc], index, embedder, SPLITTER)
    after = _chunks_of(index, embedder, "spec.md")

    for chunk_id, text in before.items():
        assert [chunk.text for chunk in index.get([chunk_id])] in ([text], [])
    unchanged = {chunk_id for chunk_id, text in before.items() if not text.startswith("Reinforcement.")}
    assert len(unchanged) == 5 and unchanged <= set(after)
    assert len(after) == 7


def test_bad_files_are_skipped_by_name_and_the_run_goes_on(tmp_path: Path, index, embedder):
    good = write_pdf(tmp_path / "good.pdf", ["Anchor rods are ASTM F1554 Grade 36."])
    locked = write_encrypted_pdf(tmp_path / "locked.pdf", good)
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    summary = ingest_files([locked, tmp_path / "empty.md", tmp_path / "broken.pdf", good], index, embedder, SPLITTER)
    assert summary.files == 1 and list(index.sources()) == ["good.pdf"]
    assert [reason.split(":")[0] for reason in summary.skipped] == ["locked.pdf", "empty.md", "broken.pdf"]


def test_files_encoded_together_keep_their_own_vectors(tmp_path: Path, index, embedder, monkeypatch):
    """Several files share one encode call (and, with a small group, several groups run): every
    chunk must still carry its own vector, and progress must count every file and chunk."""
    monkeypatch.setattr("pipeline.ingest.ENCODE_GROUP_CHUNKS", 3)
    topics = {
        "wind.md": "The basic wind speed for the pump station is 120 mph.",
        "frost.md": "Frost depth is 42 inches below finished grade.",
        "rebar.md": "Reinforcing steel is ASTM A615 Grade 60.",
        "cover.md": "Concrete cast against earth needs 3 inches of cover.",
    }
    files = []
    for name, text in topics.items():
        (tmp_path / name).write_text(text)
        files.append(tmp_path / name)
    (tmp_path / "empty.md").write_text("")
    seen: list[IngestProgress] = []
    summary = ingest_files([files[0], tmp_path / "empty.md", *files[1:]], index, embedder, SPLITTER, seen.append)
    assert (summary.files, summary.chunks, len(summary.skipped)) == (4, 4, 1)
    assert seen[-1] == IngestProgress(files=5, files_read=5, chunks=4, chunks_encoded=4)
    for name, text in topics.items():
        hit = _hits(index, embedder, text, mode="dense", k=1)[0]
        assert hit.source == name and hit.score > 0.99, (name, hit)


def test_progress_counts_chunks_batch_by_batch(tmp_path: Path, index, embedder, monkeypatch):
    """One large encoding group reports after every batch, chunk counts rising to the total, and
    the vectors still land on their own chunks (batches are encoded longest first)."""
    monkeypatch.setattr(embedder, "batch_size", 4)
    clauses = [f"Clause {n}: the anchor bolt spacing is {n * 25} mm{'.' * (n % 5)}" for n in range(1, 19)]
    (tmp_path / "bolts.md").write_text("\n\n".join(clauses))
    seen: list[IngestProgress] = []
    summary = ingest_files([tmp_path / "bolts.md"], index, embedder, make_splitter(60, 0), seen.append)
    assert summary.chunks == 18
    assert seen[0] == IngestProgress(files=1, files_read=1, chunks=18, chunks_encoded=0)
    assert [state.chunks_encoded for state in seen[1:]] == [4, 8, 12, 16, 18]
    for clause in clauses:
        hit = _hits(index, embedder, clause, mode="dense", k=1)[0]
        assert hit.text == clause and hit.score > 0.99, (clause, hit)


def test_cli_ingest_summary_and_delete(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "a.pdf", ["Page one text.", "Page two text."])
    (folder / "b.md").write_text("# Spec\n\nSome specification text.")
    (folder / "empty.txt").write_text("")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", "docs"])
    assert result.exit_code == 0, result.output
    assert "Ingested 2 files, 3 pages, 3 chunks" in result.output
    assert "Skipped docs/empty.txt: holds no text" in result.output
    result = runner.invoke(app, ["ingest", "--delete", "docs/a.pdf"])
    assert result.exit_code == 0 and "Removed docs/a.pdf (2 chunks)" in result.output
    result = runner.invoke(app, ["index", "sources"])
    assert "docs/b.md" in result.output and "a.pdf" not in result.output
    result = runner.invoke(app, ["ingest", "--delete", "docs/a.pdf"])
    assert result.exit_code == 1 and "No document named 'docs/a.pdf'" in result.output


def test_cli_refuses_missing_paths(tmp_path: Path):
    result = CliRunner().invoke(app, ["ingest", "missing-folder"])
    assert result.exit_code == 1 and "Not found: missing-folder" in result.output


def test_cli_ingest_goes_on_past_bad_names_legacy_encodings_and_scans(tmp_path: Path):
    """A file name that is not UTF-8 is skipped and shown escaped, a Windows-1252 file is read, a
    scanned page is named; everything else goes in."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / os.fsdecode(b"men\xfc.md")).write_text("Soup of the day.", encoding="utf-8")
    (folder / "legacy.txt").write_bytes("Frost depth is 42 in. below grade \u2013 see caf\xe9 plan.".encode("cp1252"))
    write_scanned_pdf(folder / "scan.pdf", ["Cover sheet of the soil report.", "Boring B-1 log."], scanned={2})
    result = CliRunner().invoke(app, ["ingest", "docs"])
    assert result.exit_code == 0, result.output
    assert "Skipped docs/men\\xfc.md: the file name is not UTF-8" in result.output
    assert "Note docs/scan.pdf: no text layer on page 2 (scanned?); `--ocr` reads them." in result.output
    assert "Ingested 2 files, 2 pages, 2 chunks" in result.output
    result = CliRunner().invoke(app, ["index", "sources"])
    assert "docs/legacy.txt" in result.output and "docs/scan.pdf" in result.output


def test_cli_ingest_ocr_reads_scanned_pages(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    write_scanned_pdf(folder / "soil.pdf", ["Soil report cover.", "Groundwater was met at 12 feet."], scanned={2})
    result = CliRunner().invoke(app, ["ingest", "--ocr", "docs"])
    assert result.exit_code == 0, result.output
    assert "Note docs/soil.pdf: page 2 read by OCR." in result.output
    assert "Ingested 1 files, 2 pages, 2 chunks" in result.output


def test_cli_ingest_ocr_without_tesseract_says_what_to_install(tmp_path: Path, monkeypatch):
    # pytesseract's documented setting for where the Tesseract program is
    monkeypatch.setattr("pytesseract.pytesseract.tesseract_cmd", str(tmp_path / "no-tesseract"))
    (tmp_path / "a.md").write_text("text")
    result = CliRunner().invoke(app, ["ingest", "--ocr", "a.md"])
    assert result.exit_code == 1
    assert "OCR needs Tesseract: install Debian's tesseract-ocr" in result.output


def test_listing_and_deleting_documents_load_no_embedding_model(tmp_path: Path, index, embedder):
    """`plumb index sources`, `plumb ingest --delete` and `plumb index init` in a fresh process
    never import sentence-transformers: the index knows its own dimension."""
    (tmp_path / "a.md").write_text("Frost depth is 42 inches.")
    (tmp_path / "b.md").write_text("The basic wind speed is 120 mph.")
    ingest_files([tmp_path / "a.md", tmp_path / "b.md"], index, embedder, SPLITTER)
    index.close()
    code = (
        "import sys\nfrom pipeline.cli import app\n"
        "for args in (['index', 'init'], ['index', 'sources'], ['ingest', '--delete', 'a.md'], ['index', 'sources']):\n"
        "    app(args, standalone_mode=False)\n"
        "print('sentence_transformers' in sys.modules, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Removed a.md (1 chunks)" in result.stdout
    assert result.stdout.count("a.md") == 2 and result.stdout.count("b.md") == 2
    assert result.stdout.splitlines()[-1] == "False False"
