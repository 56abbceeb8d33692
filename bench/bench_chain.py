"""Chain overhead: everything but generation (query embedding, hybrid retrieval, prompt building,
citations, result), p50/p95, over an index of the samples plus synthetic chunks.

    .venv/bin/python bench/bench_chain.py [--chunks 10000] [--questions 200]

The model is LangChain's fixed-reply chat model, so what is timed is the chain's own work; the
model's time is measured by bench_llm.py. Target: p95 <= 60 ms.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from langchain_core.language_models import FakeListChatModel

from pipeline.chain import RagChain
from pipeline.documents import find_files
from pipeline.embeddings import Embedder, default_model_path
from pipeline.index.base import Chunk
from pipeline.index.embedded import EmbeddedIndex
from pipeline.ingest import ingest_files, make_splitter
from pipeline.retriever import IndexRetriever
from pipeline.samples import EVAL_QUESTIONS, write_samples
from synthetic_corpus import make_corpus


def build_index(folder: Path, embedder: Embedder, synthetic: int) -> EmbeddedIndex:
    index = EmbeddedIndex(folder / "index", embedder.dimension)
    ingest_files(find_files(write_samples(folder / "samples")), index, embedder, make_splitter(embedder, 200, 40))
    corpus = make_corpus(synthetic)
    for start in range(0, len(corpus), 400):
        rows = range(start, min(start + 400, len(corpus)))
        index.replace_source(f"synthetic/{start}.pdf", [
            Chunk(f"s{r}", f"synthetic/{start}.pdf", 1 + r % 200, corpus.texts[r], corpus.vectors[r]) for r in rows
        ])
    return index


def main(synthetic: int, questions: int) -> None:
    embedder = Embedder(default_model_path())
    embedder.encode_one("warm up")
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), embedder, synthetic)
        llm = FakeListChatModel(responses=["The basic design wind speed is 120 mph [1]."])
        chain = RagChain(llm, IndexRetriever(index=index, embedder=embedder, k=5), "fixed-reply", 0.3)
        asked = [q for q, *_ in EVAL_QUESTIONS]
        times = []
        for number in range(questions):
            started = time.perf_counter()
            chain.invoke(asked[number % len(asked)])
            times.append((time.perf_counter() - started) * 1000)
        index.close()
    p50, p95 = np.percentile(times[5:], [50, 95])
    print(f"chain overhead over {len(times) - 5} questions, {synthetic} synthetic chunks + samples:")
    print(f"p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 <= 60 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10000, help="Synthetic chunks added to the samples.")
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    main(args.chunks, args.questions)
