"""Time to first token and decoding speed of the app's LLM client, in-process and against vLLM on the CPU.

Both backends answer the same retrieval-style prompts (a few hundred tokens of cited context and a
question, as the chain builds them) through `make_llm`, greedily, so the figures compare the serving
paths rather than the answers.

    .venv/bin/python bench/bench_llm.py                      # starts vLLM with scripts/vllm_cpu.sh
    .venv/bin/python bench/bench_llm.py --vllm-url URL       # an already running server of the model

The vLLM part needs `bash scripts/vllm_cpu.sh install` first. Results also go to bench/results/llm.json.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from langchain_core.messages import HumanMessage

from pipeline.llm import make_llm
from pipeline.llm.local_model import prepare_local_model
from pipeline.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]
SERVED_NAME = "smollm2"

CONTEXT = """[1] specs/01_13_10_design_criteria.pdf – page 21
Live loads for pedestrian bridges shall be 90 psf (4.3 kPa) applied to the deck area, and the deflection
under pedestrian live load shall not exceed 1/360 of the span length. Where maintenance vehicles may use
the bridge, a single H10 truck shall also be considered, not acting together with the pedestrian load.

[2] specs/03_30_00_cast_in_place_concrete.pdf – page 7
Concrete for bridge decks shall have a minimum 28-day compressive strength of 5,000 psi, a maximum
water-cementitious materials ratio of 0.40 and an air content of 6 percent plus or minus 1.5 percent.
Curing shall continue for at least 7 days by wet burlap or an approved curing compound.

[3] specs/05_12_00_structural_steel.pdf – page 12
Structural steel shall conform to ASTM A709 Grade 50W. High-strength bolts shall be ASTM F3125 Grade
A325, Type 3, installed by the turn-of-nut method. All welds shall be made by certified welders to AWS D1.5.

[4] drawings/S-101_general_notes.pdf – page 1
Design wind speed is 115 mph, exposure C. Seismic design category B. Foundations bear on rock with an
allowable bearing pressure of 8 ksf as given in the geotechnical report dated 12 March.
"""

QUESTIONS = [
    "What live load must a pedestrian bridge deck be designed for, and what is the deflection limit?",
    "What concrete strength and curing are required for the bridge deck?",
    "Which bolts are specified for the structural steel, and how are they installed?",
]


def prompt(question: str) -> list[HumanMessage]:
    """One human turn, as the chain sends Mistral-7B-Instruct: instructions, cited passages, question."""
    return [
        HumanMessage(
            "Answer the question from the context only, and cite the document and page of each fact. "
            "If the context does not contain the answer, say the documents don't say.\n\n"
            f"Context:\n{CONTEXT}\nQuestion: {question}"
        )
    ]


@dataclass
class Timing:
    backend: str
    question: int
    input_tokens: int
    output_tokens: int
    first_token_s: float
    total_s: float

    @property
    def decode_tokens_per_s(self) -> float:
        """Output tokens after the first, over the time after the first."""
        return (self.output_tokens - 1) / max(self.total_s - self.first_token_s, 1e-9)


def time_answer(llm, backend: str, question: int) -> Timing:
    started = time.perf_counter()
    first = None
    answer = None
    for chunk in llm.stream(prompt(QUESTIONS[question])):
        if first is None and chunk.content:
            first = time.perf_counter() - started
        answer = chunk if answer is None else answer + chunk
    total = time.perf_counter() - started
    usage = answer.usage_metadata
    return Timing(backend, question, usage["input_tokens"], usage["output_tokens"], first or total, total)


def run(llm, backend: str, repeats: int) -> list[Timing]:
    """Warm up once, then time every question `repeats` times."""
    llm.invoke(prompt(QUESTIONS[0]))
    return [time_answer(llm, backend, q) for _ in range(repeats) for q in range(len(QUESTIONS))]


@contextmanager
def vllm_server(model_dir: Path) -> Iterator[str]:
    """Start vLLM with scripts/vllm_cpu.sh on a free port; yield its URL once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = Path(tempfile.mkdtemp(prefix="bench-vllm-")) / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                "bash",
                str(REPO / "scripts" / "vllm_cpu.sh"),
                "serve",
                str(model_dir),
                str(port),
                "--served-model-name",
                SERVED_NAME,
                "--dtype",
                "float32",
                "--max-model-len",
                "4096",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        started = time.monotonic()
        while True:
            if server.poll() is not None:
                raise SystemExit(f"vLLM exited with code {server.returncode}; its log is {log}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() - started > 600:
                    raise SystemExit(f"vLLM did not answer within 600 s; its log is {log}")
                time.sleep(0.5)
        print(f"vLLM answered {time.monotonic() - started:.0f} s after starting")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def summary(timings: list[Timing]) -> dict[str, float]:
    return {
        "first_token_s_median": statistics.median(t.first_token_s for t in timings),
        "decode_tokens_per_s_median": statistics.median(t.decode_tokens_per_s for t in timings),
        "input_tokens_mean": statistics.mean(t.input_tokens for t in timings),
        "output_tokens_mean": statistics.mean(t.output_tokens for t in timings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vllm-url", help="Use this running server (serving the model as 'smollm2').")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="Answer length cap for both backends.")
    parser.add_argument("--repeats", type=int, default=2, help="Times each question is asked per backend.")
    args = parser.parse_args()

    base = get_settings().model_copy(update={"max_new_tokens": args.max_new_tokens, "temperature": 0.0})
    model_dir = prepare_local_model(base.models_dir)
    local = make_llm(base.model_copy(update={"llm_backend": "local"}))
    timings = run(local, "local", args.repeats)
    del local

    def endpoint(url: str) -> Settings:
        return base.model_copy(update={"llm_backend": "openai", "llm_base_url": url, "llm_model": SERVED_NAME})

    if args.vllm_url:
        timings += run(make_llm(endpoint(args.vllm_url)), "vllm-cpu", args.repeats)
    else:
        with vllm_server(model_dir) as url:
            timings += run(make_llm(endpoint(url)), "vllm-cpu", args.repeats)

    results = {b: summary([t for t in timings if t.backend == b]) for b in ("local", "vllm-cpu")}
    for backend, figures in results.items():
        print(
            f"{backend:9} first token {figures['first_token_s_median']:.2f} s, "
            f"{figures['decode_tokens_per_s_median']:.1f} tokens/s decoding "
            f"({figures['input_tokens_mean']:.0f} tokens in, {figures['output_tokens_mean']:.0f} out, medians "
            f"of {len(QUESTIONS) * args.repeats})"
        )
    out = REPO / "bench" / "results" / "llm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": results, "runs": [asdict(t) for t in timings]}, indent=2))


if __name__ == "__main__":
    main()
