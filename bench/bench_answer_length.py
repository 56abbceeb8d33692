"""Answer length, repetition and latency of the in-process model on evaluation questions, to choose
its answer length, repetition penalty and stop rule by measurement.

    .venv/bin/python bench/bench_answer_length.py [--questions 6]
    .venv/bin/python bench/bench_answer_length.py --questions 12 --corpus /usr/share/doc/texlive-doc/latex \
        --files bench/eval/latex-docs-files.txt --eval bench/eval/latex-docs.jsonl

Without --corpus it asks the sample evaluation questions over the sample documents. With --corpus,
--files and --eval it ingests the listed files (paths below the corpus folder, one a line) so that
each is named by its path there, as bench_retrieval_eval.py does, and asks the first questions of
the eval file (bench/eval/README.md says where those corpora come from).

Settings come from the environment as for the app (PLUMB_MAX_NEW_TOKENS, PLUMB_REPETITION_PENALTY,
PLUMB_PROMPT_VERSION).
Repetition is the share of an answer's word 6-grams that occur in it more than once (0 for an answer
that never repeats itself); "looping" counts answers where that share is over 0.2. Each answer's line
also gives the 1-minute load average, since latency means little on a busy machine.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench_retrieval_eval import Corpus, gathered

from pipeline.documents import find_files
from pipeline.evaluation.evaluate import load_cases
from pipeline.ingest import ingest_files, make_splitter
from pipeline.samples import EVAL_QUESTIONS, write_samples
from pipeline.settings import Settings, get_settings
from pipeline.wiring import make_embedder, make_rag_chain, open_index

LONG = 1800  # characters: issue 11 counted research-paper answers past this as runaways


def repetition(text: str, n: int = 6) -> float:
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(count for count in counts.values() if count > 1) / len(grams)


def documents(corpus: Corpus | None, work: Path) -> list[Path]:
    """The paths to ingest: the corpus's gathered folder, or the sample documents."""
    if corpus is None:
        return write_samples(work / "samples")
    return [gathered(corpus, work)]


def questions_of(corpus: Corpus | None, count: int) -> list[str]:
    if corpus is None:
        return [question for question, *_ in EVAL_QUESTIONS[:count]]
    return [case.question for case in load_cases(corpus.questions)[:count]]


def answer_all(settings: Settings, paths: list[Path], questions: list[str]) -> list[tuple[int, float, float, int]]:
    """Ingest `paths` into a temporary index and answer each question; returns one row per answer:
    (characters, repetition, seconds, tokens out)."""
    embedder = make_embedder(settings)
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings.model_copy(update={"data_dir": Path(tmp)})
        (Path(tmp) / "models").symlink_to(get_settings().models_dir.resolve(), target_is_directory=True)
        index = open_index(settings, embedder)
        splitter = make_splitter(embedder, settings.chunk_tokens, settings.chunk_overlap_tokens)
        ingest_files(find_files(paths), index, embedder, splitter)
        chain = make_rag_chain(settings, index, embedder)
        rows = []
        for number, question in enumerate(questions, start=1):
            started = time.perf_counter()
            answer = chain.invoke(question)
            row = (len(answer.answer), repetition(answer.answer), time.perf_counter() - started, answer.tokens_out)
            rows.append(row)
            print(f"{number:3d}. {row[0]:5d} chars, repetition {row[1]:.2f}, {row[2]:5.1f} s, "
                  f"{row[3]:4d} tokens out, load {os.getloadavg()[0]:.1f}  {question}", flush=True)
        index.close()
    return rows


def summary(settings: Settings, rows: list[tuple[int, float, float, int]]) -> str:
    lengths, repeats, seconds, tokens = zip(*rows)
    return (f"{settings.prompt_version} max_new_tokens={settings.max_new_tokens} repetition_penalty={settings.repetition_penalty}: "
            f"{len(rows)} answers, chars mean {statistics.mean(lengths):.0f} max {max(lengths)}, "
            f"past {LONG} {sum(length > LONG for length in lengths)}, "
            f"repetition mean {statistics.mean(repeats):.2f}, looping {sum(r > 0.2 for r in repeats)}, "
            f"latency mean {statistics.mean(seconds):.1f} s max {max(seconds):.1f} s, tokens out mean {statistics.mean(tokens):.0f}")


def main(count: int, corpus: Corpus | None) -> None:
    # The base model is what is measured: pinned, so no live trained version is looked up.
    settings = get_settings().model_copy(update={"model_version": "base"})
    with tempfile.TemporaryDirectory() as tmp:
        rows = answer_all(settings, documents(corpus, Path(tmp)), questions_of(corpus, count))
    print(summary(settings, rows))


def corpus_of(args: argparse.Namespace) -> Corpus | None:
    """The corpus the three options name, or None for the samples; exits with one sentence when only
    some are given or a file is missing."""
    given = [args.corpus, args.files, args.eval]
    if not any(given):
        return None
    if not all(given):
        sys.exit("Give --corpus, --files and --eval together, or none of them for the sample questions.")
    missing = [str(path) for path in given if not path.exists()]
    if missing:
        sys.exit(f"Not found: {', '.join(missing)}.")
    return Corpus(args.eval.stem, args.corpus, args.files.read_text(encoding="utf-8").split(), args.eval)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--corpus", type=Path, help="Folder the listed files are below.")
    parser.add_argument("--files", type=Path, help="The files to ingest, one path below --corpus a line.")
    parser.add_argument("--eval", type=Path, help="Eval file (JSONL); its first --questions questions are asked.")
    args = parser.parse_args()
    main(args.questions, corpus_of(args))
