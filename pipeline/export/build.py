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


@dataclass
class BuildSummary:
    """What was written: rows per format and split, and each file's size and checksum."""

    items: int = 0
    duplicates_dropped: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(sum(splits.values()) for splits in self.counts.values())


class DatasetBuilder:
    """Call `add` for every rated turn, then `finish` once; files land under `directory`. The
    embedder (its model loaded only if needed) links near-identical questions for the split."""

    def __init__(self, directory: Path, scratch_file: Path, options: BuildOptions, embedder: "Embedder") -> None:
        self.directory = directory
        self.options = options
        self._embedder = embedder
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

    def add(self, rated: Rated) -> None:
        self.summary.items += 1
        key = question_key(rated.turn)
        question = self._groups.add(question_text(rated.turn))
        preferences = correction_preference_rows(rated)
        self._emit("sft", question, sft_rows(rated))
        self._emit("preference", question, preferences)
        self._emit("reward", question, [reward_row(row) for row in preferences])
        self._emit("kto", question, kto_rows(rated, self.options.kto_neutral))
        self._emit("ratings", question, [ratings_row(rated)])
        self._db.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?)",
            (key, rated.feedback.rating, rated.turn.answer, orjson.dumps(rated.prompt)),
        )

    def finish(self) -> BuildSummary:
        """Pair answers by rating, split by question group, close every file and record its checksum."""
        for key, group in self._answers_by_question():
            preferences = rating_preference_rows(list(group))
            question = self._groups.add(key)
            self._emit("preference", question, preferences)
            self._emit("reward", question, [reward_row(row) for row in preferences])
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
        return self.summary

    def _emit(self, name: str, question: int, rows: list[Row]) -> None:
        """Stage the rows not seen before, tagged with the id of their question (QuestionGroups)."""
        for row in rows:
            # Rows are built with their keys always in the same order, so equal rows encode equally.
            line = orjson.dumps(row)
            digest = hashlib.blake2b(line, digest_size=16, person=name.encode()).digest()
            if self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (digest,)).rowcount == 0:
                self.summary.duplicates_dropped += 1
                continue
            self._staged[name].write(b"%d\t%s\n" % (question, line))

    def _route(self, name: str, staged: BinaryIO, splits: list[str]) -> None:
        """Write the staged rows of one dataset to the file of their question's split, in order."""
        staged.seek(0)
        for tagged in staged:
            question, line = tagged.rstrip(b"\n").split(b"\t", 1)
            # Only parquet needs the row itself; jsonl takes the line as it is.
            row = orjson.loads(line) if self.options.file_format == "parquet" else {}
            self._writers[(name, splits[int(question)])].write(row, line)
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


def scratch_db(path: Path) -> sqlite3.Connection:
    """A SQLite file that only lives for one export: no journal and no syncing, since a failed
    export starts again from the beginning anyway."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db
