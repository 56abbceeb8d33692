"""Turns a stream of rated turns into dataset files, one per format and split.

Two things need more than the current item: pairing answers to the same prompt by rating, and the
split, which is decided per group of near-identical questions once every question is known (see
holdout.py). Answers to pair wait in a scratch SQLite file on disk rather than in Python dicts; rows
wait in a scratch file per dataset, tagged with their question, until `finish` routes them to train
or validation. So memory stays flat however many items stream through.

No two rows are equal, so none is dropped as a duplicate: the source yields each (turn, user) verdict
once, and every row carries its verdict's provenance columns.
"""

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from itertools import chain, groupby
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import orjson

from pipeline.export.formats import (
    FORMATS,
    Rated,
    RatedAnswer,
    Row,
    completion,
    correction_preference_rows,
    exclusion,
    kto_rows,
    pair_provenance,
    preference_row,
    provenance,
    question_text,
    rating_pairs,
    ratings_row,
    reward_row,
    sft_rows,
)
from pipeline.export.holdout import QuestionGroups
from pipeline.export.lengths import Lengths, TokenCounter, cited, fitted
from pipeline.export.options import FileFormat, KtoNeutral
from pipeline.export.writers import RowsWriter, sha256_of

if TYPE_CHECKING:
    from pipeline.embeddings import Embedder
    from pipeline.export.ai_labels import JudgedPair, Label
    from pipeline.export.expert_labels import ExpertAnswer

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class BuildOptions:
    validation_fraction: float = 0.1
    kto_neutral: KtoNeutral = "omit"
    file_format: FileFormat = "jsonl"
    max_tokens: int = 0  # prompt + completion, in the target model's tokens; 0: no limit


@dataclass
class BuildSummary:
    """What was written: rows per format and split, and each file's size and checksum; the rated
    turns left out, per reason (formats.EXCLUSIONS); the verdicts that replace an earlier version;
    row lengths in tokens and what fitting them to max_tokens cost."""

    items: int = 0
    not_matched: int = 0  # read in the window, left out by the filters
    excluded: dict[str, int] = field(default_factory=dict)
    supersedes: list[dict] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    lengths: dict[str, dict] = field(default_factory=dict)  # Lengths.summary()
    rows_trimmed: dict[str, int] = field(default_factory=dict)  # rows whose prompt lost passages
    passages_dropped: int = 0  # by items, to fit max_tokens
    rows_too_long: dict[str, int] = field(default_factory=dict)  # rows left out: nothing fits
    kto: dict[str, int] = field(default_factory=lambda: {"desirable": 0, "undesirable": 0})  # train split
    # AI labels (ai_labels.py): taken per source, left out by the filters or the agreement floor, with
    # no row (by reason, as `excluded`), pairs taken and left out for not sharing one prompt.
    ai_labels: dict = field(
        default_factory=lambda: {
            "ai": 0,
            "sme": 0,
            "review": 0,
            "expert": 0,
            "not_matched": 0,
            "below_agreement": 0,
            "excluded": {},
            "pairs": 0,
            "pairs_not_matched": 0,
            "pairs_other_prompt": 0,
            "pairs_excluded": 0,
            "missing_turns": 0,
        }
    )

    @property
    def rows(self) -> int:
        return sum(sum(splits.values()) for splits in self.counts.values())


