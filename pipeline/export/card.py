"""The manifest and the dataset card that travel with every export.

The manifest is written last: its presence marks an export as complete, so a reader that lists
exports looks for `manifest.json` and ignores anything without one.
"""

import json
from pathlib import Path

from pipeline.export.build import BuildSummary
from pipeline.export.formats import EXCLUSIONS
from pipeline.export.lengths import kto_weights

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
CARD = "README.md"

_DESCRIPTIONS = {
    "sft": "prompt/completion: users' corrected answers and answers rated 4-5 (SFTTrainer).",
    "preference": "prompt/chosen/rejected: a correction over the answer it corrects, and the best-rated answer "
    "to a prompt over each lower-rated answer to the very same prompt (DPOTrainer).",
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
        "not_matched": summary.not_matched,
        "excluded": summary.excluded,
        "supersedes": summary.supersedes,
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
        "ai_labels": summary.ai_labels,
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
        "dataset formats. Each prompt is exactly what the model was sent for the answer: the earlier questions and "
        "answers of the conversation that the chain kept, as user and assistant messages, then one user message "
        "with the retrieved passages, each labelled with where it lies (`source – page N`, "
        "`source – page iv (PDF page 6)` or, for Markdown and HTML, `source – heading path`), and the question as typed.",
        "",
        "| dataset | train | validation | contents |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Exported {content['created_at']} from {json.dumps(content['source'])}; "
        f"feedback received from {content['window']['start'] or 'the beginning'} to {content['window']['end']}: "
        f"{content['items']} items matched the filters ({json.dumps(content['filters'])}), "
        f"{content['not_matched']} did not.",
        f"Contact details redacted: {'yes' if content['options']['redact'] else 'no'}. "
        "Train and validation are split by groups of near-identical questions (the same words once case and "
        "punctuation are ignored, or a close rewording with the same numbers), so no question is in both. Every "
        "verdict gives its own rows: two users endorsing the same answer give two rows.",
        "",
        *_excluded_text(content["excluded"]),
        *_provenance_text(len(content["supersedes"])),
        *_ai_text(content["ai_labels"], content["filters"]),
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


def _excluded_text(excluded: dict[str, int]) -> list[str]:
    """Only model output is used as model output: what was left out, and why."""
    lines = [
        "## Left out",
        "",
        "Rated turns that give no row, by reason (a turn is counted once, under the first reason that applies):",
        "",
        "| reason | turns | why |",
        "|---|---|---|",
    ]
    lines += [f"| {reason} | {excluded.get(reason, 0)} | {why} |" for reason, why in EXCLUSIONS.items()]
    return [*lines, ""]


def _ai_text(counts: dict, filters: dict) -> list[str]:
    """AI labels (RLAIF), when this export holds or left out any."""
    if not (counts["ai"] or counts["sme"] or counts["review"] or counts["expert"] or counts["pairs"] or counts["not_matched"]
            or counts["below_agreement"] or counts["missing_turns"]):
        return []
    return [
        "## AI labels",
        "",
        f"`label_source` says who gave a row's label: `human` (a user's feedback), `ai` (the AI judge: "
        f"{counts['ai']} scored answers in `kto` and `ratings`, {counts['pairs']} pairwise verdicts in "
        f"`preference` and `reward`), `sme` ({counts['sme']} scores an expert overrode), `review` "
        f"({counts['review']} sampled transcripts whose reviewers' relevance ratings were consolidated, in `kto` "
        "and `ratings`: `user` is `review#<batch id>`, the score their median, the note how many rated it and "
        f"their agreement, the version the latest rating's time in milliseconds) or `expert` ({counts['expert']} "
        "answers of experts to escalated questions, chosen by them as training data, in `sft`: the prompt is the "
        "escalated turn's as the model was given it, the completion the expert's answer, `user` the expert). An AI or "
        "`sme` row's "
        "`user` is the judge (`<model>#<judge prompt version>`), its `feedback_version` 1 plus the version of the "
        "latest expert review, its `ratings` score the judge's (or expert's) half-point score and its note the "
        "judge's comment (or the expert's reason); a score of 3.5 and up is desirable in `kto`, 2 and below "
        "undesirable. Pairwise verdicts compare answers to the very same prompt "
        f"({counts['pairs_other_prompt']} that did not were left out). Left out by the filters: "
        f"{counts['not_matched']} labels and {counts['pairs_not_matched']} pairs; below the judge-agreement floor "
        f"({filters['min_judge_agreement']}): {counts['below_agreement']}; whose turn was not found: "
        f"{counts['missing_turns']}.",
        "",
    ]


def _provenance_text(superseding: int) -> list[str]:
    return [
        "## Provenance and assembling several exports",
        "",
        "Every `sft`, `kto` and `ratings` row names its turn and verdict: `turn_id`, `user` (who gave the verdict), "
        "`feedback_version`, `model_id` (the model that answered), `prompt_version`, `label_source` and "
        "`export_id`; `completion_source` says who wrote the completion: `model` (the answer as generated) or "
        "`correction` (the user's corrected answer) or `expert` (an expert's answer to an escalation). A `preference` or `reward` row compares two answers to one prompt: `pair` is `correction` "
        "(the user's correction, chosen, over the answer it corrects, rejected; one turn on both sides; "
        "`chosen_model_id` is empty as a person wrote it) or `rating` (the best-rated answer over a lower-rated "
        "one) or `judge` (the AI judge's pairwise verdict, a win in both orders); `chosen_turn_id`, `chosen_user`, `chosen_feedback_version`, `chosen_model_id` and the same for "
        "`rejected_` name both sides. TRL's trainers ignore these columns.",
        "",
        f"A user may change a verdict; this export names {superseding} verdict(s) that supersede an earlier "
        "version, listed under `supersedes` in `manifest.json` (turn, user, version, and `in_export`: false "
        "when the new verdict is not in this export because its filters leave it out): rows of a lower "
        "`feedback_version` for the same turn and user, in earlier exports, are out of date. An export with "
        "`--mode all` is a snapshot: the latest verdict of every turn and user. To assemble one training set "
        "from several incremental exports, take the exports of one stream only (the same `watermark.key` in "
        "their manifests: one output folder may hold several streams, say a `--rating 1` one and an "
        "unfiltered one, whose rows overlap), take the latest `feedback_version` per (`turn_id`, `user`) from "
        "their `ratings` files and their manifests' `supersedes` lists (every exported verdict has exactly one "
        "`ratings` row, while its latest version may give no `sft` or `kto` row, or be filtered out), then keep "
        "from every file only the rows of that version (a pair only when both its sides are the latest). "
        "Rating pairs are made within one export, so answers to one prompt rated in different windows are "
        "paired only by a `--mode all` export: take the `preference` and `reward` rows from one when you train.",
        "",
    ]


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
        f"Prompts were fitted to {limit} tokens with the completion: {trimmed} rows have a trimmed prompt, "
        f"the trimmed prompts lost {tokens['passages_dropped']} passages in all (their last, uncited ones; each "
        "row's `passages_dropped` says how many its prompt lost), "
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
