"""Training where the export is in S3 (the training job on AWS): the real export job publishes to
moto's S3 server, `plumb train` fetches it through its manifest and uploads the version back."""

import json

import boto3
import pytest

from pipeline.export.job import ExportConfig, main
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.training.data import ExportFolder, TrainingDataError
from pipeline.training.s3 import fetch_export, push_version
from pipeline.training.versions import TrainingFailed
from tests.export_factory import store_seeds
from tests.training_factory import TRAINING_SEEDS

BUCKET = "plumb-training"


@pytest.fixture
def s3(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3")
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    return client


def test_an_export_published_to_s3_is_fetched_whole_through_its_manifest(dynamo_settings, prepared_models, s3, tmp_path):
    store_seeds(DynamoFeedbackStore(dynamo_settings), TRAINING_SEEDS)
    result = main(ExportConfig(out=f"s3://{BUCKET}/exports", mode="all", settle_seconds=0), dynamo_settings)
    s3.put_object(Bucket=BUCKET, Key="exports/unrelated.txt", Body=b"not part of the export")

    folder = fetch_export(result.location, tmp_path / "fetched")
    export = ExportFolder.open(folder)
    assert folder.name == result.export_id and export.export_id == result.export_id
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(
        [*result.manifest["files"], "manifest.json"]
    )
    assert export.split("sft").hashes["train"] == result.manifest["files"]["sft/train.jsonl"]["sha256"]

    with pytest.raises(TrainingDataError, match=f"The export s3://{BUCKET}/exports/nothing-here could not be read"):
        fetch_export(f"s3://{BUCKET}/exports/nothing-here", tmp_path / "none")


def test_a_version_is_uploaded_file_by_file_and_a_failed_upload_is_named(s3, tmp_path):
    folder = tmp_path / "dpo-20260101-000000"
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    (folder / "plumb_model.json").write_text(json.dumps({"schema": "plumb-model-v1"}))

    assert push_version(folder, f"s3://{BUCKET}/model-versions/") == f"s3://{BUCKET}/model-versions/dpo-20260101-000000"
    stored = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="model-versions/")["Contents"])
    assert stored == [
        "model-versions/dpo-20260101-000000/adapter/adapter_config.json",
        "model-versions/dpo-20260101-000000/plumb_model.json",
    ]
    with pytest.raises(TrainingFailed, match="Uploading dpo-20260101-000000 to s3://no-such-bucket/v/dpo-20260101-000000 failed"):
        push_version(folder, "s3://no-such-bucket/v")