class DatasetBuilder:
    """Call `add` for every rated turn, then `finish` once; files land under `directory`. The
    embedder (its model loaded only if needed) links near-identical questions for the split; the
    counter measures rows in the target model's tokens."""

    def __init__(
        self,
        directory: Path,
        scratch_file: Path,
        options: BuildOptions,
        export_id: str,
        embedder: "Embedder",
        counter: TokenCounter,
    ) -> None:
        self.directory = directory
        self.options = options
        self.export_id = export_id
        self._embedder = embedder
        self._counter = counter
        self._lengths = Lengths(counter)
        self._groups = QuestionGroups()
        self._staged = {
            name: (scratch_file.parent / f"{name}.staged").open("w+b", buffering=1 << 20) for name in FORMATS
        }
        self.summary = BuildSummary()
        self._writers = {
            (name, split): RowsWriter(directory / name / f"{split}.{options.file_format}", name, options.file_format)
            for name in FORMATS
            for split in SPLITS
        }
        self._db = scratch_db(scratch_file)
        # Answers to one prompt (by its digest as served), each with the digest of its prompt as fitted
        # to max_tokens; prompts are stored once each, since many answers share one.
        self._db.execute(
            "CREATE TABLE answers (digest BLOB, question INTEGER, fitted BLOB, passages INTEGER, kept INTEGER, "
            "turn_id TEXT, user TEXT, feedback_version INTEGER, model_id TEXT, prompt_version TEXT, "
            "answer TEXT, rating INTEGER)"
        )
        self._db.execute("CREATE TABLE prompts (digest BLOB PRIMARY KEY, prompt BLOB) WITHOUT ROWID")

    def add(self, rated: Rated) -> None:
        """Stage the rows of one rated turn, or count why it has none."""
        self.summary.items += 1
        if reason := exclusion(rated):
            self.summary.excluded[reason] = self.summary.excluded.get(reason, 0) + 1
            return
        self._supersede(rated, in_export=True)
        turn = rated.turn
        question = self._groups.add(question_text(turn))
        served = orjson.dumps(rated.prompt)
        digest = _digest(served)  # of the prompt as served: answers to it are paired
        fit = fitted(rated, self._counter, self.options.max_tokens) if self.options.max_tokens else (rated, 0)
        rated, dropped = fit or (rated, None)
        if dropped:
            self.summary.passages_dropped += dropped
        meta = provenance(rated, self.export_id)
        answer = RatedAnswer.of(rated)
        pair_meta = pair_provenance("correction", answer, answer, self.export_id)
        preferences = correction_preference_rows(rated)
        self._emit("sft", question, sft_rows(rated), meta, dropped)
        self._emit("preference", question, preferences, pair_meta, dropped)
        self._emit("reward", question, [reward_row(row) for row in preferences], pair_meta, dropped)
        self._emit("kto", question, kto_rows(rated, self.options.kto_neutral), meta, dropped)
        self._emit("ratings", question, [ratings_row(rated)], meta, dropped)
        # Every answer takes part in pairing, one too long to fit max_tokens too (`kept` NULL), so a
        # pair with it is counted as too long rather than silently missing.
        encoded = orjson.dumps(rated.prompt) if dropped else served
        fitted_digest = _digest(encoded) if dropped else digest
        kept = None if dropped is None else len(rated.turn.citations)
        self._db.execute("INSERT OR IGNORE INTO prompts VALUES (?, ?)", (fitted_digest, encoded))
        self._db.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (digest, question, fitted_digest, len(turn.citations), kept, *(getattr(answer, name) for name in ANSWER_COLUMNS)),
        )

    def add_label(self, label: "Label") -> None:
        """Stage the kto and ratings rows of an AI judge's or an expert's label, or count why it has
        none. Not sft (a judge's approval is no reference answer) and not rating pairs (pairs come
        from the judge's own pairwise verdicts, `add_judged_pair`)."""
        counts = self.summary.ai_labels
        if reason := exclusion(label.rated):
            counts["excluded"][reason] = counts["excluded"].get(reason, 0) + 1
            return
        counts[label.source] += 1
        self._supersede(label.rated, in_export=True)
        question = self._groups.add(question_text(label.rated.turn))
        rated, dropped = self._fit(label.rated)
        meta = provenance(rated, self.export_id) | {"label_source": label.source}
        self._emit("kto", question, kto_rows(rated, self.options.kto_neutral), meta, dropped)
        self._emit("ratings", question, [ratings_row(rated, label.score)], meta, dropped)

    def add_expert_answer(self, expert: "ExpertAnswer") -> None:
        """Stage the sft row of an expert's answer to an escalated turn (the turn's prompt, the
        expert's completion), or count why it has none (expert_labels.exclusion)."""
        from pipeline.export.expert_labels import exclusion as expert_exclusion

        counts = self.summary.ai_labels
        if reason := expert_exclusion(expert.rated.turn):
            counts["excluded"][reason] = counts["excluded"].get(reason, 0) + 1
            return
        counts["expert"] += 1
        question = self._groups.add(question_text(expert.rated.turn))
        rated, dropped = self._fit(expert.rated)
        meta = provenance(rated, self.export_id) | {"label_source": "expert"}
        row = {"prompt": rated.prompt, "completion": completion(expert.answer), "completion_source": "expert"}
        self._emit("sft", question, [row], meta, dropped)

    def add_judged_pair(self, pair: "JudgedPair") -> None:
        """Stage the preference and reward rows of a pairwise verdict on two answers to one prompt;
        a pair whose answers had different prompts is counted and left out."""
        counts = self.summary.ai_labels
        chosen, rejected = pair.chosen, pair.rejected
        if exclusion(chosen) or exclusion(rejected):
            counts["pairs_excluded"] += 1
            return
        if chosen.prompt != rejected.prompt:
            counts["pairs_other_prompt"] += 1
            return
        counts["pairs"] += 1
        question = self._groups.add(question_text(chosen.turn))
        (fit_chosen, dropped_chosen), (fit_rejected, dropped_rejected) = map(self._fit, (chosen, rejected))
        if dropped_chosen is None or dropped_rejected is None:
            self._too_long("preference", "reward")
            return
        # As for rating pairs (`finish`): the prompt with fewer passages, unless it lost one an answer cites.
        shorter = min(fit_chosen, fit_rejected, key=lambda side: len(side.turn.citations))
        if max(cited(chosen.turn.answer), cited(rejected.turn.answer)) > len(shorter.turn.citations):
            self._too_long("preference", "reward")
            return
        row = preference_row(shorter.prompt, chosen.turn.answer, rejected.turn.answer)
        meta = pair_provenance("judge", RatedAnswer.of(chosen), RatedAnswer.of(rejected), self.export_id)
        meta["label_source"] = "ai"
        dropped = len(chosen.turn.citations) - len(shorter.turn.citations)
        self._emit("preference", question, [row], meta, dropped)
        self._emit("reward", question, [reward_row(row)], meta, dropped)

    def _fit(self, rated: Rated) -> tuple[Rated, int | None]:
        """`rated` fitted to max_tokens and the passages it lost (None: it cannot fit)."""
        if not self.options.max_tokens:
            return rated, 0
        fit = fitted(rated, self._counter, self.options.max_tokens)
        if fit is None:
            return rated, None
        self.summary.passages_dropped += fit[1]
        return fit

    def not_matched(self, rated: Rated, supersedes: bool) -> None:
        """Count a verdict the export's filters leave out. With `supersedes` (an export that is not a
        snapshot), a new version of it is listed: it makes out of date any earlier rows of its turn
        that this stream exported under the filters (say a rating 1 that became a 5 in a `--rating 1`
        stream), with nothing to replace them."""
        self.summary.not_matched += 1
        if supersedes:
            self._supersede(rated, in_export=False)

    def _supersede(self, rated: Rated, in_export: bool) -> None:
        feedback = rated.feedback
        if feedback.version > 1:
            self.summary.supersedes.append(
                {
                    "turn_id": rated.turn.turn_id,
                    "user": feedback.user,
                    "feedback_version": feedback.version,
                    "in_export": in_export,
                }
            )

    def finish(self) -> BuildSummary:
        """Pair answers to the same prompt by rating, split by question group, close every file and
        record its checksum."""
        for question, answers in self._answers_by_prompt():
            for chosen, rejected in rating_pairs(answers):
                # Each side's prompt fits its own answer; the one with fewer passages fits both,
                # unless it dropped a passage the other answer cites.
                if chosen.kept is None or rejected.kept is None:
                    self._too_long("preference", "reward")
                    continue
                shorter = min(chosen, rejected, key=lambda side: side.kept)
                if max(cited(chosen.answer), cited(rejected.answer)) > shorter.kept:
                    self._too_long("preference", "reward")
                    continue
                row = preference_row(shorter.prompt, chosen.answer, rejected.answer)
                meta = pair_provenance("rating", chosen.verdict, rejected.verdict, self.export_id)
                dropped = chosen.passages - shorter.kept  # both answer one prompt: the same passages
                self._emit("preference", question, [row], meta, dropped)
                self._emit("reward", question, [reward_row(row)], meta, dropped)
        self._db.close()
        splits = self._groups.splits(self._embedder, self.options.validation_fraction)
        for name, staged in self._staged.items():
            self._route(name, staged, splits)
        for (name, split), writer in self._writers.items():
            writer.close()
            if writer.rows:
                relative = writer.path.relative_to(self.directory).as_posix()
                self.summary.files[relative] = {
                    "rows": writer.rows,
                    "bytes": writer.path.stat().st_size,
                    "sha256": sha256_of(writer.path),
                }
            self.summary.counts.setdefault(name, {})[split] = writer.rows
        self.summary.lengths = self._lengths.summary()
        return self.summary

    def _emit(self, name: str, question: int, rows: list[Row], meta: Row, dropped: int | None) -> None:
        """Stage `rows` with the provenance columns `meta`, tagged with the id of their question
        (QuestionGroups) and saying how many passages their prompt lost; with `dropped` None (too
        long to fit max_tokens) they are only counted."""
        for content in rows:
            if dropped is None:
                self._too_long(name)
                continue
            row = content | meta | {"passages_dropped": dropped}
            line = orjson.dumps(row)
            if dropped:
                self.summary.rows_trimmed[name] = self.summary.rows_trimmed.get(name, 0) + 1
            self._lengths.add(name, row)
            tag = b"%d:%d" % (question, row["label"]) if name == "kto" else b"%d" % question
            self._staged[name].write(b"%s\t%s\n" % (tag, line))

    def _too_long(self, *names: str) -> None:
        for name in names:
            self.summary.rows_too_long[name] = self.summary.rows_too_long.get(name, 0) + 1

    def _route(self, name: str, staged: BinaryIO, splits: list[str]) -> None:
        """Write the staged rows of one dataset to the file of their question's split, in order."""
        staged.seek(0)
        for tagged in staged:
            tag, line = tagged.rstrip(b"\n").split(b"\t", 1)
            question, _, label = tag.partition(b":")
            split = splits[int(question)]
            if label and split == "train":
                self.summary.kto["desirable" if label == b"1" else "undesirable"] += 1
            # Only parquet needs the row itself; jsonl takes the line as it is.
            row = orjson.loads(line) if self.options.file_format == "parquet" else {}
            self._writers[(name, split)].write(row, line)
        staged.close()

    def _answers_by_prompt(self) -> Iterator[tuple[int, Iterator["Answered"]]]:
        """(question id, answers) per prompt as served, read back from disk one prompt at a time, as
        `rating_pairs` takes them: a best-rated one first, then the rest lowest-rated first. Only
        prompts whose answers got different ratings can make a pair."""
        columns = ", ".join(ANSWER_COLUMNS)
        cursor = self._db.execute(
            f"SELECT a.digest, question, passages, kept, prompt, {columns}, "
            "rating = MAX(rating) OVER (PARTITION BY a.digest) AS best "
            "FROM answers a JOIN prompts p ON p.digest = a.fitted WHERE a.digest IN "
            "(SELECT digest FROM answers GROUP BY digest HAVING COUNT(DISTINCT rating) > 1) "
            "ORDER BY a.digest, best DESC, rating, answer, turn_id, user"
        )
        for _, rows in groupby(cursor, key=lambda row: row[0]):
            first = next(rows)
            yield first[1], (Answered(RatedAnswer(*row[5:-1]), *row[2:5]) for row in chain([first], rows))


@dataclass(frozen=True)
class Answered:
    """A verdict on an answer to one prompt, with that prompt as fitted to max_tokens for it: how
    many passages the prompt had as served, how many it kept (None: nothing fits) and the messages
    (decoded only for the sides of a pair)."""

    verdict: RatedAnswer
    passages: int
    kept: int | None
    encoded_prompt: bytes

    @property
    def rating(self) -> int:
        return self.verdict.rating

    @property
    def answer(self) -> str:
        return self.verdict.answer

    @property
    def prompt(self) -> list:
        return orjson.loads(self.encoded_prompt)


# RatedAnswer's fields, in order, as the scratch table stores them.
ANSWER_COLUMNS = tuple(f.name for f in fields(RatedAnswer))


def _digest(encoded_prompt: bytes) -> bytes:
    return hashlib.blake2b(encoded_prompt, digest_size=16).digest()


def scratch_db(path: Path) -> sqlite3.Connection:
    """A SQLite file that only lives for one export: no journal and no syncing, since a failed
    export starts again from the beginning anyway."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db
