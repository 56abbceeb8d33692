"""Splitting one document set among workers: `plumb ingest --shard I/N`.

A document belongs to shard `hash(source name) mod N`, not to a position in a listing, so adding or
removing a file moves no other file to another worker, and every worker decides alone, from the
name it would cite the document by, whether the document is its own. The hash is SHA-256 (Python's
`hash()` of a string changes from one process to the next).
"""

import hashlib
import re
from dataclasses import dataclass

from pipeline.errors import ConfigError

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Worker `number` (from 1) of `count` workers."""

    number: int
    count: int

    def holds(self, source: str) -> bool:
        """Whether the document named `source` is this worker's: each name is held by exactly one
        of the `count` shards."""
        # surrogateescape: a file name that is not UTF-8 still has its bytes (ingestion then skips it by name).
        digest = hashlib.sha256(source.encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.number - 1


def parse_shard(spec: str) -> Shard:
    """The shard that `spec` ("I/N", 1 <= I <= N) names; ConfigError naming the bad value otherwise."""
    match = _SPEC.fullmatch(spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(
            f"--shard {spec!r} is not I/N with I from 1 to N: worker 1 of 4 is --shard 1/4, the last --shard 4/4."
        )
    return Shard(int(match[1]), int(match[2]))
