"""Turns a stream of rated turns into dataset files, one per format and split.

Two things need more than the current item: dropping exact duplicates and pairing answers to the
same question by rating. Both go through a scratch SQLite file on disk rather than Python sets and
dicts, so memory stays flat however many items stream through.
"""

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import orjson

from pipeline.export.formats import (
    FORMATS,
    Rated,
    RatedAnswer,
    Row,
    correction_preference_rows,
    kto_rows,
    question_key,
    rating_preference_rows,
    ratings_row,
    reward_row,
    sft_rows,
    split_for,
)
from pipeline.export.job import FileFormat, KtoNeutral
from pipeline.export.writers import RowsWriter, sha256_of

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
    """Call `add` for every rated turn, then `finish` once; files land under `directory`."""

    def __init__(self, directory: Path, scratch_file: Path, options: BuildOptions) -> None:
        self.directory = directory
        self.options = options
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
        split = split_for(key, self.options.validation_fraction)
        preferences = correction_preference_rows(rated)
        self._emit("sft", split, sft_rows(rated))
        self._emit("preference", split, preferences)
        self._emit("reward", split, [reward_row(row) for row in preferences])
        self._emit("kto", split, kto_rows(rated, self.options.kto_neutral))
        self._emit("ratings", split, [ratings_row(rated)])
        self._db.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?)",
            (key, rated.feedback.rating, rated.turn.answer, orjson.dumps(rated.prompt)),
        )

    def finish(self) -> BuildSummary:
        """Pair answers by rating, close every file and record its checksum."""
        for key, group in self._answers_by_question():
            preferences = rating_preference_rows(list(group))
            split = split_for(key, self.options.validation_fraction)
            self._emit("preference", split, preferences)
            self._emit("reward", split, [reward_row(row) for row in preferences])
        self._db.close()
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

    def _emit(self, name: str, split: str, rows: list[Row]) -> None:
        for row in rows:
            # Rows are built with their keys always in the same order, so equal rows encode equally.
            line = orjson.dumps(row)
            digest = hashlib.blake2b(line, digest_size=16, person=name.encode()).digest()
            if self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (digest,)).rowcount == 0:
                self.summary.duplicates_dropped += 1
                continue
            self._writers[(name, split)].write(row, line)

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
