"""Ingesting documents from S3 (moto's server over real HTTP) and splitting a set among workers
(`--shard I/N`), into the real embedded index with the real packaged embedding model."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ConfigError
from pipeline.index import make_index
from pipeline.ingest import ingest_files, make_splitter
from pipeline.s3_documents import list_documents
from pipeline.settings import get_settings
from pipeline.shards import parse_shard
from tests.documents_factory import write_pdf

# The documents of the set by the names they are cited by, and one file that is not a document.
GOOD = {
    "curing.md": "# Curing\n\nKeep concrete wet for seven days after the pour.",
    "wind.txt": "The basic wind speed for the site is 120 mph.",
    "frost/depth.html": "<html><body><p>Footings go 42 inches below grade for frost.</p></body></html>",
    "frost/notes.md": "# Notes\n\nInsulate shallow footings in winter.",
    "rebar/laps.txt": "Lap splices are 40 bar diameters long.",
}
BAD = "broken.pdf"


@pytest.fixture
def bucket(s3_server, monkeypatch, tmp_path) -> str:
    """A fresh bucket holding the set under `manuals/` (plus objects that are no documents of it),
    with the standard AWS settings pointing at moto's server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"documents-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    for source, text in GOOD.items():
        client.put_object(Bucket=name, Key=f"manuals/{source}", Body=text.encode())
    pdf = write_pdf(tmp_path / "criteria.pdf", ["Scope.", "Snow load is 30 psf."])
    client.put_object(Bucket=name, Key="manuals/criteria.pdf", Body=pdf.read_bytes())
    client.put_object(Bucket=name, Key=f"manuals/{BAD}", Body=b"%PDF-1.4 this is not a PDF")
    client.put_object(Bucket=name, Key="manuals/photos/site.png", Body=b"\x89PNG")
    client.put_object(Bucket=name, Key="manuals/.drafts/old.md", Body=b"# Draft")
    client.put_object(Bucket=name, Key="manuals-old/curing.md", Body=b"# Old curing")
    return name


ALL = {*GOOD, "criteria.pdf", BAD}


class CountingClient:
    """An S3 client that records what it downloads."""

    def __init__(self) -> None:
        self._client = boto3.client("s3")
        self.downloads: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def download_file(self, bucket: str, key: str, path: str) -> None:
        self.downloads.append(key)
        self._client.download_file(bucket, key, path)


def test_documents_are_named_by_their_key_below_the_prefix(bucket):
    client = boto3.client("s3")
    assert {d.source for d in list_documents(f"s3://{bucket}/manuals", client)} == ALL
    assert {d.source for d in list_documents(f"s3://{bucket}/manuals/", client)} == ALL
    assert [d.source for d in list_documents(f"s3://{bucket}/manuals/frost/depth.html", client)] == ["depth.html"]
    assert {d.source for d in list_documents(f"s3://{bucket}", client)} == {f"manuals/{s}" for s in ALL} | {
        "manuals-old/curing.md"
    }
    assert {d.source for d in list_documents(f"s3://{bucket}/manuals", client, "specs")} == {f"specs/{s}" for s in ALL}


def test_a_listing_longer_than_one_page_is_read_to_the_end(bucket):
    client = boto3.client("s3")
    with ThreadPoolExecutor(8) as pool:  # S3 returns at most 1,000 keys a page
        list(pool.map(lambda n: client.put_object(Bucket=bucket, Key=f"many/note-{n:04d}.txt", Body=b"x"), range(1001)))
    documents = list_documents(f"s3://{bucket}/many", client)
    assert len(documents) == 1001 and documents[-1].source == "note-1000.txt"


def test_a_set_in_s3_and_a_local_copy_of_it_are_the_same_documents(bucket, tmp_path):
    client = boto3.client("s3")
    copy = tmp_path / "copy"
    for document in list_documents(f"s3://{bucket}/manuals", client):
        (copy / document.source).parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, document.key, str(copy / document.source))
    result = CliRunner().invoke(app, ["ingest", f"s3://{bucket}/manuals"])
    assert result.exit_code == 0, result.output
    assert _sources() == set(ALL) - {BAD}

    result = CliRunner().invoke(app, ["ingest", str(copy)])
    assert result.exit_code == 0, result.output
    assert "Ingested 6 files" in result.output
    assert _sources() == set(ALL) - {BAD}, "the copy replaced the documents from S3 instead of adding others"


def test_two_shards_over_s3_cover_every_file_exactly_once(bucket):
    url = f"s3://{bucket}/manuals"
    first = CliRunner().invoke(app, ["ingest", url, "--shard", "1/2"])
    assert first.exit_code == 0, first.output
    after_first = _sources()
    second = CliRunner().invoke(app, ["ingest", url, "--shard", "2/2"])
    assert second.exit_code == 0, second.output
    after_second = _sources()

    assert after_first and after_first < after_second, "each worker had a share"
    assert after_second == set(ALL) - {BAD}
    assert [first.output.count(f"Skipped {BAD}"), second.output.count(f"Skipped {BAD}")] in ([1, 0], [0, 1])
    counts = [int(run.output.split(": ")[1].split(" of ")[0]) for run in (first, second)]
    assert sum(counts) == len(ALL) and "of 7 documents" in first.output


