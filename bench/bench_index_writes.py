"""Bytes written to disk per chunk by the embedded index as it grows, one commit per file (how
ingestion wrote before) against one commit per ingestion group (`replace_sources`, how it writes now).

    .venv/bin/python bench/bench_index_writes.py                  # 1,000 and 10,000 chunks
    .venv/bin/python bench/bench_index_writes.py --sizes 1000

Synthetic chunks (bench/synthetic_corpus.py: 384-wide vectors, 1,000-character texts) in documents
of 40 chunks, grouped as `ingest.ENCODE_GROUP_CHUNKS` groups them. Bytes are the process's
`write_bytes` from /proc/self/io (what reached the block layer, tantivy's merges included), so run
it on a machine with a disk, not only a tmpfs. Targets: bytes per chunk flat from 1k to 10k.
"""

import argparse
import tempfile
import time
from pathlib import Path

from synthetic_corpus import Corpus, make_corpus

from pipeline.index.base import Chunk
from pipeline.index.embedded import EmbeddedIndex
from pipeline.ingest import ENCODE_GROUP_CHUNKS

CHUNKS_PER_DOCUMENT = 40


def written_bytes() -> int:
    """Bytes this process has caused to be written to storage so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes line")


def documents(corpus: Corpus) -> dict[str, list[Chunk]]:
    chunks: dict[str, list[Chunk]] = {}
    for row, source in enumerate(corpus.source_of):
        mine = chunks.setdefault(source, [])
        mine.append(Chunk(f"{row:032x}", source, 1 + len(mine) // 2, corpus.texts[row], corpus.vectors[row]))
    return chunks


def write(index: EmbeddedIndex, by_source: dict[str, list[Chunk]], per_file: bool) -> None:
    group: dict[str, list[Chunk]] = {}
    for source, chunks in by_source.items():
        if per_file:
            index.replace_source(source, chunks)
            continue
        group[source] = chunks
        if sum(map(len, group.values())) >= ENCODE_GROUP_CHUNKS:
            index.replace_sources(group)
            group = {}
    if group:
        index.replace_sources(group)


def measure(size: int, per_file: bool, folder: Path) -> None:
    by_source = documents(make_corpus(size, chunks_per_source=CHUNKS_PER_DOCUMENT))
    path = folder / f"{size}-{per_file}"
    before, started = written_bytes(), time.perf_counter()
    index = EmbeddedIndex(path, 384)
    write(index, by_source, per_file)
    index.close()
    seconds, written = time.perf_counter() - started, written_bytes() - before
    on_disk = sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    way = "a commit per file " if per_file else "a commit per group"
    print(
        f"{size:6d} chunks, {way}: wrote {written / 1e6:7.1f} MB ({written / size / 1e3:5.1f} kB/chunk, "
        f"{written / on_disk:4.1f}x the {on_disk / 1e6:.1f} MB index) in {seconds:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000], help="chunks in the corpus")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the indexes (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plumb-bench-writes-", dir=args.dir) as directory:
        for size in args.sizes:
            for per_file in (True, False):
                measure(size, per_file, Path(directory))


if __name__ == "__main__":
    main()
