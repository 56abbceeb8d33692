"""Time to promote a trained version on vLLM on the CPU, and until the app answers with it.

A promote looks the version up in the registry (MLflow, a local sqlite store), loads its LoRA adapter
into the running vLLM server through the runtime LoRA API, and writes the live record (DynamoDB Local).
Each step is timed on its own, then the whole `promote`, then the first answer of a chain that follows
the live record (its record read included). The adapters are tiny LoRAs (r=8 on q_proj and v_proj of
the packaged SmolLM2, as the tests make them); each version is a new adapter, as after each training run.

    .venv/bin/python bench/bench_promote.py [--versions 3]

Needs `bash scripts/vllm_cpu.sh install` first. Results also go to bench/results/promote.json.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.feedback.dynamo import create_tables  # noqa: E402
from pipeline.feedback.local_dynamo import LocalDynamo  # noqa: E402
from pipeline.llm import make_llm  # noqa: E402
from pipeline.llm.local_model import prepare_local_model  # noqa: E402
from pipeline.models import register_version  # noqa: E402
from pipeline.models.live import LiveVersions, LiveWatch  # noqa: E402
from pipeline.models.promotion import promote  # noqa: E402
from pipeline.models.registry import get_version  # noqa: E402
from pipeline.models.serving import LiveChain, load_into_vllm, load_version, served_name, version_model_id  # noqa: E402
from pipeline.settings import Settings, get_settings  # noqa: E402
from tests.test_prompt_provenance import FixedRetriever  # noqa: E402
from tests.version_factory import LORA_RANK, make_adapter, version_folder  # noqa: E402

SERVED_NAME = "smollm2"


@contextmanager
def vllm_server(model_dir: Path) -> Iterator[str]:
    """vLLM with runtime LoRA loading on (VLLM_ALLOW_RUNTIME_LORA_UPDATING, --enable-lora), no adapter yet."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = Path(tempfile.mkdtemp(prefix="bench-promote-")) / "server.log"
    command = ["bash", str(REPO / "scripts" / "vllm_cpu.sh"), "serve", str(model_dir), str(port),
               "--served-model-name", SERVED_NAME, "--dtype", "float32", "--max-model-len", "4096",
               "--enable-lora", "--max-lora-rank", str(LORA_RANK)]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true"},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"vLLM exited with code {server.returncode}; its log is {log}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def seconds(step) -> tuple[float, object]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def measure(settings: Settings, model_dir: Path, versions: int) -> list[dict]:
    chain = LiveChain(
        make_llm(settings), FixedRetriever(), SERVED_NAME, 0.3, LiveWatch(LiveVersions(settings).read, ttl_s=0),
        lambda live: (load_version(live, settings), version_model_id(live.version, settings)),
    )  # fmt: skip
    chain.invoke("What is code 2?")  # warm the server and the client
    rows = []
    for seed in range(versions):
        adapter = make_adapter(model_dir, settings.data_dir / "adapters" / f"seed-{seed}", seed=seed)
        name = register_version(version_folder(settings.data_dir / "model-versions", adapter), settings)
        # The steps one by one, on a version of their own (vLLM loads an adapter once per name).
        lookup_s, version = seconds(lambda: get_version(name, settings))
        probe = f"probe-{seed}"
        load_s, _ = seconds(lambda: load_into_vllm(settings, probe, str(version.adapter)))
        record_s, _ = seconds(lambda: LiveVersions(settings, model=f"bench-{seed}").promote(name, "a", "b"))
        promote_s, _ = seconds(lambda: promote(name, settings))
        answer_s, answer = seconds(lambda: chain.invoke("What is code 2?"))
        assert answer.model_id == f"{name} on {SERVED_NAME}", answer.model_id
        rows.append(
            {"version": name, "served_as": served_name(name), "registry_lookup_s": lookup_s, "vllm_load_s": load_s,
             "record_write_s": record_s, "promote_s": promote_s, "first_answer_after_s": answer_s}
        )  # fmt: skip
        print(" · ".join(f"{key} {value:.3f}" if isinstance(value, float) else str(value) for key, value in rows[-1].items()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=3, help="Versions promoted one after the other.")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-promote-data-"))
    model_dir = prepare_local_model(get_settings().models_dir)
    with LocalDynamo() as dynamo, vllm_server(model_dir) as url:
        os.environ.update(
            PLUMB_DATA_DIR=str(data), PLUMB_DYNAMODB_ENDPOINT=dynamo.endpoint, PLUMB_LLM_BACKEND="openai",
            PLUMB_LLM_BASE_URL=url, PLUMB_LLM_MODEL=SERVED_NAME, PLUMB_TEMPERATURE="0", PLUMB_MAX_NEW_TOKENS="16",
        )  # fmt: skip
        get_settings.cache_clear()
        settings = get_settings()
        create_tables(settings)
        rows = measure(settings, model_dir, args.versions)
    summary = {
        key: {"median": statistics.median(row[key] for row in rows), "max": max(row[key] for row in rows)}
        for key in ("registry_lookup_s", "vllm_load_s", "record_write_s", "promote_s", "first_answer_after_s")
    }
    print(json.dumps(summary, indent=2))
    out = REPO / "bench" / "results" / "promote.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"measured_at": datetime.now(UTC).isoformat(), "rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
