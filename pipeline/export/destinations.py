"""Where an export is published: a local directory or an S3 prefix, never half-written.

An export is built in a staging directory and published in one step at the end. Locally that step
is a rename within the output directory, so a reader sees either nothing or the whole export. On S3
every data file is uploaded first and `manifest.json` last: the manifest marks a complete export,
and a failed upload removes what it had put there.
"""

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pipeline.export.card import MANIFEST
from pipeline.export.errors import ExportFailed

STAGING_PREFIX = ".partial-"
OWNER = ".owner"  # in a staging folder: "<host> <pid>" of the export building it


@dataclass(frozen=True)
class LocalDestination:
    root: Path

    @property
    def name(self) -> str:
        """The destination as the watermark is keyed: the same folder whatever the working directory."""
        return str(self.root.resolve())

    def staging(self, export_id: str) -> Path:
        # Staged inside the output directory so publishing is a rename on one filesystem.
        self._remove_abandoned()
        path = self.root / f"{STAGING_PREFIX}{export_id}"
        path.mkdir(parents=True)
        (path / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}", encoding="utf-8")
        return path

    def publish(self, staging: Path, export_id: str) -> str:
        (staging / OWNER).unlink()
        final = self.root / export_id
        staging.rename(final)
        return str(final)

    def _remove_abandoned(self) -> None:
        """Remove the staging folders of exports killed before they could clean up (`kill -9`, a lost
        machine): those whose owner ran on this host and is no longer running. Another host's
        staging, or a live export's, is left alone."""
        for owner in self.root.glob(f"{STAGING_PREFIX}*/{OWNER}"):
            host, _, pid = owner.read_text(encoding="utf-8").partition(" ")
            if host == socket.gethostname() and not _running(int(pid)):
                shutil.rmtree(owner.parent, ignore_errors=True)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def manifests(self) -> Iterator[dict]:
        """The manifest of every complete export published here, in no particular order."""
        for path in self.root.glob(f"*/{MANIFEST}"):
            if not path.parent.name.startswith(STAGING_PREFIX):
                yield json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class S3Destination:
    bucket: str
    prefix: str

    @property
    def name(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def staging(self, export_id: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"plumb-export-{export_id}-"))

    def publish(self, staging: Path, export_id: str) -> str:
        import boto3
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        # Endpoint, region and credentials come from the standard AWS configuration
        # (AWS_ENDPOINT_URL_S3 points at an S3-compatible store).
        client = boto3.client("s3")
        base = f"{self.prefix}/{export_id}" if self.prefix else export_id
        files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != MANIFEST)
        uploaded: list[str] = []
        try:
            for path in [*files, staging / MANIFEST]:
                key = f"{base}/{path.relative_to(staging).as_posix()}"
                client.upload_file(str(path), self.bucket, key)
                uploaded.append(key)
        except (Boto3Error, BotoCoreError, ClientError) as error:
            _delete_quietly(client, self.bucket, uploaded)
            raise ExportFailed(
                f"Uploading the export to s3://{self.bucket}/{base} failed ({error}); nothing was published. "
                "Check the bucket, the credentials and the S3 endpoint, then run the export again."
            ) from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return f"s3://{self.bucket}/{base}"

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def manifests(self) -> Iterator[dict]:
        """The manifest of every complete export published here: one listing of the export folders,
        then one read per folder (a folder without a manifest is an upload that failed)."""
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client("s3")
        prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            ):
                for folder in page.get("CommonPrefixes", []):
                    try:
                        body = client.get_object(Bucket=self.bucket, Key=f"{folder['Prefix']}{MANIFEST}")["Body"]
                    except client.exceptions.NoSuchKey:
                        continue
                    yield json.loads(body.read())
        except (BotoCoreError, ClientError) as error:
            raise ExportFailed(
                f"Listing the exports in {self.name} failed ({error}): check the bucket, the credentials "
                "and the S3 endpoint, then run the export again."
            ) from error


Destination = LocalDestination | S3Destination


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def published_end(destination: Destination, key: str) -> str | None:
    """The end (ISO time) of the newest window published to `destination` by the stream `key`: what
    the watermark should say even if storing it failed after publishing. None when none was."""
    ends = [
        manifest["window"]["end"]
        for manifest in destination.manifests()
        if (manifest.get("watermark") or {}).get("key") == key
    ]
    return max(ends, default=None)


def destination_for(out: str) -> Destination:
    """`out` is a directory or s3://bucket/prefix."""
    parsed = urlparse(out)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ExportFailed(f"The output {out!r} names no bucket: write it as s3://bucket/prefix.")
        return S3Destination(parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ExportFailed(f"The output {out!r} is neither a directory nor s3://bucket/prefix.")
    if Path(out).exists() and not Path(out).is_dir():
        raise ExportFailed(f"The output {out!r} is a file: give a directory (created if missing) or s3://bucket/prefix.")
    return LocalDestination(Path(out))


def recent_exports(root: Path, limit: int = 20) -> list[dict]:
    """Manifests of the complete exports in a local output directory, newest first."""
    return sorted(LocalDestination(root).manifests(), key=lambda m: m["created_at"], reverse=True)[:limit]


def _delete_quietly(client, bucket: str, keys: list[str]) -> None:
    """Best effort: a failure here leaves objects that have no manifest, which readers ignore."""
    try:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk]})
    except Exception:  # noqa: BLE001 - the upload error is the one to report
        pass
