"""The store of original files, and ingestion keeping them."""

from pathlib import Path

from pipeline.documents import find_files
from pipeline.ingest import ingest_files, make_splitter
from pipeline.originals import OriginalStore


def test_put_get_replace_and_delete(tmp_path: Path):
    store = OriginalStore(tmp_path / "originals")
    store.put("specs/a.md", b"# A\n")
    store.put("copy/a.md", b"# A\n")
    first = store.get("specs/a.md")
    assert first.path.read_bytes() == b"# A\n" and first.file_name == "a.md" and first.suffix == ".md"
    assert first.path == store.get("copy/a.md").path, "the same bytes are one file"
    store.put("specs/a.md", b"# A, changed\n")
    assert store.get("specs/a.md").path.read_bytes() == b"# A, changed\n"
    assert first.path.exists(), "still named by copy/a.md"
    store.delete("copy/a.md")
    assert not first.path.exists() and store.get("copy/a.md") is None
    assert store.get("never/ingested.pdf") is None


def test_a_request_shaped_name_never_becomes_a_path(tmp_path: Path):
    store = OriginalStore(tmp_path / "originals")
    (tmp_path / "secret.txt").write_text("secret")
    assert store.get("../secret.txt") is None and store.get("/etc/passwd") is None
    store.put("../../evil.sh", b"echo")
    [stored] = (tmp_path / "originals" / "files").iterdir()
    assert stored.suffix == "" and len(stored.name) == 64, "named by digest; an unknown suffix is dropped"


def test_ingest_keeps_originals_and_fills_in_those_of_unchanged_files(tmp_path: Path, index, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Loads\n\nWind is 120 mph.\n")
    (folder / "b.txt").write_text("Snow is 25 psf.\n")
    splitter = make_splitter(embedder, 200, 40)
    ingest_files(find_files([folder]), index, embedder, splitter)
    store = OriginalStore(tmp_path / "originals")
    summary = ingest_files(find_files([folder]), index, embedder, splitter, originals=store)
    assert summary.unchanged == 2 and store.get("a.md").path.read_text() == "# Loads\n\nWind is 120 mph.\n"
    (folder / "b.txt").write_text("Snow is 30 psf.\n")
    ingest_files(find_files([folder]), index, embedder, splitter, originals=store)
    assert store.get("b.txt").path.read_text() == "Snow is 30 psf.\n"
