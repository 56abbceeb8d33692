"""Retrieval latency and recall of Plumbline's embedded index on synthetic chunks.

    .venv/bin/python bench/bench_retrieval.py                 # 10k and 100k chunks
    .venv/bin/python bench/bench_retrieval.py --sizes 10000   # quicker
    .venv/bin/python bench/bench_retrieval.py --first-search  # a fresh process's first search

Ingests the corpus through `EmbeddedIndex.replace_source` one document at a time, reopens it (as a
restart would), then times `search` in each mode with k=10 and measures dense recall@10 against
exact search done separately with numpy. The targets at 100k chunks: hybrid p95 <= 15 ms,
recall@10 >= 0.95.

`--first-search` times what a user waits for after a start: a fresh Python process that opens a
10k-chunk index and answers one hybrid search with each embedding backend (`plumb ask` and the
app do the same steps), split into importing Plumbline's wiring (LangChain and the chain, the same
for every backend), loading the model, opening the index, and the search itself.
The ONNX backends are exported before the timing, as `plumb` does once on first use.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from synthetic_corpus import Corpus, exact_top_k, make_corpus, make_queries

from pipeline.index.base import Chunk
from pipeline.index.embedded import EmbeddedIndex

K = 10
CHUNKS_PER_DOCUMENT = 400  # a 200-page specification at about two chunks a page


def ingest(index: EmbeddedIndex, corpus: Corpus) -> None:
    rows_of: dict[str, list[int]] = {}
    for row, source in enumerate(corpus.source_of):
        rows_of.setdefault(source, []).append(row)
    for source, rows in rows_of.items():
        chunks = [Chunk(str(r), source, 1 + i // 2, corpus.texts[r], corpus.vectors[r]) for i, r in enumerate(rows)]
        index.replace_source(source, chunks)


def percentiles_ms(times: list[float]) -> str:
    return "/".join(f"{np.percentile(times, p) * 1000:.2f}" for p in (50, 95))


def measure(size: int, query_count: int) -> None:
    corpus = make_corpus(size, chunks_per_source=CHUNKS_PER_DOCUMENT)
    queries, query_vectors = make_queries(corpus, query_count)
    truth = exact_top_k(corpus.vectors, query_vectors, K)
    with tempfile.TemporaryDirectory(prefix="plumb-bench-") as directory:
        path = Path(directory) / "index"
        start = time.perf_counter()
        index = EmbeddedIndex(path, corpus.vectors.shape[1])
        ingest(index, corpus)
        build_s = time.perf_counter() - start
        index.close()
        start = time.perf_counter()
        index = EmbeddedIndex(path, corpus.vectors.shape[1])
        reopen_s = time.perf_counter() - start
        print(f"\n{size} chunks: ingest {build_s:.1f} s, reopen {reopen_s:.2f} s; latency p50/p95 in ms, k={K}")
        for mode in ("dense", "keyword", "hybrid"):
            for query, vector in zip(queries[:10], query_vectors[:10]):
                index.search(query, vector, K, mode=mode)
            times, found = [], []
            for query, vector in zip(queries, query_vectors):
                start = time.perf_counter()
                hits = index.search(query, vector, K, mode=mode)
                times.append(time.perf_counter() - start)
                found.append({int(hit.chunk_id) for hit in hits})
            line = f"  {mode:8s} {percentiles_ms(times):>12s}"
            if mode == "dense":
                line += f"   recall@10 vs exact search {np.mean([len(t & f) / K for t, f in zip(truth, found)]):.3f}"
            print(line, flush=True)
        index.close()


FIRST_SEARCH = """
import time
started = time.perf_counter()
from pipeline.settings import get_settings
from pipeline.wiring import make_embedder, open_index
imported = time.perf_counter()
settings = get_settings()
embedder = make_embedder(settings)
vector = embedder.encode_one("How thick are the end plates?")
loaded = time.perf_counter()
index = open_index(settings, embedder)
opened = time.perf_counter()
index.search("How thick are the end plates?", embedder.encode_one("How thick are the end plates?"), 5)
done = time.perf_counter()
print(f"{done - started:.2f} {imported - started:.2f} {loaded - imported:.2f} {opened - loaded:.2f} {(done - opened) * 1000:.0f}")
"""


def first_search(size: int) -> None:
    """Seconds from a fresh process's start to its first search's answer, per backend."""
    from pipeline.embeddings import Embedder, default_model_path

    corpus = make_corpus(size, chunks_per_source=CHUNKS_PER_DOCUMENT)
    with tempfile.TemporaryDirectory(prefix="plumb-bench-") as directory:
        data = Path(directory)
        index = EmbeddedIndex(data / "index", corpus.vectors.shape[1])
        ingest(index, corpus)
        index.close()
        print(f"\nFirst search of a fresh process, {size}-chunk index: total = imports + load model + open index + search")
        for backend in ("torch", "onnx", "onnx-int8"):
            Embedder(default_model_path(), backend=backend, models_dir=data / "models").encode_one("export")
            env = os.environ | {"PLUMB_DATA_DIR": str(data), "PLUMB_EMBEDDING_BACKEND": backend, "HF_HUB_OFFLINE": "1"}
            timings = subprocess.run(
                [sys.executable, "-c", FIRST_SEARCH], env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            total, imports, load, open_s, search_ms = timings[-5:]
            print(f"  {backend:10s} {total:>6s} s = {imports} s + {load} s + {open_s} s + {search_ms} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="chunks in the corpus")
    parser.add_argument("--queries", type=int, default=200, help="queries timed per mode")
    parser.add_argument("--first-search", action="store_true", help="time a fresh process's first search instead")
    args = parser.parse_args()
    if args.first_search:
        first_search(10_000)
        return
    for size in args.sizes:
        measure(size, args.queries)


if __name__ == "__main__":
    main()
