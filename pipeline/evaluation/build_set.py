"""`plumb eval build-set`: an evaluation file from the product's own data, the validation split of
one or more exports (`plumb export`).

A case is a validation `sft` row whose completion is a user's correction: the question as typed
(from the prompt's last line), the correction as the reference, and the source and page (or
section) of the first passage the correction cites as `[n]`. Rows that cannot make a standalone case
are left out and counted: a follow-up (its prompt holds earlier turns, so the question as typed
needs them), a correction that cites no passage, a question already taken.

No training question may enter the set, and that is checked, not assumed from the split: every
question of every train file of the exports given (all datasets) is compared with every case by the
export's own grouping rule (`pipeline.export.holdout`): equal once normalised, or citing the same
numbers with embeddings at least SIMILARITY_THRESHOLD alike. Any overlap refuses the whole set.
Rows carry the question as typed, not the condensed one the split grouped by, so a training
follow-up is compared by its typed words.
"""

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.embeddings import Embedder
from pipeline.errors import PlumbError
from pipeline.evaluation.evaluate import EvalCase
from pipeline.export.holdout import SIMILARITY_THRESHOLD, normalised
from pipeline.export.writers import sha256_of

MANIFEST = "manifest.json"
_PASSAGES, _QUESTION = "\n\nPassages:\n", "\n\nQuestion: "  # as pipeline.prompts.ANSWER_REQUEST writes them
_HEADER = re.compile(r"(?m)^\[(\d+)\] (.+)$")
_CITED = re.compile(r"\[(\d+)\]")
_PDF_PAGE = re.compile(r"^page .+ \(PDF page (\d+)\)$")
_PAGE = re.compile(r"^page (\d+)$")
_NUMBER = re.compile(r"\d+")


@dataclass
class BuiltSet:
    """The cases and what was left out, by reason; `train_questions` is how many distinct training
    questions they were checked against."""

    cases: list[EvalCase]
    left_out: Counter = field(default_factory=Counter)
    train_questions: int = 0


def build_eval_set(exports: list[Path], embedder: Embedder) -> BuiltSet:
    """The eval cases of the exports' validation splits, checked against their training questions.
    Raises PlumbError naming the folder or file for an export that cannot be read, and naming the
    overlapping questions when a case is a training question."""
    built = BuiltSet(cases=[])
    taken: set[str] = set()
    train: set[str] = set()
    for folder in exports:
        for dataset, split, rows in _files(folder):
            if split == "train":
                train.update(question for row in rows if (question := _question(_prompt(row))))
            elif dataset == "sft" and split == "validation":
                for row in rows:
                    case, reason = _case(row)
                    if case and normalised(case.question) in taken:
                        case, reason = None, "question already taken"
                    if case is None:
                        built.left_out[reason] += 1
                        continue
                    taken.add(normalised(case.question))
                    built.cases.append(case)
    built.train_questions = len(train)
    overlap = overlapping([case.question for case in built.cases], sorted(train), embedder)
    if overlap:
        shown = "; ".join(f"{case!r} ~ {trained!r}" for case, trained in overlap[:3])
        raise PlumbError(
            f"{len(overlap)} validation questions are training questions too ({shown}): the exports' splits "
            "overlap, so no eval set was written; build it from exports of one stream, whose splits agree."
        )
    return built


def overlapping(questions: list[str], trained: list[str], embedder: Embedder) -> list[tuple[str, str]]:
    """(question, training question) pairs that the export's grouping rule would put in one group:
    equal once normalised, or holding the same numbers with embeddings at least
    SIMILARITY_THRESHOLD alike (cosine; the embedder's vectors are normalised)."""
    by_form = {normalised(text): text for text in trained}
    pairs = [(q, by_form[normalised(q)]) for q in questions if normalised(q) in by_form]
    exact = {q for q, _ in pairs}
    buckets: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for text in trained:
        buckets[_numbers(text)].append(text)
    rest = [q for q in questions if q not in exact and buckets.get(_numbers(q))]
    encoded: dict[tuple[str, ...], np.ndarray] = {}
    if rest:
        for question, vector in zip(rest, embedder.encode(rest), strict=True):
            key = _numbers(question)
            bucket = buckets[key]
            if key not in encoded:
                encoded[key] = embedder.encode(bucket)
            similarities = encoded[key] @ vector
            best = int(np.argmax(similarities))
            if similarities[best] >= SIMILARITY_THRESHOLD:
                pairs.append((question, bucket[best]))
    return pairs


def _numbers(text: str) -> tuple[str, ...]:
    return tuple(sorted(_NUMBER.findall(text)))


def write_eval_set(cases: list[EvalCase], path: Path) -> None:
    """One JSON object per line, as `plumb eval` reads them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [case.model_dump_json(exclude_none=True) for case in cases]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _files(folder: Path) -> Iterator[tuple[str, str, list[dict]]]:
    """(dataset, split, rows) of every file the export's manifest lists, each checked against the
    manifest's sha256 so that a set is never built from a file changed since it was exported."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlumbError(f"{folder} is not an export: it has no readable {MANIFEST} listing its files ({exc}).") from exc
    for relative, about in sorted(files.items()):
        path = folder / relative
        if not path.is_file() or sha256_of(path) != about["sha256"]:
            raise PlumbError(f"{path} is missing or differs from the file the export's manifest lists.")
        dataset, split = Path(relative).parent.name, Path(relative).stem
        yield dataset, split, _rows(path)


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _prompt(row: dict) -> list[dict]:
    """The prompt messages of a row of any dataset (reward rows hold it inside `chosen`)."""
    return row["prompt"] if "prompt" in row else row["chosen"][:-1]


def _question(prompt: list[dict]) -> str:
    """The question as typed, from the last user message the answer prompt ends with."""
    return prompt[-1]["content"].rpartition(_QUESTION)[2].strip() if prompt else ""


def _case(row: dict) -> tuple[EvalCase | None, str]:
    """The case a validation sft row makes, or None and why not."""
    if row.get("completion_source") != "correction":
        return None, "answer not corrected"
    prompt = row["prompt"]
    if len(prompt) > 1:
        return None, "follow-up question"
    reference = row["completion"][-1]["content"]
    labels = _labels(prompt[-1]["content"])
    cited = [int(n) for n in _CITED.findall(reference) if int(n) in labels]
    if not cited:
        return None, "correction cites no passage"
    source, place = labels[cited[0]]
    page: int | None = None
    section: str | None = None
    if match := _PDF_PAGE.match(place) or _PAGE.match(place):
        page = int(match[1])
    else:
        section = place.removeprefix("… › ")
    return EvalCase(question=_question(prompt), reference=reference, source=source, page=page, section=section), ""


def _labels(content: str) -> dict[int, tuple[str, str]]:
    """The passages' (source, place) by number, from the headers `format_context` wrote ("[2]
    spec.md – … › 3.2 Curing"); only headers numbered in order count, so a passage's own text
    cannot pass for one."""
    context = content.partition(_PASSAGES)[2].rpartition(_QUESTION)[0]
    labels: dict[int, tuple[str, str]] = {}
    for match in _HEADER.finditer(context):
        if int(match[1]) == len(labels) + 1:
            source, _, place = match[2].partition(" – ")
            labels[len(labels) + 1] = (source, place)
    return labels

