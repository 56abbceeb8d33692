"""Tracing overhead per turn: the chain over the sample documents with tracing off (no tracer) and
on (every turn traced to a SQLite MLflow store), alternating turn by turn so both see the same load.

    .venv/bin/python bench/bench_tracing.py [--turns 40]

The model is LangChain's fixed-reply chat model, so what is timed is the chain's own work plus, when
on, handing the trace to MLflow (which exports it in the background). Off must cost nothing: the
chain then holds no tracer and MLflow is not imported.
"""

import argparse
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from langchain_core.language_models import FakeListChatModel

from pipeline.chain import RagChain
from pipeline.documents import find_files
from pipeline.embeddings import Embedder, default_model_path
from pipeline.index.embedded import EmbeddedIndex
from pipeline.ingest import ingest_files, make_splitter
from pipeline.retriever import IndexRetriever
from pipeline.samples import EVAL_QUESTIONS, write_samples
from pipeline.tracing import ChainTracer


class TimedTracer(ChainTracer):
    """Times its own `record` call: what tracing adds to a turn, apart from the turn's other work."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spent_ms: list[float] = []

    def record(self, *args, **kwargs):
        started = time.perf_counter()
        trace_id = super().record(*args, **kwargs)
        self.spent_ms.append((time.perf_counter() - started) * 1000)
        return trace_id


def main(turns: int) -> None:
    embedder = Embedder(default_model_path())
    embedder.encode_one("warm up")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        index = EmbeddedIndex(folder / "index", embedder.dimension)
        ingest_files(find_files(write_samples(folder / "samples")), index, embedder, make_splitter(embedder, 200, 40))
        retriever = IndexRetriever(index=index, embedder=embedder, k=5)
        llm = FakeListChatModel(responses=["The basic design wind speed is 120 mph [1]."])
        tracer = TimedTracer(f"sqlite:///{folder / 'mlflow.db'}", (folder / "mlflow-artifacts").as_uri(), sample_rate=1.0)
        chains = {"off": RagChain(llm, retriever, "fixed-reply", 0.3), "on": RagChain(llm, retriever, "fixed-reply", 0.3, tracer=tracer)}
        asked = [q for q, *_ in EVAL_QUESTIONS]
        times: dict[str, list[float]] = {"off": [], "on": []}
        for number in range(turns + 5):
            for mode, chain in chains.items():
                started = time.perf_counter()
                chain.invoke(asked[number % len(asked)])
                if number >= 5:  # the first turns warm caches and MLflow's store
                    times[mode].append((time.perf_counter() - started) * 1000)
        index.close()
        mlflow.flush_trace_async_logging()  # before the store's folder goes
    for mode, values in times.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"tracing {mode:3s}: p50 {p50:.1f} ms, p95 {p95:.1f} ms per turn over {len(values)} turns")
    print(f"difference of the medians: {np.median(times['on']) - np.median(times['off']):.1f} ms")
    p50, p95 = np.percentile(tracer.spent_ms[5:], [50, 95])
    print(f"recording a trace (in the turn, before the background export): p50 {p50:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    main(parser.parse_args().turns)
