"""Seconds per training step and peak GPU memory of the LoRA presets on one CUDA GPU, at the shapes
the product trains: SmolLM2-135M (the packaged default) and Mistral-7B (the production chat model).

    python bench/bench_training_gpu.py --smollm2-config DIR [--steps 6] [--out FILE.json]

DIR holds SmolLM2's config.json and tokenizer (the packaged model's folder without its weights).
Weights are random: a training step costs the same whatever the weights hold, and a GPU machine
that cannot fetch Mistral's 14 GB still measures its shape (Mistral-7B-v0.3's published config,
with SmolLM2's tokenizer and vocabulary, 49,152 instead of 32,768 rows: 2% more parameters). Rows
are as long as the sample export's (prompt about 1,100 tokens, answer about 100: README's length
table), so the figures are per step of real length, not of toy rows.

It drives TRL's SFT, DPO and GRPO trainers with the presets of pipeline/training/lora.py; the
`plumb train` jobs add reading an export and logging, not GPU work. The first step (CUDA warm-up)
is left out of the median.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.training.lora import lora_config  # noqa: E402

# Mistral-7B-Instruct-v0.3's config.json (architecture fields), as published with the model.
MISTRAL_7B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
}
PROMPT_WORDS = 800  # about 1,100 SmolLM2 tokens of specification text
ANSWER_WORDS = 70  # about 100 tokens
RUNS = (  # (model, trainer, LoRA preset, batch size)
    ("smollm2-135m", "sft", "cpu", 4),
    ("smollm2-135m", "dpo", "cpu", 4),
    ("smollm2-135m", "grpo", "pilot-rl", 4),
    ("mistral-7b", "sft", "pilot-sft", 1),
    ("mistral-7b", "dpo", "pilot-rl", 1),
)


def text(words: int, seed: int) -> str:
    vocabulary = "beam load column footing steel bolt plate weld shear moment deflection span concrete".split()
    return " ".join(vocabulary[(seed * 7 + i * 3) % len(vocabulary)] for i in range(words))


def rows(trainer: str, n: int) -> list[dict]:
    out = []
    for i in range(n):
        prompt = [{"role": "user", "content": text(PROMPT_WORDS, i)}]
        if trainer == "sft":
            out.append({"messages": prompt + [{"role": "assistant", "content": text(ANSWER_WORDS, i + 1)}]})
        elif trainer == "dpo":
            out.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": text(ANSWER_WORDS, i + 1)}],
                    "rejected": [{"role": "assistant", "content": text(ANSWER_WORDS, i + 2)}],
                }
            )
        else:
            out.append({"prompt": prompt})
    return out


def model(name: str, smollm2: Path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(smollm2)
    if name == "mistral-7b":
        for key, value in MISTRAL_7B.items():
            setattr(config, key, value)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)


def run(name: str, trainer: str, preset: str, batch: int, steps: int, smollm2: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback

    import trl

    step_ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            step_ends.append(time.perf_counter())

    torch.cuda.reset_peak_memory_stats()
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    common = {
        "output_dir": tempfile.mkdtemp(),
        "max_steps": steps,
        "per_device_train_batch_size": batch,
        "bf16": True,
        "gradient_checkpointing": name == "mistral-7b",
        "report_to": [],
        "logging_steps": 1,
        "save_strategy": "no",
    }
    data = Dataset.from_list(rows(trainer, batch * steps * 2))
    if trainer == "sft":
        args, cls, extra = trl.SFTConfig(max_length=2048, **common), trl.SFTTrainer, {}
    elif trainer == "dpo":
        args, cls, extra = trl.DPOConfig(max_length=2048, **common), trl.DPOTrainer, {}
    else:
        args = trl.GRPOConfig(num_generations=4, max_completion_length=128, **common)
        cls, extra = trl.GRPOTrainer, {"reward_funcs": lambda completions, **_: [float(len(c)) for c in completions]}
    started = time.perf_counter()
    job = cls(
        model=model(name, smollm2),
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora_config(preset, "CAUSAL_LM"),
        callbacks=[Clock()],
        **extra,
    )
    step_ends.append(time.perf_counter())
    job.train()
    durations = [b - a for a, b in zip(step_ends, step_ends[1:])]
    losses = [log["loss"] for log in job.state.log_history if "loss" in log]
    return {
        "model": name,
        "trainer": trainer,
        "lora": preset,
        "batch": batch,
        "setup_s": round(step_ends[0] - started, 1),
        "seconds_per_step": round(statistics.median(durations[1:] or durations), 3),
        "first_step_s": round(durations[0], 2),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)] if losses else None,
        "gpu": torch.cuda.get_device_name(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smollm2-config", type=Path, required=True, help="SmolLM2's config.json and tokenizer.")
    parser.add_argument("--steps", type=int, default=6, help="Training steps per run.")
    parser.add_argument("--out", type=Path, help="Also write the figures here as JSON.")
    args = parser.parse_args()
    results = []
    for name, trainer, preset, batch in RUNS:
        try:
            result = run(name, trainer, preset, batch, args.steps, args.smollm2_config)
        except Exception as error:  # one failed run must not hide the others' figures
            result = {"model": name, "trainer": trainer, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
