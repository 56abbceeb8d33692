"""Ingestion into the real embedded index with the real packaged embedding model."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.chain import _citation
from pipeline.cli import _ingest_samples_if_empty, app
from pipeline.documents import SourceFile, find_files
from pipeline.errors import ConfigError
from pipeline import ingest
from pipeline.ingest import IngestProgress, TokenSplitter, ingest_files, make_splitter, unlisted_sources
from pipeline.retriever import IndexRetriever
from pipeline.settings import get_settings
from pipeline.shards import parse_shard
from pipeline.wiring import make_embedder, open_originals
from tests.documents_factory import write_encrypted_pdf, write_labelled_pdf, write_pdf, write_scanned_pdf



@pytest.fixture
def splitter(embedder):
    """Chunks of up to 80 word pieces that do not overlap, so each short paragraph is a chunk of its own."""
    return make_splitter(embedder, 80, 0)


def _hits(index, embedder, text, mode="keyword", k=5):
    return index.search(text, embedder.encode_one(text), k, mode=mode)


def test_pages_survive_into_the_index(tmp_path: Path, index, embedder, splitter):
    pdf = write_pdf(tmp_path / "criteria.pdf", ["Scope.", "The basic wind speed is 120 mph.", "Frost depth is 42 inches."])
    summary = ingest_files(find_files([pdf]), index, embedder, splitter)
    assert (summary.files, summary.pages, summary.chunks, summary.skipped) == (1, 3, 3, [])
    hit = _hits(index, embedder, "frost depth")[0]
    assert (hit.source, hit.page) == ("criteria.pdf", 3)


def test_page_labels_and_sections_survive_into_the_index_and_the_citations(tmp_path: Path, index, embedder, splitter):
    pdf = write_labelled_pdf(tmp_path / "paper.pdf", ["Title page.", "", "Scope.", "The basic wind speed is 120 mph."])
    spec = tmp_path / "spec.md"
    spec.write_text("# Concrete\n\n## 3 Execution\n\n### 3.2 Curing\n\nCure for 7 days.\n\n## 4 Forms\n\nOil forms.\n")
    summary = ingest_files(find_files([pdf, spec]), index, embedder, splitter)
    assert (summary.pages, summary.chunks) == (4, 5)  # spec.md is one page of two sections
    retriever = IndexRetriever(index=index, embedder=embedder, k=1, mode="keyword")
    wind = _citation(retriever.invoke("basic wind speed")[0])
    assert (wind.page, wind.page_label, wind.section) == (4, "2", "")
    assert wind.label() == "paper.pdf – page 2 (PDF page 4)"
    curing = _citation(retriever.invoke("cure")[0])
    assert (curing.page, curing.page_label, curing.section) == (1, "", "Concrete › 3 Execution › 3.2 Curing")
    assert curing.label() == "spec.md – Concrete › 3 Execution › 3.2 Curing"


def test_reingest_skips_an_unchanged_file_and_replaces_a_changed_one(tmp_path: Path, index, embedder, splitter):
    doc = tmp_path / "spec.md"
    doc.write_text("Cure concrete for 7 days.\n\n" + "Filler sentence about formwork. " * 40)
    ingest_files(find_files([doc]), index, embedder, splitter)
    first = index.sources()["spec.md"]
    again = ingest_files(find_files([doc]), index, embedder, splitter)
    assert (again.unchanged, again.files, again.chunks) == (1, 0, 0)
    assert index.sources()["spec.md"] == first
    doc.write_text("Cure concrete for 14 days.")
    changed = ingest_files(find_files([doc]), index, embedder, splitter)
    assert (changed.unchanged, changed.files) == (0, 1)
    assert index.sources()["spec.md"] == 1
    assert [hit.text for hit in _hits(index, embedder, "cure concrete")] == ["Cure concrete for 14 days."]


def test_changed_chunk_settings_or_ocr_ingest_an_unchanged_file_again(tmp_path: Path, index, embedder, splitter):
    pdf = write_pdf(tmp_path / "criteria.pdf", ["Scope.", "The basic wind speed is 120 mph."])
    assert ingest_files(find_files([pdf]), index, embedder, splitter).files == 1
    assert ingest_files(find_files([pdf]), index, embedder, make_splitter(embedder, 60, 0)).files == 1
    assert ingest_files(find_files([pdf]), index, embedder, make_splitter(embedder, 60, 10)).files == 1
    assert ingest_files(find_files([pdf]), index, embedder, make_splitter(embedder, 60, 10), ocr=True).files == 1
    assert ingest_files(find_files([pdf]), index, embedder, make_splitter(embedder, 60, 10), ocr=True).unchanged == 1


def test_new_readers_ingest_an_unchanged_file_again(tmp_path: Path, index, embedder, splitter, monkeypatch):
    page = tmp_path / "venv.html"
    page.write_text("<html><body><nav>Next topic</nav><h1>Venv</h1><p>Create one with venv.</p></body></html>")
    assert ingest_files(find_files([page]), index, embedder, splitter).files == 1
    assert ingest_files(find_files([page]), index, embedder, splitter).unchanged == 1
    monkeypatch.setattr(ingest, "READER_VERSION", ingest.READER_VERSION + 1)
    assert ingest_files(find_files([page]), index, embedder, splitter).files == 1


def _paragraph(topic: str) -> str:
    """About 300 characters, 50 to 60 word pieces: with `splitter` every paragraph is a chunk of its own."""
    return f"{topic}. " + " ".join(f"Requirement {n} of {topic.lower()} applies." for n in range(1, 9))


def _chunks_of(index, embedder, source: str) -> dict[str, str]:
    """chunk id -> text of every chunk of `source`."""
    hits = index.search("requirement", embedder.encode_one("requirement"), 100, mode="dense", source=source)
    return {hit.chunk_id: hit.text for hit in hits}


def test_an_old_chunk_id_finds_its_own_text_or_nothing_after_an_edit(tmp_path: Path, index, embedder, splitter):
    topics = ["Formwork", "Curing", "Note", "Reinforcement", "Note", "Inspection"]
    doc = tmp_path / "spec.md"
    doc.write_text("\n\n".join(_paragraph(topic) for topic in topics))
    ingest_files(find_files([doc]), index, embedder, splitter)
    before = _chunks_of(index, embedder, "spec.md")
    assert len(before) == 6, "the two identical notes are two chunks with ids of their own"

    edited = ["Scope", *topics]
    edited[4] = "Rebar"
    doc.write_text("\n\n".join(_paragraph(topic) for topic in edited))
    ingest_files(find_files([doc]), index, embedder, splitter)
    after = _chunks_of(index, embedder, "spec.md")

    for chunk_id, text in before.items():
        assert [chunk.text for chunk in index.get([chunk_id])] in ([text], [])
    unchanged = {chunk_id for chunk_id, text in before.items() if not text.startswith("Reinforcement.")}
    assert len(unchanged) == 5 and unchanged <= set(after)
    assert len(after) == 7


def _beam_schedule() -> str:
    """About 950 characters, 490 word pieces: a table whose last line answers 'How thick are the end plates?'."""
    rows = [
        f"B{n:02d} | 356x171x{45 + n} UB | {4.2 + 0.3 * n:.1f} m | M{16 + 2 * (n % 3)} x{4 + n % 2} | {60 + 5 * n} kN"
        for n in range(1, 20)
    ]
    header, note = "Mark | Section | Span | Bolts | Reaction", "Note: all end plates are 15 mm thick, S275."
    return "\n".join([header, *rows, note])


def _tokens(embedder, text: str) -> int:
    return len(embedder.tokenizer.tokenize(text))


def test_a_dense_schedule_is_split_so_the_model_reads_every_chunk_whole(tmp_path: Path, index, embedder):
    schedule = _beam_schedule()
    assert embedder.count_cut([schedule]) == 1, "whole, the schedule is longer than the model reads"
    doc = tmp_path / "beams.md"
    doc.write_text(schedule)
    summary = ingest_files(find_files([doc]), index, embedder, make_splitter(embedder, 200, 40))
    assert summary.chunks == 3 and summary.cut == 0
    question = "How thick are the end plates?"
    hits = index.search(question, embedder.encode_one(question), 5, mode="dense")
    assert all(_tokens(embedder, hit.text) <= 200 for hit in hits)
    assert "15 mm thick" in hits[0].text and hits[0].similarity > 0.45


def test_neighbouring_chunks_share_the_configured_overlap(embedder):
    paragraphs = [
        " ".join(f"Pour {n} shall be cured for {n + 6} days under wet burlap." for n in range(1, 12)),
        " ".join(f"Formwork of bay {n} comes off at {n * 5} MPa." for n in range(1, 16)),
    ]
    chunks = make_splitter(embedder, 200, 40).split_text("\n\n".join(paragraphs))
    assert len(chunks) >= 2 and all(_tokens(embedder, chunk) <= 200 for chunk in chunks)
    for first, second in zip(chunks, chunks[1:]):
        shared = max(n for n in range(len(second) + 1) if first.endswith(second[:n]))
        assert 20 <= _tokens(embedder, second[:shared]) <= 40


def _function_table() -> str:
    """A Markdown table of functions as the HTML reader writes one (PostgreSQL's function tables):
    a row per function, from 20 to about 170 word pieces, its name in the first cell."""
    rows = ["| Function | Description | Example |", "| --- | --- | --- |"]
    for n in range(1, 15):
        words = " ".join(f"argument {k} of fn_{n} is trimmed to width {k * n};" for k in range(1, 1 + (n * 3) % 13))
        rows.append(f"| fn_{n} ( text ) → integer | Returns {words or 'a count'}. | fn_{n}('abc') → {n} |")
    return "\n".join(rows)


def test_table_rows_are_kept_whole_across_chunks(embedder):
    """A chunk cut inside a row leaves a function's description in one chunk and its name in
    another: chunks end at row ends, and the next starts at a row start, repeating a short last row
    as its overlap and a long one not at all."""
    table = _function_table()
    rows = table.splitlines()
    assert max(_tokens(embedder, row) for row in rows) <= 200 < sum(_tokens(embedder, row) for row in rows)
    assert any(100 < _tokens(embedder, row) for row in rows), "some rows are longer than half a chunk"
    chunks = make_splitter(embedder, 200, 40).split_text(table)
    assert all(_tokens(embedder, chunk) <= 200 for chunk in chunks)
    for chunk in chunks:
        assert set(chunk.splitlines()) <= set(rows), chunk
    assert {row for chunk in chunks for row in chunk.splitlines()} == set(rows)
    without_overlap = make_splitter(embedder, 200, 0).split_text(table)
    assert [row for chunk in without_overlap for row in chunk.splitlines()] == rows


def test_chunks_longer_than_the_model_reads_are_refused_or_counted(tmp_path: Path, index, embedder):
    with pytest.raises(ConfigError, match="at most 254 word pieces"):
        make_splitter(embedder, 300, 40)
    doc = tmp_path / "beams.md"
    doc.write_text(_beam_schedule())
    summary = ingest_files(find_files([doc]), index, embedder, TokenSplitter(embedder.tokenizer, 600, 0))
    assert (summary.chunks, summary.cut) == (1, 1)


def test_bad_files_are_skipped_by_name_and_the_run_goes_on(tmp_path: Path, index, embedder, splitter):
    good = write_pdf(tmp_path / "good.pdf", ["Anchor rods are ASTM F1554 Grade 36."])
    locked = write_encrypted_pdf(tmp_path / "locked.pdf", good)
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    files = find_files([locked, tmp_path / "empty.md", tmp_path / "broken.pdf", good])
    summary = ingest_files(files, index, embedder, splitter)
    assert summary.files == 1 and list(index.sources()) == ["good.pdf"]
    assert [reason.split(":")[0] for reason in summary.skipped] == ["locked.pdf", "empty.md", "broken.pdf"]


def test_a_file_that_now_holds_no_text_loses_its_earlier_chunks(tmp_path: Path, index, embedder, splitter):
    """Emptied, or a scan read again without OCR: the index shows what this read found, so the
    earlier chunks and the kept original go, and the summary names the file."""
    spec = tmp_path / "spec.md"
    spec.write_text("Cure concrete for 7 days.")
    scan = write_scanned_pdf(tmp_path / "soil.pdf", ["Groundwater was met at 12 feet."], scanned={1})
    (tmp_path / "keep.md").write_text("Frost depth is 42 inches.")
    files = find_files([spec, scan, tmp_path / "keep.md"])
    originals = open_originals(get_settings())
    ingest_files(files, index, embedder, splitter, ocr=True, originals=originals)
    assert set(index.sources()) == {"spec.md", "soil.pdf", "keep.md"}
    spec.write_text("")
    summary = ingest_files(files, index, embedder, splitter, originals=originals)
    assert summary.emptied == ["spec.md", "soil.pdf"]
    assert [reason.split(":")[0] for reason in summary.skipped] == ["spec.md", "soil.pdf"]
    assert (summary.files, summary.unchanged, summary.chunks) == (0, 1, 0)
    assert list(index.sources()) == ["keep.md"]
    assert [hit.source for hit in _hits(index, embedder, "cure concrete groundwater", mode="dense")] == ["keep.md"]
    assert not originals.has("spec.md") and not originals.has("soil.pdf") and originals.has("keep.md")
    assert ingest_files(files, index, embedder, splitter).emptied == []  # nothing indexed is left to remove


def test_an_indexed_file_that_cannot_be_read_keeps_its_earlier_text(tmp_path: Path, index, embedder, splitter):
    """Gone between listing and reading (an I/O error), or now a broken PDF: what it holds is not
    known, so its chunks stay and its skip line says so."""
    spec = tmp_path / "spec.md"
    spec.write_text("Cure concrete for 7 days.")
    pdf = write_pdf(tmp_path / "criteria.pdf", ["The basic wind speed is 120 mph."])
    files = find_files([spec, pdf])
    ingest_files(files, index, embedder, splitter)
    spec.unlink()
    pdf.write_bytes(b"%PDF-1.7 garbage")
    summary = ingest_files(files, index, embedder, splitter)
    assert summary.emptied == [] and index.sources() == {"spec.md": 1, "criteria.pdf": 1}
    assert [reason.split(":")[0] for reason in summary.skipped] == ["spec.md", "criteria.pdf"]
    assert all(reason.endswith(". Its earlier text stays indexed.") for reason in summary.skipped), summary.skipped


def test_files_encoded_together_keep_their_own_vectors(tmp_path: Path, index, embedder, monkeypatch, splitter):
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
    named = find_files([files[0], tmp_path / "empty.md", *files[1:]])
    summary = ingest_files(named, index, embedder, splitter, seen.append)
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
    bolts = find_files([tmp_path / "bolts.md"])
    summary = ingest_files(bolts, index, embedder, make_splitter(embedder, 20, 0), seen.append)
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
    assert "unchanged, skipped: 0; unreadable or without text, skipped: 1" in result.output
    assert "0 chunks too long for the embedding model (cut)" in result.output
    assert "Skipped empty.txt: holds no text" in result.output
    result = runner.invoke(app, ["ingest", "--delete", "docs/a.pdf"])
    assert result.exit_code == 1
    assert "No document named 'docs/a.pdf' is indexed; did you mean 'a.pdf'?" in result.output
    result = runner.invoke(app, ["ingest", "--delete", "a.pdf"])
    assert result.exit_code == 0 and "Removed a.pdf (2 chunks)" in result.output
    result = runner.invoke(app, ["index", "sources"])
    assert "b.md" in result.output and "a.pdf" not in result.output
    result = runner.invoke(app, ["ingest", "--delete", "nothing-like-it.html"])
    assert result.exit_code == 1
    assert "No document named 'nothing-like-it.html' is indexed; `plumb index sources` lists them." in result.output


def test_delete_refuses_other_names_or_paths_and_deletes_nothing(tmp_path: Path, index, embedder, splitter):
    (tmp_path / "a.md").write_text("Frost depth is 42 inches.")
    (tmp_path / "b.md").write_text("The basic wind speed is 120 mph.")
    ingest_files(find_files([tmp_path / "a.md", tmp_path / "b.md"]), index, embedder, splitter)
    index.close()
    for args in (["--delete", "a.md", "b.md"], ["--delete", "a.md", "--delete", "b.md"]):
        result = CliRunner().invoke(app, ["ingest", *args])
        assert result.exit_code == 1, result.output
        assert (
            "--delete removes one document and takes no other names or paths (also given: 'b.md'); "
            "nothing was deleted: run it once per document."
        ) in result.output
    assert CliRunner().invoke(app, ["index", "sources"]).output.split() == ["1", "a.md", "1", "b.md"]


def test_delete_suggests_indexed_names_whatever_their_case_or_the_path_typed(tmp_path: Path, index, embedder, splitter):
    (tmp_path / "json.html").write_text("<h1>json</h1><p>Encode and decode JSON.</p>")
    ingest_files(find_files([tmp_path / "json.html"], collection="py"), index, embedder, splitter)
    index.close()
    for typed in ("PY/JSON.HTML", "Py/Json.html", "py/jsn.html", str(tmp_path / "docs" / "py" / "json.html")):
        result = CliRunner().invoke(app, ["ingest", "--delete", typed])
        assert result.exit_code == 1
        assert f"No document named {typed!r} is indexed; did you mean 'py/json.html'?" in result.output, result.output


def test_unlisted_sources_are_the_indexed_ones_under_the_collection_a_listing_lacks():
    listed = [SourceFile(Path("docs/b.md"), "specs/b.md")]
    indexed = ["specs/a.md", "specs/b.md", "specs/sub/c.md", "other/d.md", "e.md"]
    assert unlisted_sources(indexed, listed, "specs") == ["specs/a.md", "specs/sub/c.md"]
    assert unlisted_sources(indexed, listed, "/specs/") == ["specs/a.md", "specs/sub/c.md"]
    assert unlisted_sources(indexed, listed, "") == ["e.md", "other/d.md", "specs/a.md", "specs/sub/c.md"]


def test_cli_names_documents_no_longer_in_the_folder_and_files_that_lost_their_text(tmp_path: Path):
    """Renamed, removed and emptied files of a folder ingested again: the emptied file's text goes,
    the others are named (never deleted) with how to remove them; documents of another collection
    or another shard are not named, nor after a file given alone."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for name in ("a.md", "b.md", "sub/c.md", "keep.md"):
        (docs / name).write_text(f"Text of {name}.")
    (tmp_path / "other.md").write_text("Another collection's text.")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--collection", "specs", "docs"]).exit_code == 0
    assert runner.invoke(app, ["ingest", "--collection", "misc", "other.md"]).exit_code == 0
    (docs / "b.md").rename(docs / "b2.md")
    (docs / "sub" / "c.md").unlink()
    (docs / "a.md").write_text("")
    result = runner.invoke(app, ["ingest", "--collection", "specs", "docs"])
    assert result.exit_code == 0, result.output
    assert "Removed the earlier text of 1 files that now hold none: specs/a.md." in result.output
    assert (
        "2 indexed documents under specs/ are not in the folders given: specs/b.md, specs/sub/c.md; "
        "if they were renamed or removed, `plumb ingest --delete NAME` removes each."
    ) in result.output
    sources = runner.invoke(app, ["index", "sources"]).output.split()[1::2]
    assert sources == ["misc/other.md", "specs/b.md", "specs/b2.md", "specs/keep.md", "specs/sub/c.md"]
    alone = runner.invoke(app, ["ingest", "--collection", "specs", "docs/b2.md"])
    assert "not in the folders given" not in alone.output, alone.output
    assert all(parse_shard("1/2").holds(name) for name in ("specs/b.md", "specs/sub/c.md"))
    first = runner.invoke(app, ["ingest", "--shard", "1/2", "--collection", "specs", "docs"])
    assert "2 indexed documents under specs/ are not in the folders given" in first.output, first.output
    second = runner.invoke(app, ["ingest", "--shard", "2/2", "--collection", "specs", "docs"])
    assert "not in the folders given" not in second.output, second.output


def test_ingest_prints_no_stray_library_warnings(tmp_path: Path):
    """transformers' "Token indices sequence length is longer..." (the chunker measures long texts
    on purpose) and pypdf's bare "EOF marker not found" (the skip line names the broken file)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    paragraph = " ".join(f"Requirement {n} applies to anchor bolts of bay {n}." for n in range(80))
    (docs / "long.md").write_text(f"# Bolts\n\n{paragraph}\n")  # the splitter measures the paragraph whole
    make_embedder(get_settings()).dimension  # the ONNX export, which logs on its own, is done here
    code = "from pipeline.cli import app\napp(['ingest', 'docs'])\n"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.returncode == 0, done.stderr
    assert "Skipped broken.pdf: cannot be read" in done.stdout, done.stdout
    assert "Token indices sequence length" not in done.stderr, done.stderr
    assert "EOF marker" not in done.stderr, done.stderr


def test_one_file_ingested_from_three_working_directories_is_one_source(tmp_path: Path, monkeypatch):
    """By a relative path, by an absolute path from elsewhere, and in a new process from a third
    directory: one source; the second and third runs skip the unchanged file, and an edit replaces it."""
    docs = tmp_path / "project" / "docs"
    docs.mkdir(parents=True)
    (docs / "prices.md").write_text("Ready-mix concrete costs 140 dollars per cubic yard.")
    monkeypatch.chdir(tmp_path / "project")
    first = CliRunner().invoke(app, ["ingest", "docs/prices.md"])
    assert first.exit_code == 0 and "Ingested 1 files" in first.output, first.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    second = CliRunner().invoke(app, ["ingest", str(docs / "prices.md")])
    assert "Ingested 0 files" in second.output and "unchanged, skipped: 1;" in second.output, second.output
    code = "from pipeline.cli import app\napp(['ingest', '../project/docs/prices.md'], standalone_mode=False)\n"
    third = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert third.returncode == 0, third.stderr
    assert "unchanged, skipped: 1;" in third.stdout, third.stdout
    (docs / "prices.md").write_text("Ready-mix concrete costs 150 dollars per cubic yard.")
    fourth = CliRunner().invoke(app, ["ingest", "../project/docs"])
    assert "Ingested 1 files" in fourth.output and "unchanged, skipped: 0;" in fourth.output, fourth.output
    assert CliRunner().invoke(app, ["index", "sources"]).output.split() == ["1", "prices.md"]


def test_cli_collection_prefixes_the_names_below_the_folder(tmp_path: Path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "prices.md").write_text("Ready-mix concrete costs 140 dollars per cubic yard.")
    (tmp_path / "docs" / "sub" / "rebar.md").write_text("Rebar costs 900 dollars per ton.")
    result = CliRunner().invoke(app, ["ingest", "--collection", "costs", "docs"])
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(app, ["index", "sources"]).output
    assert listed.split() == ["1", "costs/prices.md", "1", "costs/sub/rebar.md"]
    result = CliRunner().invoke(app, ["ingest", "--delete", "costs/sub/rebar.md"])
    assert "Removed costs/sub/rebar.md (1 chunks)" in result.output


def test_samples_are_cited_by_their_file_names_not_the_data_folder(tmp_path: Path):
    settings = get_settings()
    _ingest_samples_if_empty(settings)
    result = CliRunner().invoke(app, ["index", "sources"])
    names = result.output.split()[1::2]
    assert names == ["concrete-spec.md", "design-criteria.pdf", "submittal-procedures.html"]


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
    assert "Skipped men\\xfc.md: the file name is not UTF-8" in result.output
    assert "Note scan.pdf: no text layer on page 2 (scanned?); `--ocr` reads them." in result.output
    assert "Ingested 2 files, 2 pages, 2 chunks" in result.output
    result = CliRunner().invoke(app, ["index", "sources"])
    assert "legacy.txt" in result.output and "scan.pdf" in result.output


def test_cli_ingest_ocr_reads_scanned_pages(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    write_scanned_pdf(folder / "soil.pdf", ["Soil report cover.", "Groundwater was met at 12 feet."], scanned={2})
    result = CliRunner().invoke(app, ["ingest", "--ocr", "docs"])
    assert result.exit_code == 0, result.output
    assert "Note soil.pdf: page 2 read by OCR." in result.output
    assert "Ingested 1 files, 2 pages, 2 chunks" in result.output


def test_cli_ingest_ocr_without_tesseract_says_what_to_install(tmp_path: Path, monkeypatch):
    # pytesseract's documented setting for where the Tesseract program is
    monkeypatch.setattr("pytesseract.pytesseract.tesseract_cmd", str(tmp_path / "no-tesseract"))
    (tmp_path / "a.md").write_text("text")
    result = CliRunner().invoke(app, ["ingest", "--ocr", "a.md"])
    assert result.exit_code == 1
    assert "OCR needs Tesseract: install Debian's tesseract-ocr" in result.output


def test_listing_and_deleting_documents_load_no_embedding_model(tmp_path: Path, index, embedder, splitter):
    """`plumb index sources`, `plumb ingest --delete` and `plumb index init` in a fresh process
    never import sentence-transformers: the index knows its own dimension."""
    (tmp_path / "a.md").write_text("Frost depth is 42 inches.")
    (tmp_path / "b.md").write_text("The basic wind speed is 120 mph.")
    ingest_files(find_files([tmp_path / "a.md", tmp_path / "b.md"]), index, embedder, splitter)
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
