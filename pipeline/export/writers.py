"""Dataset files written row by row, so an export of any size holds only a small buffer in memory."""

import hashlib
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export.formats import Row
from pipeline.export.options import FileFormat

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
# The provenance columns (see formats.provenance and formats.pair_provenance).
_TURN = [
    ("turn_id", pa.string()),
    ("user", pa.string()),
    ("feedback_version", pa.int64()),
    ("model_id", pa.string()),
    ("prompt_version", pa.string()),
    ("label_source", pa.string()),
    ("export_id", pa.string()),
]
_PAIR = [
    ("pair", pa.string()),
    *[(f"{side}_{name}", kind) for side in ("chosen", "rejected") for name, kind in _TURN[:4]],
    *_TURN[4:],
]
_SOURCE = ("completion_source", pa.string())  # model | correction (formats.CompletionSource)
SCHEMAS = {
    "sft": pa.schema([("prompt", _MESSAGES), ("completion", _MESSAGES), _SOURCE, *_TURN]),
    "preference": pa.schema([("prompt", _MESSAGES), ("chosen", _MESSAGES), ("rejected", _MESSAGES), *_PAIR]),
    "reward": pa.schema([("chosen", _MESSAGES), ("rejected", _MESSAGES), *_PAIR]),
    "kto": pa.schema([("prompt", _MESSAGES), ("completion", _MESSAGES), ("label", pa.bool_()), _SOURCE, *_TURN]),
    "ratings": pa.schema(
        [("prompt", _MESSAGES), ("completion", _MESSAGES), ("score", pa.float64()), ("note", pa.string()), _SOURCE, *_TURN]
    ),
}
# Every row says how many passages its prompt lost to fit --max-tokens (0 for most).
SCHEMAS = {name: schema.append(pa.field("passages_dropped", pa.int64())) for name, schema in SCHEMAS.items()}
PARQUET_BATCH_ROWS = 1000


class RowsWriter:
    """Appends rows of one dataset (format and split) to one file, opened on the first row."""

    def __init__(self, path: Path, dataset: str, file_format: FileFormat) -> None:
        self.path = path
        self.dataset = dataset
        self.file_format = file_format
        self.rows = 0
        self._text: BinaryIO | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._batch: list[Row] = []

    def write(self, row: Row, line: bytes) -> None:
        """Append `row`; `line` is its JSON encoding in UTF-8, already encoded for the staging file."""
        self.rows += 1
        if self.file_format == "jsonl":
            if self._text is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._text = self.path.open("wb", buffering=1 << 20)
            self._text.write(line + b"\n")
            return
        self._batch.append(row)
        if len(self._batch) >= PARQUET_BATCH_ROWS:
            self._flush_parquet()

    def close(self) -> None:
        if self._text is not None:
            self._text.close()
        if self._batch:
            self._flush_parquet()
        if self._parquet is not None:
            self._parquet.close()

    def _flush_parquet(self) -> None:
        schema = SCHEMAS[self.dataset]
        if self._parquet is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._parquet = pq.ParquetWriter(self.path, schema)
        self._parquet.write_table(pa.Table.from_pylist(self._batch, schema=schema))
        self._batch = []


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