def test_shards_split_a_local_folder_too(tmp_path):
    folder = tmp_path / "docs"
    for source, text in GOOD.items():
        (folder / source).parent.mkdir(parents=True, exist_ok=True)
        (folder / source).write_text(text)
    shares = []
    for number in (1, 2):
        before = _sources()
        result = CliRunner().invoke(app, ["ingest", "docs", "--shard", f"{number}/2"])
        assert result.exit_code == 0, result.output
        shares.append(_sources() - before)
    assert all(shares) and len(shares[0] | shares[1]) == len(GOOD)


def test_a_rerun_downloads_and_reads_only_changed_objects(bucket, index, embedder):
    url = f"s3://{bucket}/manuals"
    client = CountingClient()
    splitter = make_splitter(embedder, 200, 40)
    first = ingest_files(list_documents(url, client), index, embedder, splitter)
    assert (first.files, first.unchanged) == (6, 0)
    assert [reason.split(":")[0] for reason in first.skipped] == [BAD]

    client.downloads.clear()
    client.put_object(Bucket=bucket, Key="manuals/wind.txt", Body=b"The basic wind speed for the site is 130 mph.")
    again = ingest_files(list_documents(url, client), index, embedder, splitter)
    assert (again.files, again.unchanged, len(again.skipped)) == (1, 5, 1)
    # The bad file has no fingerprint in the index, so it is tried again.
    assert sorted(client.downloads) == ["manuals/broken.pdf", "manuals/wind.txt"]
    hit = index.search("wind speed", embedder.encode_one("wind speed"), 1, mode="keyword")[0]
    assert (hit.source, "130 mph" in hit.text) == ("wind.txt", True)

    changed_settings = ingest_files(list_documents(url, client), index, embedder, make_splitter(embedder, 100, 20))
    assert (changed_settings.files, changed_settings.unchanged) == (6, 0), "other chunk settings read everything again"


def test_an_object_gone_before_it_is_read_is_skipped_and_the_run_goes_on(bucket, index, embedder):
    client = boto3.client("s3")
    documents = list_documents(f"s3://{bucket}/manuals", client)
    client.delete_object(Bucket=bucket, Key="manuals/curing.md")
    summary = ingest_files(documents, index, embedder, make_splitter(embedder, 200, 40))
    assert summary.files == 5
    assert any(reason.startswith("curing.md: cannot be downloaded") for reason in summary.skipped)


def _one_error_line(result) -> str:
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_a_missing_bucket_is_one_sentence(bucket):
    line = _one_error_line(CliRunner().invoke(app, ["ingest", "s3://no-such-bucket/manuals"]))
    assert "The bucket 'no-such-bucket' of s3://no-such-bucket/manuals does not exist" in line
    line = _one_error_line(CliRunner().invoke(app, ["ingest", f"s3://{bucket}/no-such-prefix"]))
    assert f"No PDF, Markdown, HTML or text objects under s3://{bucket}/no-such-prefix" in line
    assert "names no bucket" in _one_error_line(CliRunner().invoke(app, ["ingest", "s3:///manuals"]))


def test_no_credentials_is_one_sentence(bucket, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)  # an ECS task's role
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    line = _one_error_line(CliRunner().invoke(app, ["ingest", f"s3://{bucket}/manuals"]))
    assert f"No AWS credentials to read s3://{bucket}/manuals" in line


@pytest.mark.parametrize("spec", ["0/2", "3/2", "x/y", "1/0", "1"])
def test_a_bad_shard_is_one_sentence_naming_it(spec):
    line = _one_error_line(CliRunner().invoke(app, ["ingest", "docs", "--shard", spec]))
    assert f"--shard '{spec}' is not I/N" in line
    with pytest.raises(ConfigError):
        parse_shard(spec)


def test_every_name_belongs_to_exactly_one_shard_whatever_else_is_in_the_set():
    names = [f"folder/document-{number}.pdf" for number in range(300)]
    for count in (1, 2, 3, 7):
        shards = [parse_shard(f"{number}/{count}") for number in range(1, count + 1)]
        owners = [[shard.number for shard in shards if shard.holds(name)] for name in names]
        assert all(len(owner) == 1 for owner in owners)
        sizes = [sum(owner == [number] for owner in owners) for number in range(1, count + 1)]
        assert min(sizes) > len(names) / count / 2, sizes
    # Pinned: workers of one run must agree, so the hash may not change between versions.
    assert [parse_shard(f"{n}/3").holds("curing.md") for n in (1, 2, 3)] == [False, True, False]


def _sources() -> set[str]:
    """The documents the CLI's index holds."""
    index = make_index(get_settings())
    try:
        return set(index.sources())
    finally:
        index.close()
