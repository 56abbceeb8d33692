"""Exports read from S3 and versions written back, for training where the data is not on local disk
(the training job on AWS): an export is fetched through its manifest (the manifest names every file,
so nothing but the export is listed or read), a version is uploaded file by file, its lineage last,
so a folder with plumb_model.json in the bucket is complete. Endpoint, region and credentials come
from the standard AWS configuration (AWS_ENDPOINT_URL_S3 for an S3-compatible store)."""

import json
from pathlib import Path

from pipeline.export.card import MANIFEST
from pipeline.training.data import TrainingDataError
from pipeline.training.versions import LINEAGE, TrainingFailed


def split_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without trailing slash) of s3://bucket/prefix."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def fetch_export(url: str, into: Path) -> Path:
    """The export at s3://bucket/prefix/<export id> copied into `into/<export id>` (the files its
    manifest lists, then the manifest). Raises TrainingDataError naming what could not be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.s3_documents import make_s3_client

    bucket, prefix = split_url(url)
    client = make_s3_client()
    try:
        manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST}")["Body"].read())
        folder = into / manifest["export_id"]
        for relative in manifest["files"]:
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, f"{prefix}/{relative}", str(folder / relative))
        (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    except (BotoCoreError, ClientError, KeyError, json.JSONDecodeError) as error:
        raise TrainingDataError(f"The export {url} could not be read ({error}): is it an export's folder?") from error
    return folder


def push_version(folder: Path, url: str) -> str:
    """Upload the version `folder` to s3://bucket/prefix/<version name>/, plumb_model.json last;
    the URL it is at. Raises TrainingFailed when the upload fails (the local folder stays)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.s3_documents import make_s3_client

    bucket, prefix = split_url(url)
    base = f"{prefix}/{folder.name}" if prefix else folder.name
    files = sorted(path for path in folder.rglob("*") if path.is_file() and path.name != LINEAGE)
    client = make_s3_client()
    try:
        for path in [*files, folder / LINEAGE]:
            client.upload_file(str(path), bucket, f"{base}/{path.relative_to(folder).as_posix()}")
    except (Boto3Error, BotoCoreError, ClientError) as error:
        raise TrainingFailed(f"Uploading {folder.name} to s3://{bucket}/{base} failed ({error}); it stays in {folder}.") from error
    return f"s3://{bucket}/{base}"
