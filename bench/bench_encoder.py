"""The embedding backends side by side: stock sentence-transformers (torch) against ONNX Runtime,
float32 and int8 (`PLUMB_EMBEDDING_BACKEND`), on the same real chunks.

    .venv/bin/python bench/bench_encoder.py                           # 1,000 chunks, both sets
    .venv/bin/python bench/bench_encoder.py --chunks 300 --sets latex-docs

Speed: the first `--chunks` chunks of the python-docs pages (Debian's python3.11-doc, the files
of bench/eval/python-docs-files.txt), split as ingestion splits them, are encoded by every backend
in turn, `--rounds` times over, so that other work on the machine weighs on all of them alike;
each backend's best round is reported in chunks/s and as a ratio to torch. Both runtimes use their
default threads, one per core (printed). Loading time is reported apart.

Quality: for each evaluation set (bench/eval/README.md), the corpus is ingested into a temporary
index with each backend and `run_retrieval_eval` (what `plumb eval --retrieval-only` runs) gives
hit@3 for dense and hybrid search. The rule for the default backend: the fastest that loses no
more than 0.01 of hit@3 against torch on any set.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from pipeline.embeddings import Embedder, default_model_path
from pipeline.evaluation.evaluate import check_cases, load_cases
from pipeline.index.embedded import EmbeddedIndex
from pipeline.ingest import ingest_files, make_splitter, split_pages
from pipeline.documents import SourceFile, read_document
from pipeline.evaluation.retrieval import run_retrieval_eval

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = REPO / "bench" / "eval"
ROOTS = {"python-docs": Path("/usr/share/doc/python3.11/html"), "latex-docs": Path("/usr/share/doc/texlive-doc/latex")}
BACKENDS = ("torch", "onnx", "onnx-int8")
CHUNK_TOKENS, OVERLAP_TOKENS = 200, 40  # the default settings


def listed_files(name: str) -> list[Path]:
    return [ROOTS[name] / line for line in (EVAL_DIR / f"{name}-files.txt").read_text().split()]


def real_chunks(embedder: Embedder, count: int) -> list[str]:
    """The first `count` chunks of the python-docs pages, as ingestion makes them."""
    splitter = make_splitter(embedder, CHUNK_TOKENS, OVERLAP_TOKENS)
    texts: list[str] = []
    for path in listed_files("python-docs"):
        texts += [text for _, _, text in split_pages(read_document(path).pages, splitter)]
        if len(texts) >= count:
            return texts[:count]
    return texts


def embedders(models_dir: Path) -> dict[str, Embedder]:
    """Every backend, loaded (the ONNX ones exported first), with its load time printed."""
    loaded = {}
    for backend in BACKENDS:
        embedder = Embedder(default_model_path(), backend=backend, models_dir=models_dir)
        embedder.encode(["export and load"])
        started = time.perf_counter()
        Embedder(default_model_path(), backend=backend, models_dir=models_dir).encode(["load"])
        print(f"  {backend:10s} load and first encode {time.perf_counter() - started:.2f} s", flush=True)
        loaded[backend] = embedder
    return loaded


def speed(loaded: dict[str, Embedder], texts: list[str], rounds: int) -> None:
    best = dict.fromkeys(loaded, 0.0)
    for round_number in range(rounds):
        for backend, embedder in loaded.items():
            started = time.perf_counter()
            embedder.encode(texts)
            rate = len(texts) / (time.perf_counter() - started)
            best[backend] = max(best[backend], rate)
            print(f"  round {round_number + 1} {backend:10s} {rate:6.1f} chunks/s", flush=True)
    print(f"\n{len(texts)} python-docs chunks, best of {rounds} rounds:")
    for backend, rate in best.items():
        print(f"  {backend:10s} {rate:6.1f} chunks/s  {rate / best['torch']:.2f}x torch")


def quality(loaded: dict[str, Embedder], name: str, work: Path) -> None:
    cases = load_cases(EVAL_DIR / f"{name}.jsonl")
    # Named by their path below the corpus root, as the questions name them.
    files = [SourceFile(path, path.relative_to(ROOTS[name]).as_posix()) for path in listed_files(name)]
    print(f"\n{name}: hit@3 (page hit@3) by backend", flush=True)
    for backend, embedder in loaded.items():
        index = EmbeddedIndex(work / f"{name}-{backend}", embedder.dimension)
        splitter = make_splitter(embedder, CHUNK_TOKENS, OVERLAP_TOKENS)
        summary = ingest_files(files, index, embedder, splitter)
        report = run_retrieval_eval(cases, check_cases(cases, index), index, embedder)
        index.close()
        scores = "  ".join(
            f"{mode} {report.modes[mode].hit_at_3:.3f} ({report.modes[mode].page_hit_at_3:.3f})" for mode in ("dense", "hybrid")
        )
        print(f"  {backend:10s} {scores}   ingest {summary.chunks} chunks in {summary.seconds:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1000, help="python-docs chunks encoded per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every backend")
    parser.add_argument("--sets", nargs="*", default=["python-docs", "latex-docs"], choices=sorted(ROOTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plumb-bench-encoder-") as directory:
        work = Path(directory)
        print(f"Loading ({os.cpu_count()} cores, torch uses {torch.get_num_threads()} threads):")
        loaded = embedders(work / "models")
        if args.chunks:
            speed(loaded, real_chunks(loaded["torch"], args.chunks), args.rounds)
        for name in args.sets:
            quality(loaded, name, work)


if __name__ == "__main__":
    main()
