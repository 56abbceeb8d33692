"""Turns a stream of rated turns into dataset files, one per format and split.

Three things need more than the current item: dropping exact duplicates, pairing answers to the
same question by rating, and the split, which is decided per group of near-identical questions once
every question is known (see holdout.py). Duplicates and pairs go through a scratch SQLite file on
disk rather than Python sets and dicts; rows wait in a scratch file per dataset, tagged with their
question, until `finish` routes them to train or validation. So memory stays flat however many items
stream through.
"""

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import orjson

from pipeline.export.formats import (
    FORMATS,
    Rated,
    RatedAnswer,
    Row,
    correction_preference_rows,
    kto_rows,
    question_key,
    question_text,
    rating_preference_rows,
    ratings_row,
    reward_row,
    sft_rows,
)
from pipeline.export.holdout import QuestionGroups
from pipeline.export.lengths import Lengths, TokenCounter, fitted
from pipeline.export.job import FileFormat, KtoNeutral
from pipeline.export.writers import RowsWriter, sha256_of

if TYPE_CHECKING:
    from pipeline.embeddings import Embedder

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class BuildOptions:
    validation_fraction: float = 0.1
    kto_neutral: KtoNeutral = "omit"
    file_format: FileFormat = "jsonl"
    max_tokens: int = 0  # prompt + completion, in the target model's tokens; 0: no limit


@dataclass
class BuildSummary:
    """What was written: rows per format and split, and each file's size and checksum."""

    items: int = 0
    duplicates_dropped: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    lengths: dict[str, dict] = field(default_factory=dict)  # Lengths.summary()
    rows_trimmed: dict[str, int] = field(default_factory=dict)  # rows whose prompt lost passages
    passages_dropped: int = 0  # by items, to fit max_tokens
    rows_too_long: dict[str, int] = field(default_factory=dict)  # rows left out: nothing fits
    kto: dict[str, int] = field(default_factory=lambda: {"desirable": 0, "undesirable": 0})  # train split

    @property
    def rows(self) -> int:
        return sum(sum(splits.values()) for splits in self.counts.values())


class DatasetBuilder:
    """Call `add` for every rated turn, then `finish` once; files land under `directory`. The
    embedder (its model loaded only if needed) links near-identical questions for the split; the
    counter measures rows in the target model's tokens."""

    def __init__(
        self, directory: Path, scratch_file: Path, options: BuildOptions, embedder: "Embedder", counter: TokenCounter
    ) -> None:
        self.directory = directory
        self.options = options
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
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("CREATE TABLE answers (question TEXT, rating INTEGER, answer TEXT, prompt TEXT)")
        self._db.execute("CREATE TABLE trimmed (prompt BLOB PRIMARY KEY, dropped INTEGER) WITHOUT ROWID")

    def add(self, rated: Rated) -> None:
        self.summary.items += 1
        key = question_key(rated.turn)
        question = self._groups.add(question_text(rated.turn))
        fit = fitted(rated, self._counter, self.options.max_tokens) if self.options.max_tokens else (rated, 0)
        rated, dropped = fit or (rated, None)
        if dropped:
            self.summary.passages_dropped += dropped
            self._db.execute("INSERT OR IGNORE INTO trimmed VALUES (?, ?)", (_digest(rated.prompt), dropped))
        preferences = correction_preference_rows(rated)
        self._emit("sft", question, sft_rows(rated), dropped)
        self._emit("preference", question, preferences, dropped)
        self._emit("reward", question, [reward_row(row) for row in preferences], dropped)
        self._emit("kto", question, kto_rows(rated, self.options.kto_neutral), dropped)
        self._emit("ratings", question, [ratings_row(rated)], dropped)
        if dropped is None:
            return
        self._db.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?)",
            (key, rated.feedback.rating, rated.turn.answer, orjson.dumps(rated.prompt)),
        )

    def finish(self) -> BuildSummary:
        """Pair answers by rating, split by question group, close every file and record its checksum."""
        for key, group in self._answers_by_question():
            preferences = rating_preference_rows(list(group))
            question = self._groups.add(key)
            for row in preferences:
                dropped = self._passages_dropped(row["prompt"])
                self._emit("preference", question, [row], dropped)
                self._emit("reward", question, [reward_row(row)], dropped)
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

    def _emit(self, name: str, question: int, rows: list[Row], dropped: int | None) -> None:
        """Stage the rows not seen before, tagged with the id of their question (QuestionGroups)
        and saying how many passages their prompt lost; with `dropped` None (too long to fit
        max_tokens) they are only counted."""
        for row in rows:
            if dropped is None:
                self.summary.rows_too_long[name] = self.summary.rows_too_long.get(name, 0) + 1
                continue
            row["passages_dropped"] = dropped
            # Rows are built with their keys always in the same order, so equal rows encode equally.
            line = orjson.dumps(row)
            digest = hashlib.blake2b(line, digest_size=16, person=name.encode()).digest()
            if self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (digest,)).rowcount == 0:
                self.summary.duplicates_dropped += 1
                continue
            if dropped:
                self.summary.rows_trimmed[name] = self.summary.rows_trimmed.get(name, 0) + 1
            self._lengths.add(name, row)
            tag = b"%d:%d" % (question, row["label"]) if name == "kto" else b"%d" % question
            self._staged[name].write(b"%s\t%s\n" % (tag, line))

    def _passages_dropped(self, prompt: list[dict]) -> int:
        found = self._db.execute("SELECT dropped FROM trimmed WHERE prompt = ?", (_digest(prompt),)).fetchone()
        return found[0] if found else 0

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

    def _answers_by_question(self) -> Iterator[tuple[str, Iterator[RatedAnswer]]]:
        """Answers grouped by question, read back from disk one group at a time; only questions
        whose answers got different ratings can make a pair."""
        cursor = self._db.execute(
            "SELECT question, rating, answer, prompt FROM answers WHERE question IN "
            "(SELECT question FROM answers GROUP BY question HAVING COUNT(DISTINCT rating) > 1) "
            "ORDER BY question"
        )
        for key, rows in groupby(cursor, key=lambda row: row[0]):
            yield key, (RatedAnswer(orjson.loads(prompt), answer, rating) for _, rating, answer, prompt in rows)


def _digest(prompt: list[dict]) -> bytes:
    return hashlib.blake2b(orjson.dumps(prompt), digest_size=16).digest()


def scratch_db(path: Path) -> sqlite3.Connection:
    """A SQLite file that only lives for one export: no journal and no syncing, since a failed
    export starts again from the beginning anyway."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db
