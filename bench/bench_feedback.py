"""Feedback submit latency (p50, p99) and throughput against DynamoDB Local, with 1 and 16 writers.

Measures what a user's click costs: `ResilientStore.save_feedback` (the check, the outbox look-up
and the conditional write). Starts DynamoDB Local in memory itself. Target: p99 <= 50 ms
with 16 writers.

    .venv/bin/python bench/bench_feedback.py [--per-writer 200]
"""

import argparse
import json
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.feedback.dynamo import DynamoFeedbackStore, create_tables
from pipeline.feedback.local_dynamo import LocalDynamo
from pipeline.feedback.outbox import Outbox
from pipeline.feedback.resilient import ResilientStore
from pipeline.records import Feedback, new_id
from pipeline.settings import Settings

RESULTS = Path(__file__).parent / "results" / "feedback.json"
TARGET_P99_MS = 50.0


@dataclass
class BenchConfig:
    per_writer: int = 200
    writers: tuple[int, ...] = (1, 16)
    warmup: int = 3200  # enough for the JVM's JIT to settle, as it has in a server that has been up a while


@dataclass
class Result:
    writers: int
    submits: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    per_second: float


def feedback(writer: int, i: int) -> Feedback:
    return Feedback(
        session_id=f"bench-{writer}",
        turn_id=new_id(),
        user=f"user{writer}",
        rating=1 + i % 5,
        note="The cited clause is in section 01 13 10, page 21." * 3,
        correction="Use 75 mm cover where concrete is cast against earth." * 4,
    )


def run(store: ResilientStore, writers: int, per_writer: int) -> Result:
    latencies: list[float] = []
    lock = threading.Lock()

    def write(writer: int) -> None:
        mine = []
        for i in range(per_writer):
            item = feedback(writer, i)
            began = time.perf_counter()
            saved = store.save_feedback(item)
            mine.append(time.perf_counter() - began)
            assert not saved.queued, "DynamoDB Local should be up for the whole run"
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ms = sorted(1000 * x for x in latencies)
    return Result(
        writers=writers,
        submits=len(ms),
        p50_ms=round(statistics.median(ms), 2),
        p99_ms=round(ms[int(0.99 * (len(ms) - 1))], 2),
        max_ms=round(ms[-1], 2),
        per_second=round(len(ms) / elapsed, 1),
    )


def main(cfg: BenchConfig) -> list[Result]:
    with LocalDynamo() as local, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(dynamodb_endpoint=local.endpoint, table_prefix="bench-", data_dir=Path(tmp))
        create_tables(settings)
        store = ResilientStore(DynamoFeedbackStore(settings), Outbox(Path(tmp) / "outbox.sqlite3"))
        run(store, max(cfg.writers), cfg.warmup // max(cfg.writers))
        results = [run(store, writers, cfg.per_writer) for writers in cfg.writers]
        store.close()
    for result in results:
        print(
            f"{result.writers:>2} writers  {result.submits:>5} submits  p50 {result.p50_ms:6.2f} ms  "
            f"p99 {result.p99_ms:6.2f} ms  max {result.max_ms:7.2f} ms  {result.per_second:7.1f}/s"
        )
    worst = max(r.p99_ms for r in results if r.writers == max(cfg.writers))
    verdict = "met" if worst <= TARGET_P99_MS else "NOT met"
    print(f"target p99 <= {TARGET_P99_MS:.0f} ms with {max(cfg.writers)} writers: {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"config": asdict(cfg), "results": [asdict(r) for r in results]}, indent=2))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-writer", type=int, default=BenchConfig.per_writer, help="Submits per writer per run.")
    main(BenchConfig(per_writer=parser.parse_args().per_writer))
