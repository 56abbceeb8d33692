"""Judgements per minute against vLLM on the CPU with 1 and 8 requests in flight, and of the
in-process demo judge, on the same turns.

    .venv/bin/python bench/bench_judge.py                   # starts vLLM with scripts/vllm_cpu.sh
    .venv/bin/python bench/bench_judge.py --vllm-url URL    # a running server of the packaged model

The turns are the export tests' seeded answers (a question, one cited passage, an answer), judged
against a correction, as `plumb judge` asks; the judge model is the packaged SmolLM2 in both cases,
so the figures compare serving paths, not judges. Needs `bash scripts/vllm_cpu.sh install` for the
vLLM part. Results also go to bench/results/judge.json.
"""

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_llm import SERVED_NAME, vllm_server  # noqa: E402
from pipeline.judge.judge import Judge, JudgeFailed, Reference, make_judge  # noqa: E402
from pipeline.llm.local_model import prepare_local_model  # noqa: E402
from pipeline.settings import get_settings  # noqa: E402
from tests.export_factory import CORRECTION, SEEDS, make_pair  # noqa: E402


def rate(judge: Judge, turns: list, concurrency: int) -> dict:
    """Judge every turn with `concurrency` requests in flight; judgements per minute and failures."""
    reference = Reference(CORRECTION, "correction")

    def one(turn) -> bool:
        try:
            judge.score(turn, reference)
            return True
        except JudgeFailed:
            return False

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = list(pool.map(one, turns))
    seconds = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "turns": len(turns),
        "failed": done.count(False),
        "seconds": round(seconds, 1),
        "per_minute": round(len(turns) / seconds * 60, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vllm-url", help="Use this running server (serving the model as 'smollm2').")
    parser.add_argument("--turns", type=int, default=16, help="Turns judged per run.")
    args = parser.parse_args()
    turns = [make_pair(SEEDS[n % len(SEEDS)])[0] for n in range(args.turns)]
    settings = get_settings()
    model_dir = prepare_local_model(settings.models_dir)
    results = {"local demo judge": rate(make_judge(settings), turns[:4], 1)}

    def endpoint(url: str) -> Judge:
        update = {"judge_backend": "openai", "judge_base_url": url, "judge_model": SERVED_NAME}
        return make_judge(settings.model_copy(update=update))

    def measure(url: str) -> None:
        judge = endpoint(url)
        judge.score(turns[0], Reference(CORRECTION, "correction"))  # warm up
        for concurrency in (1, 8):
            results[f"vllm-cpu, {concurrency} in flight"] = rate(judge, turns, concurrency)

    if args.vllm_url:
        measure(args.vllm_url)
    else:
        with vllm_server(model_dir) as url:
            measure(url)
    for name, figures in results.items():
        print(
            f"{name:24} {figures['per_minute']:>7} judgements/min ({figures['turns']} turns in "
            f"{figures['seconds']} s, {figures['failed']} failed)"
        )
    out = ROOT / "bench" / "results" / "judge.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
