"""Ingestion writes the embedded index a group of files at a time, not a commit per file, and an
interrupted run still leaves every file either as it was or wholly new."""

import os
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.documents import SourceFile, find_files
from pipeline.index.tantivy_store import ChunkWriter
from pipeline.ingest import ingest_files, make_splitter


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The opstamps of every commit the real tantivy writer makes during the test."""
    made: list[int] = []
    real_commit = ChunkWriter.commit

    def counted(writer: ChunkWriter) -> int:
        made.append(real_commit(writer))
        return made[-1]

    monkeypatch.setattr(ChunkWriter, "commit", counted)
    return made


def _files(folder: Path, count: int, edition: int = 1) -> list[SourceFile]:
    """`count` Markdown files of three one-line paragraphs each (three chunks with 20-piece chunks);
    another `edition` changes every file, so none is skipped as unchanged."""
    paths = []
    for number in range(count):
        path = folder / f"spec-{number}.md"
        lines = (f"Clause {number}.{line}: anchor bolts at {number * 10 + line} mm, edition {edition}." for line in range(3))
        path.write_text("\n\n".join(lines))
        paths.append(path)
    return find_files(paths)


def test_many_files_are_one_commit_per_encoding_group(tmp_path: Path, index, embedder, commits, monkeypatch):
    splitter = make_splitter(embedder, 20, 0)
    summary = ingest_files(_files(tmp_path, 12), index, embedder, splitter)
    assert (summary.files, summary.chunks) == (12, 36)
    assert len(commits) == 1
    monkeypatch.setattr("pipeline.ingest.ENCODE_GROUP_CHUNKS", 9)  # three files a group
    ingest_files(_files(tmp_path, 12, edition=2), index, embedder, splitter)
    assert len(commits) == 1 + 4
    assert index.sources() == {f"spec-{number}.md": 3 for number in range(12)}


def test_an_interrupted_ingest_keeps_whole_files(tmp_path: Path, index, embedder, monkeypatch):
    """Stopped during the second group's commit: the first group's files are in, whole; the
    second group's are not there at all."""
    monkeypatch.setattr("pipeline.ingest.ENCODE_GROUP_CHUNKS", 9)
    real_commit = ChunkWriter.commit
    made: list[int] = []

    def stopped_at_second(writer: ChunkWriter) -> int:
        if made:
            raise KeyboardInterrupt
        made.append(real_commit(writer))
        return made[-1]

    monkeypatch.setattr(ChunkWriter, "commit", stopped_at_second)
    with pytest.raises(KeyboardInterrupt):
        ingest_files(_files(tmp_path, 6), index, embedder, make_splitter(embedder, 20, 0))
    assert index.sources() == {f"spec-{number}.md": 3 for number in range(3)}



def _ctrl_c() -> None:
    raise KeyboardInterrupt


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    pytest.fail("SIGTERM did not stop the ingest")


def _not_stopped(signum, frame) -> None:
    pytest.fail("SIGTERM was not turned into an interruption: by default it ends the process at once")


@pytest.mark.parametrize("stop", [_ctrl_c, _sigterm])
def test_an_interrupted_cli_ingest_says_what_is_kept_and_goes_on_when_run_again(tmp_path: Path, monkeypatch, stop):
    """Stopped during the second group's commit: one line says what is kept and how to go on, the
    exit status is 130, and the same command again ingests only the files not yet in."""
    monkeypatch.setattr("pipeline.ingest.ENCODE_GROUP_CHUNKS", 3)  # a file is one chunk with the default settings
    real_commit = ChunkWriter.commit
    made: list[int] = []

    def stopped_at_second(writer: ChunkWriter) -> int:
        if made:
            stop()
        made.append(real_commit(writer))
        return made[-1]

    (tmp_path / "docs").mkdir()
    _files(tmp_path / "docs", 6)
    previous = signal.signal(signal.SIGTERM, _not_stopped)  # in place of the default, which would end pytest
    try:
        with monkeypatch.context() as patched:
            patched.setattr(ChunkWriter, "commit", stopped_at_second)
            result = CliRunner().invoke(app, ["ingest", "docs"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 130, result.output
    stopped = (
        "Stopped: files are written to the index whole, about 1,024 chunks at a time, and those written before "
        "the stop are kept; run the same command again to go on from there."
    )
    assert result.output.strip().endswith(stopped) and result.output.count("Stopped") == 1, result.output
    again = CliRunner().invoke(app, ["ingest", "docs"])
    assert "Ingested 3 files" in again.output and "unchanged, skipped: 3;" in again.output, again.output
