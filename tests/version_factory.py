"""Trained version folders as `plumb train` writes them (the registry's contract), made without a
trainer: a LoRA adapter on the packaged SmolLM2 with random, strong weights (so its answers differ
from the base model's), its tokenizer, and a plumb_model.json."""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.models.manifest import SCHEMA

LORA_RANK = 8


def make_adapter(base: Path, destination: Path, seed: int = 0) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    config = LoraConfig(r=LORA_RANK, lora_alpha=256, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), config).save_pretrained(destination)
    AutoTokenizer.from_pretrained(base).save_pretrained(destination)
    return destination


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite store with its tables made: creating them takes seconds of migrations, so it is
    done once and each test gets a copy (`mlflow_store`)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}").search_registered_models()
    return path


@pytest.fixture
def mlflow_store(empty_mlflow_db: Path) -> Path:
    """This test's default MLflow store (<data_dir>/mlflow.db), empty and ready."""
    from pipeline.settings import get_settings

    path = get_settings().data_dir / "mlflow.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_mlflow_db, path)
    return path


@pytest.fixture(scope="session")
def tiny_adapter(local_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One adapter for the whole run; version folders get copies."""
    return make_adapter(local_model_dir, tmp_path_factory.mktemp("adapter") / "adapter")


def manifest(job: str = "sft", **overrides) -> dict:
    return {
        "schema": SCHEMA,
        "job": job,
        "base_model": "smollm2-135m-instruct",
        "export_id": "export-20261130-120000",
        "data_hashes": {"train": "a" * 64, "validation": "b" * 64},
        "config": {"learning_rate": 0.0002, "lora_r": LORA_RANK},
        "metrics": {"train_loss": 1.25, "eval_loss": 1.5},
        "mlflow_run_id": "0123456789abcdef",
        "created_at": datetime(2026, 11, 30, 12, tzinfo=UTC).isoformat(),
        **overrides,
    }


def version_folder(root: Path, adapter: Path | None, job: str = "sft", **overrides) -> Path:
    """A version folder under `root` named as the trainer names them; a reward version gets a
    `model/config.json` only (the registry reads no weights)."""
    folder = root / f"{job}-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"
    if job == "reward":
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "config.json").write_text("{}")
    else:
        shutil.copytree(adapter, folder / "adapter")
    (folder / "plumb_model.json").write_text(json.dumps(manifest(job, **overrides)))
    return folder
