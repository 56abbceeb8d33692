"""Export throughput and peak memory for 10k and 100k feedback items in DynamoDB Local.

Targets: at least 3,000 items/s; peak RSS at most 400 MB and flat from 10k to 100k.

    .venv/bin/python bench/bench_export.py [--sizes 10000 100000] [--passage-chars 600]

Each size gets a fresh in-memory DynamoDB Local, seeded with batch writes (turns with five cited
passages, feedback on each); then the export runs twice, each time in a child process of its own,
so its peak RSS (ru_maxrss) is the export's alone. Before each export the child also reads the
items without building anything: that rate is the ceiling DynamoDB Local and decoding set. The
first run after DynamoDB Local starts pays for the JVM compiling its read paths (seconds of CPU on the machine the export shares); the second
finds them compiled, as in a server that has been up a while, and is the figure held to the target.
Both are printed. Each child imports its modules before the clock starts (startup is printed
apart); CPU seconds are the export process's own. Results go to stdout and bench/results/export.json.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_ITEMS_PER_S = 3000
TARGET_RSS_MB = 400
sys.path.insert(0, str(ROOT))


def seed(endpoint: str, size: int, passage_chars: int) -> float:
    from pipeline.feedback.dynamo import create_tables
    from pipeline.settings import Settings
    from tests.export_factory import bulk_pairs, bulk_store

    settings = Settings(dynamodb_endpoint=endpoint, table_prefix="bench-")
    create_tables(settings)
    start = time.perf_counter()
    bulk_store(settings, bulk_pairs(size, questions=max(size // 20, 1), passage_chars=passage_chars))
    return time.perf_counter() - start


def export_child(endpoint: str, out: str) -> None:
    """Runs in the child: one full export, then its figures as JSON on stdout."""
    began = time.perf_counter()
    # main imports these itself; here they are loaded before the clock starts.
    import pipeline.export.build
    import pipeline.export.destinations
    import pipeline.export.sources
    import transformers.tokenization_utils_tokenizers  # noqa: F401 - the token counter's
    from pipeline.export.job import ExportConfig, main
    from pipeline.settings import Settings

    settings = Settings(dynamodb_endpoint=endpoint, table_prefix="bench-")
    read_seconds = read_only(settings)
    start = time.perf_counter()
    result = main(ExportConfig(out=out, mode="all"), settings)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rows = sum(f["rows"] for f in result.manifest["files"].values())
    figures = {
        "items": result.manifest["items"],
        "rows": rows,
        "seconds": seconds,
        "read_only_items_per_s": round(result.manifest["items"] / read_seconds),
        "startup_seconds": start - began,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def read_only(settings) -> float:
    """Seconds to read, decode and join the items alone, building nothing: the ceiling that
    DynamoDB Local and the decoding put on the export on this machine."""
    from datetime import UTC, datetime

    from pipeline.export.sources import DynamoSource, Window

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for _ in DynamoSource(settings).rated(Window(None, datetime.now(UTC)), Path(scratch)):
            pass
    return time.perf_counter() - start


def measure(size: int, passage_chars: int) -> dict:
    from pipeline.feedback.local_dynamo import LocalDynamo

    with LocalDynamo() as local, tempfile.TemporaryDirectory() as out:
        seed_seconds = seed(local.endpoint, size, passage_chars)
        first, second = (export_run(local.endpoint, out) for _ in range(2))
    return {
        **second,
        "size": size,
        "seed_seconds": round(seed_seconds, 1),
        "first_run": first,
        "load_average": round(os.getloadavg()[0], 1),
    }


def export_run(endpoint: str, out: str) -> dict:
    child = subprocess.run(
        [sys.executable, __file__, "--child", endpoint, out],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    return {**figures, "items_per_s": round(figures["items"] / figures["seconds"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--passage-chars", type=int, default=600, help="Characters per cited passage (5 per turn).")
    parser.add_argument("--child", nargs=2, metavar=("ENDPOINT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        export_child(*args.child)
        return
    results = []
    for size in args.sizes:
        figures = measure(size, args.passage_chars)
        results.append(figures)
        first = figures["first_run"]
        print(
            f"{size:>7} items: {figures['items_per_s']:>6} items/s, {figures['seconds']:.1f} s "
            f"({figures['cpu_seconds']:.1f} s of CPU, startup {figures['startup_seconds']:.1f} s apart), "
            f"peak RSS {figures['peak_rss_mb']:.0f} MB, {figures['rows']} rows; reading alone "
            f"{figures['read_only_items_per_s']} items/s; first run after DynamoDB "
            f"Local started: {first['items_per_s']} items/s, peak RSS {first['peak_rss_mb']:.0f} MB; "
            f"load average {figures['load_average']} on {os.cpu_count()} cores"
        )
    steady = min(r["items_per_s"] for r in results)
    peaks = [r["peak_rss_mb"] for r in results]
    print(
        f"target >= {TARGET_ITEMS_PER_S} items/s: {'met' if steady >= TARGET_ITEMS_PER_S else 'NOT met'} "
        f"(slowest {steady}); peak RSS <= {TARGET_RSS_MB} MB and flat: "
        f"{'met' if max(peaks) <= TARGET_RSS_MB else 'NOT met'} ({min(peaks):.0f} to {max(peaks):.0f} MB)"
    )
    path = ROOT / "bench" / "results" / "export.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
