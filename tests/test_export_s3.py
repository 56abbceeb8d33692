"""Export to S3 and from a DynamoDB export in S3, against moto's S3 server over real HTTP
(AWS itself cannot run here) and DynamoDB Local."""

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from pipeline.errors import PlumbError
from pipeline.export.job import ExportConfig, main
from pipeline.export.watermark import Watermarks
from pipeline.feedback.dynamo import DynamoFeedbackStore
from tests.export_factory import follow_up_pair, store_seeds

BUCKET = "training-data"


@pytest.fixture
def s3(s3_server, monkeypatch):
    """An S3 client and the standard AWS settings that send the export's own S3 calls to the server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3")
    for bucket in client.list_buckets()["Buckets"]:
        objects = client.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])
        for item in objects:
            client.delete_object(Bucket=bucket["Name"], Key=item["Key"])
        client.delete_bucket(Bucket=bucket["Name"])
    client.create_bucket(Bucket=BUCKET)
    return client


def keys(client, prefix: str = "") -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def config(out: str, **options) -> ExportConfig:
    return ExportConfig(out=out, **{"settle_seconds": 0, "validation_fraction": 0.0, **options})


def test_export_to_s3_uploads_every_file_and_the_manifest(dynamo_settings, s3, tmp_path):
    store_seeds(DynamoFeedbackStore(dynamo_settings))
    result = main(config(f"s3://{BUCKET}/feedback/daily"), dynamo_settings)
    base = f"feedback/daily/{result.export_id}"
    assert result.location == f"s3://{BUCKET}/{base}"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{base}/manifest.json")["Body"].read())
    assert keys(s3) == sorted(
        [f"{base}/{name}" for name in manifest["files"]] + [f"{base}/README.md", f"{base}/manifest.json"]
    )
    for name, entry in manifest["files"].items():
        data = s3.get_object(Bucket=BUCKET, Key=f"{base}/{name}")["Body"].read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert manifest["watermark"]["destination"] == f"s3://{BUCKET}/feedback/daily"
    assert not any(Path(tmp_path).glob("**/.partial-*"))

    again = main(config(f"s3://{BUCKET}/feedback/daily"), dynamo_settings)
    assert again.location is None and keys(s3) == keys(s3, base)


def test_failed_upload_publishes_nothing_and_keeps_the_watermark(dynamo_settings, s3):
    store_seeds(DynamoFeedbackStore(dynamo_settings))
    with pytest.raises(PlumbError, match="nothing was published"):
        main(config("s3://no-such-bucket/feedback", mode="all"), dynamo_settings)
    # An incremental run reads the stream's published manifests first, so it stops before any work.
    with pytest.raises(PlumbError, match="^Listing the exports in s3://no-such-bucket/feedback failed"):
        main(config("s3://no-such-bucket/feedback"), dynamo_settings)
    assert Watermarks(dynamo_settings).get("s3://no-such-bucket/feedback") is None


def write_dynamodb_export(s3, dynamo_settings, table: str, export_id: str) -> str:
    """The table's items written the way DynamoDB's export to S3 writes them: gzipped DynamoDB-JSON
    lines under AWS/DynamoDB/<id>/data/, with manifest-files.json and manifest-summary.json."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamo_settings.dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    pages = client.get_paginator("scan").paginate(TableName=dynamo_settings.table_prefix + table)
    items = [item for page in pages for item in page["Items"]]
    base = f"exports/AWS/DynamoDB/{export_id}"
    halves = [items[: len(items) // 2], items[len(items) // 2 :]]
    files = []
    for number, half in enumerate(halves):
        key = f"{base}/data/part{number}.json.gz"
        body = gzip.compress("".join(json.dumps({"Item": item}) + "\n" for item in half).encode())
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        files.append({"itemCount": len(half), "md5Checksum": "", "etag": "", "dataFileS3Key": key})
    s3.put_object(Bucket=BUCKET, Key=f"{base}/manifest-files.json", Body="\n".join(json.dumps(f) for f in files))
    summary = {
        "version": "2020-06-30",
        "exportArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/export/{export_id}",
        "exportTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "exportType": "FULL_EXPORT",
        "outputFormat": "DYNAMODB_JSON",
        "itemCount": len(items),
    }
    s3.put_object(Bucket=BUCKET, Key=f"{base}/manifest-summary.json", Body=json.dumps(summary))
    return f"s3://{BUCKET}/{base}"


def test_reading_a_dynamodb_export_gives_the_same_datasets_as_reading_the_table(dynamo_settings, s3, tmp_path):
    store = DynamoFeedbackStore(dynamo_settings)
    pairs = store_seeds(store)
    turn, feedback = pairs[3]
    store.save_feedback(feedback.model_copy(update={"rating": 5, "note": "changed my mind", "version": 2}))
    follow_up, follow_up_feedback = follow_up_pair()
    store.save_turn(follow_up)
    store.save_feedback(follow_up_feedback)

    from_table = main(config(str(tmp_path / "table"), mode="all"), dynamo_settings)
    feedback_export = write_dynamodb_export(s3, dynamo_settings, "feedback", "01700000000000-aaaa")
    turns_export = write_dynamodb_export(s3, dynamo_settings, "turns", "01700000000000-bbbb")
    from_export = main(
        config(str(tmp_path / "export"), feedback_export=feedback_export, turns_export=turns_export), dynamo_settings
    )

    assert from_export.manifest["source"] == {
        "kind": "dynamodb-export",
        "feedback": feedback_export,
        "turns": turns_export,
    }
    assert from_export.manifest["feedback"]["versions_read"] == 8
    assert from_export.manifest["files"].keys() == from_table.manifest["files"].keys()
    for name in from_table.manifest["files"]:
        table_rows = (Path(from_table.location) / name).read_text().replace(from_table.export_id, "")
        assert (Path(from_export.location) / name).read_text().replace(from_export.export_id, "") == table_rows
    assert ["user", "assistant", "user"] in [
        [m["role"] for m in json.loads(line)["prompt"]]
        for line in (Path(from_export.location) / "sft/train.jsonl").read_text().splitlines()
    ], "the follow-up's history came through the S3 export"
    ratings = [
        json.loads(line) for line in (Path(from_export.location) / "ratings/train.jsonl").read_text().splitlines()
    ]
    assert ("changed my mind", 5) in [(r["note"], r["score"]) for r in ratings]

    rerun = main(
        config(str(tmp_path / "export"), feedback_export=feedback_export, turns_export=turns_export), dynamo_settings
    )
    assert rerun.location is None, "the watermark stops at the export's point in time"


def test_an_export_in_another_format_is_refused(dynamo_settings, s3, tmp_path):
    base = "exports/AWS/DynamoDB/01700000000000-cccc"
    s3.put_object(
        Bucket=BUCKET,
        Key=f"{base}/manifest-summary.json",
        Body=json.dumps({"exportType": "FULL_EXPORT", "outputFormat": "ION", "exportTime": "2025-01-01T00:00:00Z"}),
    )
    uri = f"s3://{BUCKET}/{base}"
    with pytest.raises(PlumbError, match="DynamoDB JSON"):
        main(config(str(tmp_path / "out"), mode="all", feedback_export=uri, turns_export=uri), dynamo_settings)
    with pytest.raises(PlumbError, match="manifest-summary.json"):
        main(
            config(str(tmp_path / "out"), mode="all", feedback_export=f"s3://{BUCKET}/nothing", turns_export=uri),
            dynamo_settings,
        )
