"""Retrieval quality on real documents: the baseline that ingestion changes are measured against.

    .venv/bin/python bench/bench_retrieval_eval.py

For each corpus, ingests its documents into a fresh, temporary data folder with `plumb ingest` and
runs `plumb eval --retrieval-only` on its evaluation set, both as a user would run them (so the
figures follow whatever ingestion does today), then prints ingest time, chunks/s and hit@1/3/5, MRR
and page (or section) hit@1/3/5 for dense, keyword and hybrid search. The JSON reports, with each
question's ranks, are kept in bench/results/retrieval-eval/.

Corpora (bench/eval/README.md says where the questions come from):
- python-docs: 177 HTML pages of Debian's python3.11-doc (`apt-get install python3.11-doc`),
  listed in bench/eval/python-docs-files.txt, and 57 questions with the section that answers each
  in bench/eval/python-docs.jsonl.
- latex-docs: 8 PDF manuals (145 pages with text) of Debian's texlive-latex-base-doc (`apt-get install
  texlive-latex-base-doc`), listed in bench/eval/latex-docs-files.txt, and 22 questions with the
  page that answers each in bench/eval/latex-docs.jsonl.
- samples: the sample documents and eval.jsonl that `plumb samples` writes.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = REPO / "bench" / "eval"
RESULTS = REPO / "bench" / "results" / "retrieval-eval"
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
LATEX_DOCS = Path("/usr/share/doc/texlive-doc/latex")
COLUMNS = ("hit_at_1", "hit_at_3", "hit_at_5", "mrr", "page_hit_at_1", "page_hit_at_3", "page_hit_at_5")


@dataclass
class Corpus:
    name: str
    root: Path  # documents are ingested from here, so they are named relative to it
    files: list[str]  # relative to root
    questions: Path


def plumb(args: list[str], cwd: Path, data_dir: Path) -> str:
    """Run the `plumb` command of this checkout with its own data folder; returns its output."""
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PLUMB_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    command = [sys.executable, "-c", "from pipeline.cli import app; app()", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"plumb {' '.join(args[:2])} failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result.stdout


def gathered(root: Path, files: list[str], folder: Path) -> Path:
    """`folder`, holding links to `files` (paths below `root`) at those paths, so that ingesting
    the folder names each file by that path ("tutorial/modules.html"), as the questions' sources do;
    files given to `plumb ingest` one by one would be named by file name alone, and two of the
    python-docs pages are both called modules.html."""
    for name in files:
        link = folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(root / name)
    return folder


def measure(corpus: Corpus, work: Path) -> dict:
    data_dir = work / corpus.name
    folder = gathered(corpus.root, corpus.files, work / f"{corpus.name}-files")
    started = time.perf_counter()
    output = plumb(["ingest", str(folder)], corpus.root, data_dir)
    ingest_s = time.perf_counter() - started
    summary = " ".join(line for line in output.splitlines() if line.startswith("Ingested"))
    chunks = re.search(r"([\d,]+) chunks", summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report_path = RESULTS / f"{corpus.name}.json"
    plumb(["eval", "--retrieval-only", str(corpus.questions), "--out", str(report_path)], corpus.root, data_dir)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    rate = f", {int(chunks.group(1).replace(',', '')) / ingest_s:.1f} chunks/s" if chunks else ""
    print(f"\n{corpus.name}: {summary}")
    print(f"  ingest wall time {ingest_s:.0f} s (model load included){rate}")
    print(
        f"  {report['scored']} questions with a source ({report['with_page']} with a page or section), "
        f"{report['without_source']} without; retrieval-only evaluation took {report['seconds']:.1f} s"
    )
    print(f"  {'search':8s}" + "".join(f"{column.replace('_at_', '@'):>14s}" for column in COLUMNS))
    for mode, scores in report["modes"].items():
        print(f"  {mode:8s}" + "".join(f"{scores[column]:>14.3f}" for column in COLUMNS))
    return report


def listed(root: Path, package: str, name: str) -> Corpus | None:
    """A corpus of installed documents: the files bench/eval/NAME-files.txt lists, below `root`;
    None (said, so `make bench` goes on) when the Debian package that holds them is not installed."""
    if not root.is_dir():
        print(f"Skipping {name}: {root} is missing; install Debian's {package} (apt-get install {package}).")
        return None
    files = (EVAL_DIR / f"{name}-files.txt").read_text(encoding="utf-8").split()
    return Corpus(name, root, files, EVAL_DIR / f"{name}.jsonl")


def corpora(work: Path) -> list[Corpus]:
    root = work / "samples-root"
    root.mkdir()
    plumb(["samples", "samples"], root, work / "samples-data")
    samples = root / "samples"
    documents = sorted(path.name for path in samples.iterdir() if path.suffix != ".jsonl")
    installed = [
        listed(PYTHON_DOCS, "python3.11-doc", "python-docs"),
        listed(LATEX_DOCS, "texlive-latex-base-doc", "latex-docs"),
    ]
    return [corpus for corpus in installed if corpus] + [
        Corpus("samples", samples, documents, samples / "eval.jsonl")
    ]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="plumb-retrieval-eval-") as directory:
        work = Path(directory)
        for corpus in corpora(work):
            measure(corpus, work)
    print(f"\nReports: {RESULTS}")


if __name__ == "__main__":
    main()
