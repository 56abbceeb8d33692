"""The manifest and the dataset card that travel with every export.

The manifest is written last: its presence marks an export as complete, so a reader that lists
exports looks for `manifest.json` and ignores anything without one.
"""

import json
from pathlib import Path

from pipeline.export.build import BuildSummary
from pipeline.export.lengths import kto_weights

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
CARD = "README.md"

_DESCRIPTIONS = {
    "sft": "prompt/completion: users' corrected answers and answers rated 4-5 (SFTTrainer).",
    "preference": "prompt/chosen/rejected: a correction over the answer it corrects, and a higher- over a "
    "lower-rated answer to the same question (DPOTrainer).",
    "reward": "chosen/rejected with the prompt inside both (implicit prompt), from the same pairs (RewardTrainer).",
    "kto": "prompt/completion/label: true for ratings 4-5 and corrections, false for 1-2 (KTOTrainer).",
    "ratings": "prompt/completion/score/note: every rated answer with its 1-5 score, to use scores as rewards "
    "directly or to check an AI judge against people.",
}


def manifest(summary: BuildSummary, export_id: str, details: dict) -> dict:
    """Everything a consumer needs to trust and trace the export; `details` names source, filters, window."""
    return {
        "schema_version": SCHEMA_VERSION,
        "export_id": export_id,
        **details,
        "items": summary.items,
        "duplicates_dropped": summary.duplicates_dropped,
        "counts": summary.counts,
        "files": summary.files,
        "tokens": {
            "tokenizer": details["options"]["tokenizer"] or "SmolLM2-135M-Instruct (packaged)",
            "max_tokens": details["options"]["max_tokens"] or None,
            "lengths": summary.lengths,
            "rows_trimmed": summary.rows_trimmed,
            "passages_dropped": summary.passages_dropped,
            "rows_too_long": summary.rows_too_long,
        },
        "kto_balance": kto_weights(summary.kto["desirable"], summary.kto["undesirable"]),
    }


def write_manifest(directory: Path, content: dict) -> None:
    (directory / MANIFEST).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_card(directory: Path, content: dict) -> None:
    """A Hugging Face dataset card: its `configs` header lets `load_dataset(DIR, "sft")` find the files."""
    (directory / CARD).write_text(_card_text(content), encoding="utf-8")


def _card_text(content: dict) -> str:
    files = content["files"]
    header = ["---", "configs:"]
    for name in content["counts"]:
        paths = sorted(path for path in files if path.startswith(f"{name}/"))
        if not paths:
            continue
        header += [f"- config_name: {name}", "  data_files:"]
        header += [f"  - split: {Path(path).stem}\n    path: {path}" for path in paths]
    header.append("---")
    rows = [
        f"| {name} | {splits['train']} | {splits['validation']} | {_DESCRIPTIONS[name]} |"
        for name, splits in content["counts"].items()
    ]
    body = [
        f"# Plumbline feedback export {content['export_id']}",
        "",
        "Users' ratings (1-5), notes and corrected answers on Plumbline's answers, in TRL's conversational "
        "dataset formats. Each prompt is the single user message the model answered: the retrieved passages, "
        "each labelled `source – page N`, then the standalone question.",
        "",
        "| dataset | train | validation | contents |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Exported {content['created_at']} from {json.dumps(content['source'])}; "
        f"feedback received from {content['window']['start'] or 'the beginning'} to {content['window']['end']}.",
        f"Contact details redacted: {'yes' if content['options']['redact'] else 'no'}. "
        "Train and validation are split by groups of near-identical questions (the same words once case and "
        "punctuation are ignored, or a close rewording with the same numbers), so no question is in both; "
        "exact duplicate rows are dropped.",
        "",
        *_tokens_text(content["tokens"]),
        *_kto_text(content["kto_balance"]),
        "```python",
        "from datasets import load_dataset",
        'sft = load_dataset("path/to/this/export", "sft")',
        "```",
        "",
        "`manifest.json` lists every file with its row count and sha256, the filters and the watermark. It is "
        "written last: an export folder (or S3 prefix) without it is incomplete and must be ignored.",
        "",
    ]
    return "\n".join(header + body)


def _tokens_text(tokens: dict) -> list[str]:
    """Row lengths in the target model's tokens, and what was trimmed to fit its max_length."""
    rows = [
        f"| {name} | {p['prompt']['p50']} / {p['prompt']['p95']} / {p['prompt']['max']} | "
        f"{p['completion']['p50']} / {p['completion']['p95']} / {p['completion']['max']} |"
        for name, p in tokens["lengths"].items()
    ]
    limit = tokens["max_tokens"]
    trimmed = sum(tokens["rows_trimmed"].values())
    fit = (
        f"Prompts were fitted to {limit} tokens with the completion: {trimmed} rows lost "
        f"{tokens['passages_dropped']} passages in all (their last, uncited ones; column `passages_dropped`), "
        f"and {sum(tokens['rows_too_long'].values())} rows did not fit even so and were left out "
        f"({json.dumps(tokens['rows_too_long'])})."
        if limit
        else "No length limit was applied (`--max-tokens`): set the trainer's `max_length` above the longest row."
    )
    return [
        f"Lengths in tokens of {tokens['tokenizer']}, with its chat template, as the trainer counts them "
        "(p50 / p95 / max):",
        "",
        "| dataset | prompt | completion |",
        "|---|---|---|",
        *rows,
        "",
        fit,
        "",
    ]


def _kto_text(balance: dict) -> list[str]:
    """The kto train split's balance, and the KTOConfig weights TRL suggests for it."""
    text = f"KTO train split: {balance['desirable']} desirable, {balance['undesirable']} undesirable rows."
    if "desirable_weight" in balance:
        low, high = balance["desirable_weight"]
        under_low, under_high = balance["undesirable_weight"]
        text += (
            f" TRL suggests `desirable_weight` in [{low}, {high}] or `undesirable_weight` in "
            f"[{under_low}, {under_high}] (one of the two, the other left at 1), so that desirable_weight x "
            "desirable / (undesirable_weight x undesirable) is between 1 and 4/3."
        )
    return [text, ""]
