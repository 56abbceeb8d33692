"""Turns a stream of rated turns into dataset files, one per format and split.

Two things need more than the current item: dropping exact duplicates and pairing answers to the
same prompt by rating. Both go through a scratch SQLite file on disk rather than Python sets and
dicts, so memory stays flat however many items stream through.
"""

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from itertools import chain, groupby
from pathlib import Path

import orjson

from pipeline.export.formats import (
    FORMATS,
    Rated,
    RatedAnswer,
    Row,
    correction_preference_rows,
    exclusion,
    kto_rows,
    pair_provenance,
    preference_row,
    provenance,
    question_key,
    rating_pairs,
    ratings_row,
    reward_row,
    sft_rows,
    split_for,
)
from pipeline.export.options import FileFormat, KtoNeutral
from pipeline.export.writers import RowsWriter, sha256_of

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class BuildOptions:
    validation_fraction: float = 0.1
    kto_neutral: KtoNeutral = "omit"
    file_format: FileFormat = "jsonl"


@dataclass
class BuildSummary:
    """What was written: rows per format and split, and each file's size and checksum; the rated
    turns left out, per reason (formats.EXCLUSIONS); the verdicts that replace an earlier version."""

    items: int = 0
    duplicates_dropped: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    supersedes: list[dict] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(sum(splits.values()) for splits in self.counts.values())


class DatasetBuilder:
    """Call `add` for every rated turn, then `finish` once; files land under `directory`."""

    def __init__(self, directory: Path, scratch_file: Path, options: BuildOptions, export_id: str) -> None:
        self.directory = directory
        self.options = options
        self.export_id = export_id
        self.summary = BuildSummary()
        self._writers = {
            (name, split): RowsWriter(directory / name / f"{split}.{options.file_format}", name, options.file_format)
            for name in FORMATS
            for split in SPLITS
        }
        self._db = scratch_db(scratch_file)
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute(
            "CREATE TABLE answers (digest BLOB, question TEXT, prompt TEXT, turn_id TEXT, user TEXT, "
            "feedback_version INTEGER, model_id TEXT, prompt_version TEXT, answer TEXT, rating INTEGER)"
        )

    def add(self, rated: Rated) -> None:
        """Write the rows of one rated turn, or count why it has none."""
        self.summary.items += 1
        if reason := exclusion(rated):
            self.summary.excluded[reason] = self.summary.excluded.get(reason, 0) + 1
            return
        turn, feedback = rated.turn, rated.feedback
        if feedback.version > 1:
            self.summary.supersedes.append(
                {"turn_id": turn.turn_id, "user": feedback.user, "feedback_version": feedback.version}
            )
        key = question_key(turn)
        split = split_for(key, self.options.validation_fraction)
        meta = provenance(rated, self.export_id)
        answer = RatedAnswer.of(rated)
        pair_meta = pair_provenance("correction", answer, answer, self.export_id)
        preferences = correction_preference_rows(rated)
        self._emit("sft", split, sft_rows(rated), meta)
        self._emit("preference", split, preferences, pair_meta)
        self._emit("reward", split, [reward_row(row) for row in preferences], pair_meta)
        self._emit("kto", split, kto_rows(rated, self.options.kto_neutral), meta)
        self._emit("ratings", split, [ratings_row(rated)], meta)
        prompt = orjson.dumps(rated.prompt)  # equal messages, role and content, encode equally
        digest = hashlib.blake2b(prompt, digest_size=16).digest()
        self._db.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (digest, key, prompt, *(getattr(answer, name) for name in ANSWER_COLUMNS)),
        )

    def finish(self) -> BuildSummary:
        """Pair answers to the same prompt by rating, close every file and record its checksum."""
        for key, prompt, group in self._answers_by_prompt():
            for chosen, rejected in rating_pairs(group):
                row = preference_row(prompt, chosen.answer, rejected.answer)
                split = split_for(key, self.options.validation_fraction)
                meta = pair_provenance("rating", chosen, rejected, self.export_id)
                self._emit("preference", split, [row], meta)
                self._emit("reward", split, [reward_row(row)], meta)
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

    def _emit(self, name: str, split: str, rows: list[Row], meta: Row) -> None:
        """Write `rows` with the provenance columns `meta`; a row equal to one already written
        (provenance included, so only ever from the same verdict) is dropped."""
        for content in rows:
            row = content | meta
            # Rows are built with their keys always in the same order, so equal rows encode equally.
            line = orjson.dumps(row)
            digest = hashlib.blake2b(line, digest_size=16, person=name.encode()).digest()
            if self._db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (digest,)).rowcount == 0:
                self.summary.duplicates_dropped += 1
                continue
            self._writers[(name, split)].write(row, line)

    def _answers_by_prompt(self) -> Iterator[tuple[str, list, Iterator[RatedAnswer]]]:
        """(question key, prompt, answers) per prompt, read back from disk one prompt at a time, the
        answers as `rating_pairs` takes them: a best-rated one first, then the rest lowest-rated first.
        Only prompts whose answers got different ratings can make a pair."""
        columns = ", ".join(ANSWER_COLUMNS)
        cursor = self._db.execute(
            f"SELECT digest, question, prompt, {columns}, rating = MAX(rating) OVER (PARTITION BY digest) AS best "
            "FROM answers WHERE digest IN "
            "(SELECT digest FROM answers GROUP BY digest HAVING COUNT(DISTINCT rating) > 1) "
            "ORDER BY digest, best DESC, rating, answer, turn_id, user"
        )
        for _, rows in groupby(cursor, key=lambda row: row[0]):
            first = next(rows)
            answers = (RatedAnswer(*row[3:-1]) for row in chain([first], rows))
            yield first[1], orjson.loads(first[2]), answers


# RatedAnswer's fields, in order, as the scratch table stores them.
ANSWER_COLUMNS = tuple(f.name for f in fields(RatedAnswer))


def scratch_db(path: Path) -> sqlite3.Connection:
    """A SQLite file that only lives for one export: no journal and no syncing, since a failed
    export starts again from the beginning anyway."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db
