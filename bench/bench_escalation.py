"""Escalation figures: the detector's cost per message (p50/p99), its precision and recall on the
labelled technical-support messages in bench/eval/escalation-messages.jsonl, and webhook delivery
latency (enqueue → a real local HTTP receiver has the body).

    .venv/bin/python bench/bench_escalation.py

Results also go to bench/results/escalation.json.
"""

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.escalation.detection import Detector  # noqa: E402
from pipeline.escalation.notify import Notifier, post_webhook, webhook_body  # noqa: E402
from pipeline.escalation.records import Escalation, Exchange  # noqa: E402
from pipeline.feedback.local_dynamo import free_port  # noqa: E402
from pipeline.records import Citation  # noqa: E402
from tests.test_escalation import Receiver  # noqa: E402

LABELLED = ROOT / "bench" / "eval" / "escalation-messages.jsonl"
ROUNDS = 20  # passes over the labelled set for the timing


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def detection(threshold: float = -0.5) -> dict:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    detector = Detector(threshold)
    times = []
    for _ in range(ROUNDS):
        for row in rows:
            started = time.perf_counter()
            detector.check(row["text"])
            times.append((time.perf_counter() - started) * 1000)
    said = [(detector.check(r["text"]).escalate, r["escalate"]) for r in rows]
    tp = sum(p and t for p, t in said)
    fp = sum(p and not t for p, t in said)
    fn = sum(t and not p for p, t in said)
    return {
        "messages": len(rows),
        "escalate": sum(r["escalate"] for r in rows),
        "threshold": threshold,
        "p50_ms": round(percentile(times, 0.5), 4),
        "p99_ms": round(percentile(times, 0.99), 4),
        "precision": round(tp / (tp + fp), 3),
        "recall": round(tp / (tp + fn), 3),
        "false_positives": fp,
        "false_negatives": fn,
    }


def webhook_latency(count: int = 50) -> dict:
    receiver = Receiver(free_port())
    arrived: dict[str, float] = {}
    citation = Citation(source="spec.pdf", page=3, passage="x" * 1500, score=0.8)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"http://127.0.0.1:{receiver.server.server_port}/hook"
        notifier = Notifier(Path(scratch) / "n.sqlite3", {"webhook": (post_webhook(url), webhook_body)})
        notifier.start()
        sent: dict[str, float] = {}
        for i in range(count):
            transcript = [Exchange(turn_id=f"e{i}-{j}", question="q " * 30, answer="a " * 200, citations=[citation] * 4) for j in range(3)]
            turn = f"t{i}"
            sent[turn] = time.perf_counter()
            notifier.enqueue(Escalation(session_id="s", turn_id=turn, user="u", reason="negative", question="q", transcript=transcript))
            deadline = time.monotonic() + 10
            while len(receiver.bodies) <= i and time.monotonic() < deadline:
                time.sleep(0.0002)
            if len(receiver.bodies) > i:
                arrived[turn] = time.perf_counter()
        notifier.close()
    receiver.stop()
    latencies = [(arrived[t] - sent[t]) * 1000 for t in sent if t in arrived]
    return {
        "notifications": count,
        "delivered": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


def main() -> None:
    results = {"detection": detection(), "webhook": webhook_latency()}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "escalation.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
