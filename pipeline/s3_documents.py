"""Documents in S3: `plumb ingest s3://bucket/prefix`.

The prefix is a folder: every object below it of a known type is a document named by its key below
the prefix (`s3://bucket/docs` gives `prices.md` and `sub/x.md`), after the collection name if one is
given, by the rule that names the files of a local folder (`documents.find_files`), so a set in S3
and a local copy of it are the same documents. A URL that names one object names it by the last
part of its key, as a file given alone is named.

Listing is paged (S3 returns at most 1,000 keys a call) and downloads nothing: an object's ETag,
which S3 changes whenever the object's content changes, is the document's version, so a re-run
passes over unchanged documents without fetching them. A document is downloaded to a temporary file
only when it is read, and the file is removed once it is read. Endpoint, region and credentials
come from the standard AWS configuration (AWS_ENDPOINT_URL_S3 points at an S3-compatible store), as
for `plumb export`.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from boto3.session import Session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from pipeline.documents import SUFFIXES, Document, read_document
from pipeline.errors import IngestError


@dataclass(frozen=True)
class S3Document:
    """One object to ingest (an `ingest.DocumentFile`)."""

    bucket: str
    key: str
    source: str
    etag: str
    client: Any = field(repr=False, compare=False)  # a boto3 S3 client

    def version(self) -> str:
        return f"etag:{self.etag}"

    def read(self, ocr: bool) -> Document:
        """Download the object to a temporary file and read it (`documents.read_document`);
        IngestError when it cannot be downloaded or read."""
        with tempfile.TemporaryDirectory(prefix="plumb-s3-") as folder:
            # Named by suffix only: the reader picks the format by it, and a key may be too long for a file name.
            path = Path(folder) / f"document{PurePosixPath(self.key).suffix}"
            try:
                self.client.download_file(self.bucket, self.key, str(path))
            except (BotoCoreError, ClientError) as exc:
                raise IngestError(f"{self.source}: cannot be downloaded from s3://{self.bucket}/{self.key} ({exc}).") from exc
            return read_document(path, ocr, self.source)

    def data(self) -> bytes:
        """The object's bytes, fetched again for the store of originals (the reader's copy was a
        temporary file); IngestError when they cannot be had."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise IngestError(f"cannot be downloaded from s3://{self.bucket}/{self.key} ({exc})") from exc


def is_s3_url(text: str) -> bool:
    return text.startswith("s3://")


def make_s3_client() -> Any:
    """A boto3 S3 client from the standard AWS configuration as it is now (a session of its own:
    boto3's default session keeps the credentials it found first); IngestError when that
    configuration is broken (a profile that does not exist, say)."""
    try:
        return Session().client("s3")
    except BotoCoreError as exc:
        raise IngestError(f"The AWS configuration cannot make an S3 client ({exc}); check AWS_PROFILE and ~/.aws.") from exc


def list_documents(url: str, client: Any, collection: str = "") -> list[S3Document]:
    """Every document under `url` (s3://bucket/prefix), in key order, its name starting with
    `collection` when one is given (`specs/prices.md`). IngestError, in one sentence
    that says what to check, when the URL names no bucket, the bucket cannot be listed (missing, no
    credentials, access denied, S3 unreachable) or nothing readable lies under the prefix."""
    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    if not bucket:
        raise IngestError(f"{url!r} names no bucket: write it as s3://bucket/prefix.")
    collection = collection.strip("/")
    named = f"{collection}/" if collection else ""
    documents = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                source = _source(item["Key"], prefix)
                if source:
                    documents.append(S3Document(bucket, item["Key"], named + source, item["ETag"], client))
    except NoCredentialsError as exc:
        raise IngestError(
            f"No AWS credentials to read {url}: run with an IAM role, or set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "NoSuchBucket":
            raise IngestError(f"The bucket {bucket!r} of {url} does not exist: check its name and the AWS account.") from exc
        raise IngestError(
            f"S3 refused to list {url} ({error.get('Code')}: {error.get('Message')}); check the credentials and "
            "the bucket's policy."
        ) from exc
    except BotoCoreError as exc:
        raise IngestError(f"Cannot list {url} ({exc}); check the network and AWS_ENDPOINT_URL_S3.") from exc
    if not documents:
        raise IngestError(f"No PDF, Markdown, HTML or text objects under {url}; check the prefix.")
    return documents


def _source(key: str, prefix: str) -> str:
    """The source name of `key` listed under `prefix`; "" for keys that are not documents below it:
    folder markers, other types, hidden files and folders (as a local folder's are left out), and
    `docs-old/x.md` under `docs`."""
    if key == prefix:
        return PurePosixPath(key).name
    if prefix and not key.startswith(prefix + "/"):
        return ""
    below = PurePosixPath(key[len(prefix) + 1 :] if prefix else key)
    hidden = any(part.startswith(".") for part in below.parts)
    if key.endswith("/") or hidden or below.suffix.lower() not in SUFFIXES:
        return ""
    return below.as_posix()
