"""Seconds per training step and peak memory (RSS) of each `plumb train` job on this machine, with
the packaged models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2) and the default `cpu` LoRA preset.

    .venv/bin/python bench/bench_training.py            # every job, 2 steps each
    .venv/bin/python bench/bench_training.py --steps 4 --jobs sft dpo
    .venv/bin/python bench/bench_training.py --export EXPORT_DIR   # an export made before

The export is the training tests' (tests/training_factory.py: two questions, answered well and
badly, corrected), made by the real export job from DynamoDB Local; batches of 2 rows of about 150
tokens. Each job runs in a process of its own, so its peak RSS is its own (model, optimizer,
trainer); seconds per step is TRL's train_runtime over the steps, model loading left out. GRPO is
rewarded by the human score and generates 2 answers of up to 32 tokens per prompt.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JOBS = ("sft", "reward", "dpo", "kto", "grpo")


def make_export(out: Path) -> Path:
    """The training tests' export, from DynamoDB Local."""
    import os

    from pipeline.feedback.dynamo import create_tables
    from pipeline.feedback.local_dynamo import LocalDynamo
    from pipeline.settings import get_settings
    from tests.training_factory import training_export

    with LocalDynamo() as local:
        os.environ["PLUMB_DYNAMODB_ENDPOINT"] = local.endpoint
        get_settings.cache_clear()
        create_tables(get_settings())
        return training_export(get_settings(), out)


def train_once(job: str, export: str, steps: int) -> None:
    """Run one job (in this process) and print its figures as JSON."""
    from pipeline.training import dpo, grpo, kto, reward, sft

    trl = {"max_steps": steps, "max_length": 512, "per_device_train_batch_size": 2}
    config = {
        "sft": lambda: sft.SftConfig(export, trl=trl),
        "reward": lambda: reward.RewardJobConfig(export, trl=trl),
        "dpo": lambda: dpo.DpoConfig(export, trl=trl),
        "kto": lambda: kto.KtoConfig(export, trl=trl),
        # GRPO has no max_length: prompts are given whole, completions cut at max_completion_length.
        "grpo": lambda: grpo.GrpoConfig(export, trl={"max_steps": steps, "max_completion_length": 32}),
    }[job]()
    module = {"sft": sft, "reward": reward, "dpo": dpo, "kto": kto, "grpo": grpo}[job]
    version = module.main(config)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    print(json.dumps({"seconds_per_step": version.metrics["train_runtime"] / steps, "peak_rss_mb": peak_kb / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="Training steps per job.")
    parser.add_argument("--jobs", nargs="+", choices=JOBS, default=list(JOBS))
    parser.add_argument("--one", choices=JOBS, help=argparse.SUPPRESS)  # the child process's job
    parser.add_argument("--export", help="Use this export (tests/training_factory.py's) instead of making one.")
    args = parser.parse_args()
    if args.one:
        train_once(args.one, args.export, args.steps)
        return
    with tempfile.TemporaryDirectory(prefix="plumb-bench-training-") as scratch:
        export = args.export or make_export(Path(scratch) / "exports")
        print(f"{'job':<8}{'s/step':>10}{'peak RSS MB':>14}")
        for job in args.jobs:
            child = subprocess.run(
                [sys.executable, __file__, "--one", job, "--export", str(export), "--steps", str(args.steps)],
                capture_output=True,
                text=True,
            )
            if child.returncode:
                print(f"{job:<8} failed:\n{child.stderr[-2000:]}")
                continue
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"{job:<8}{figures['seconds_per_step']:>10.1f}{figures['peak_rss_mb']:>14.0f}")

if __name__ == "__main__":
    main()
