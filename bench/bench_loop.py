"""The whole loop on a document set and its questions, ending in base vs tuned on held-out questions.

    .venv/bin/python bench/bench_loop.py --docs DIR --questions FILE.jsonl [--files LIST] [--held-out 0.3] [--users 3] [--work DIR]
        [--trl JOB:NAME=VALUE ...] [--jobs sft dpo]

`--questions` is an eval file (`plumb eval`'s format: question, reference, source, page or section).
Steps, each a `plumb` command run in this process against a data folder under `--work`:

1. DynamoDB Local (in memory), `plumb db init`, `plumb ingest DOCS`, or with `--files` the files it
   lists (one path a line, relative to DOCS), linked into a folder at those paths and ingested from
   it, so that they are named as the eval sets of bench/eval name them.
2. The questions are split by a hash of their normalised text (`pipeline.export.holdout`): a share
   `--held-out` is kept for the end and never asked before it; the rest are training questions.
3. Simulated users: each of `--users` users asks every training question once (the base model,
   at `PLUMB_TEMPERATURE`, so answers differ and rating pairs form) and rates the answer by its
   similarity to the reference (cosine of the embeddings, SAS): 5 from 0.85, 4 from 0.70, 3 from
   0.55, 2 from 0.40, else 1. An answer rated 3 or lower is corrected with the reference answer,
   followed by ` [n]` for the first passage it was given that lies in the case's source and page
   (or section), else the first from the case's source, else nothing.
4. `plumb export --mode all --validation-fraction 0 --max-tokens 1024` (the held-out questions are
   the validation; prompts drop their last passages until the completions fit the trainers'
   max_length, which they would otherwise cut).
   Its `sft` rows are the corrections and the answers rated 4-5; its `preference` rows are each
   correction over the answer it corrects, and, with several users, the better-rated of two
   answers to the same question over the worse. Every text in them is a reference answer or an
   answer the base model wrote.
5. Training, each LoRA on the packaged model, each registering the version it writes
   (`plumb-chat/N`): `plumb train sft EXPORT` (the `sft` rows) and `plumb train dpo EXPORT` (the
   `preference` rows), or those `--jobs` names.
6. For each tuned version, `plumb eval compare held-out.jsonl --a MODEL_VERSION=base --b
   MODEL_VERSION=plumb-chat/N` and the goal: the tuned version's SAS and judge differences have
   their 95% intervals above zero, and it wins more than it loses.

It ends with the wall time of every step and the evaluation's seconds per question (the compare
step's time over its questions: both sides' answers, the judge's scores and pairwise verdicts).
The goal is a benchmark's, printed, not a test's assertion.
"""

import argparse
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_retrieval_eval import gathered
from pipeline.cli import app
from pipeline.evaluation.evaluate import EvalCase, load_cases, matches_source
from pipeline.export.holdout import normalised, split_for
from pipeline.feedback.local_dynamo import LocalDynamo
from pipeline.models.registry import list_versions
from pipeline.records import Citation, Feedback, Turn
from pipeline.settings import get_settings

RATINGS = ((0.85, 5), (0.70, 4), (0.55, 3), (0.40, 2))  # SAS from which a simulated user gives each rating
MAX_TOKENS = 1024  # the training jobs' max_length (TRL's default): rows are fitted to it
TIMES: dict[str, float] = {}  # wall seconds of each step, in the order run


@contextmanager
def step(name: str) -> Iterator[None]:
    """Time one step of the loop into TIMES."""
    started = time.perf_counter()
    yield
    TIMES[name] = time.perf_counter() - started


def plumb(*args: str) -> None:
    """Run one `plumb` command in this process; stop the benchmark if it fails."""
    get_settings.cache_clear()  # each command reads the settings as the environment now says
    print("$ plumb", " ".join(args), flush=True)
    if app(list(args), standalone_mode=False):  # a failed command returns its exit code here
        raise SystemExit(f"plumb {' '.join(args)} failed; the loop stops there.")


def rating(similarity: float) -> int:
    return next((stars for floor, stars in RATINGS if similarity >= floor), 1)


def correction(case: EvalCase, citations: list[Citation]) -> str:
    """The reference, citing the passage that holds it as the chain numbered it, where one does."""
    placed = [n for n, c in enumerate(citations, 1) if case.in_place(c.source, c.page, c.page_label, c.section)]
    sourced = [n for n, c in enumerate(citations, 1) if case.source and matches_source(case.source, c.source)]
    cited = (placed or sourced or [None])[0]
    return case.reference if cited is None else f"{case.reference} [{cited}]"


def simulate_users(cases: list[EvalCase], users: int) -> dict[int, int]:
    """Every user asks every case once; returns how many answers got each rating."""
    from pipeline.feedback import make_store
    from pipeline.wiring import make_embedder, make_rag_chain, open_index

    settings = get_settings()
    embedder = make_embedder(settings)
    index = open_index(settings, embedder)
    chain = make_rag_chain(settings, index, embedder)
    store = make_store(settings)
    counts = dict.fromkeys(range(1, 6), 0)
    for user in (f"simulated-{n}" for n in range(1, users + 1)):
        for case in cases:
            answer = chain.invoke(case.question)
            turn = Turn(session_id=f"{user}-session", user=user, **answer.model_dump())
            store.save_turn(turn)
            vectors = embedder.encode([answer.answer, case.reference])
            stars = rating(float(vectors[0] @ vectors[1]))
            counts[stars] += 1
            fix = correction(case, answer.citations) if stars <= 3 else None
            store.save_feedback(Feedback(session_id=turn.session_id, turn_id=turn.turn_id, user=user, rating=stars, correction=fix))
    index.close()
    return counts


def ingest(docs: Path, files: Path | None, work: Path) -> None:
    """`plumb ingest` of the folder `docs`, or of the files `files` lists (paths below `docs`), each
    named by that path as the eval sets of bench/eval name them."""
    if files is None:
        plumb("ingest", str(docs))
        return
    names = files.read_text(encoding="utf-8").split()
    plumb("ingest", str(gathered(docs.resolve(), names, work / "documents")))


def train(job: str, export: Path, trl: list[str]) -> str:
    """Train one chat version on `export`, with the `--trl` options given as `job:NAME=VALUE`; its
    registered name (the newest chat version)."""
    options = [arg for option in trl if option.startswith(f"{job}:") for arg in ("--trl", option.split(":", 1)[1])]
    with step(f"train {job}"):
        plumb("train", job, str(export), *options)
    return list_versions(get_settings())[0].name


def evaluate(job: str, tuned: str, held: Path, work: Path) -> dict:
    """`plumb eval compare` of base (A) against `tuned` (B) on the held-out questions; prints the
    figures and returns the report."""
    out = work / f"compare-{job}.json"
    with step(f"eval compare base vs {job}"):
        plumb("eval", "compare", str(held), "--a", "MODEL_VERSION=base", "--b", f"MODEL_VERSION={tuned}", "--out", str(out))
    report = json.loads(out.read_text(encoding="utf-8"))
    seconds = TIMES[f"eval compare base vs {job}"] / report["cases"]
    print(figures(job, tuned, report, seconds))
    return report


def figures(job: str, tuned: str, report: dict, seconds: float) -> str:
    """The compare report's headline figures as lines of text."""
    a, b = report["a"], report["b"]
    sas, judge = report["similarity_difference"], report["judge_difference"]
    lines = [
        f"{job} ({tuned}) vs base on {report['cases']} held-out questions, judge {report['judge_model']}:",
        f"  SAS mean    base {a['similarity']['mean']:.4f}  {job} {b['similarity']['mean']:.4f}  "
        f"difference {sas['mean']:+.4f} (95% {sas['low']} to {sas['high']})",
    ]
    if judge:
        lines.append(
            f"  judge mean  base {a['judge']['mean']:.2f}  {job} {b['judge']['mean']:.2f}  "
            f"difference {judge['mean']:+.2f} (95% {judge['low']} to {judge['high']})"
        )
    else:
        lines.append("  judge: no verdicts")
    lines.append(
        f"  {report['wins']} wins, {report['ties']} ties, {report['losses']} losses, {report['failed']} failed; "
        f"sign test p = {report['sign_test_p']}"
    )
    lines.append(f"  eval seconds per question: {seconds:.1f}")
    met = bool(judge) and (sas["low"] or 0) > 0 and (judge["low"] or 0) > 0 and report["wins"] > report["losses"]
    lines.append("  goal met" if met else "  goal not met")
    return "\n".join(lines)


def main(
    docs: Path, questions: Path, files: Path | None, held_out: float, users: int, work: Path, trl: list[str], jobs: list[str]
) -> None:
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["PLUMB_DATA_DIR"] = str(work / "data")
    cases = load_cases(questions)
    kept = [c for c in cases if split_for(normalised(c.question), held_out) == "validation"]
    asked = [c for c in cases if c not in kept]
    held = work / "held-out.jsonl"
    held.write_text("".join(c.model_dump_json(exclude_none=True) + "\n" for c in kept), encoding="utf-8")
    print(f"{len(asked)} training questions, {len(kept)} held out ({held})")
    with LocalDynamo() as dynamo:
        os.environ["PLUMB_DYNAMODB_ENDPOINT"] = dynamo.endpoint
        with step("db init and ingest"):
            plumb("db", "init")
            ingest(docs, files, work)
        with step(f"simulated users ({users} x {len(asked)} answers)"):
            print("ratings of the base model's answers:", simulate_users(asked, users))
        with step("export"):
            plumb(
                "export", "--out", str(work / "export"), "--mode", "all", "--validation-fraction", "0",
                "--settle-seconds", "0", "--max-tokens", str(MAX_TOKENS),
            )
    export = next(path.parent for path in (work / "export").glob("*/manifest.json"))
    tuned = {job: train(job, export, trl) for job in jobs}
    for job, version in tuned.items():
        evaluate(job, version, held, work)
    print("wall seconds per step:")
    for name, seconds in TIMES.items():
        print(f"  {name}: {seconds:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, required=True, help="The document folder to ingest.")
    parser.add_argument("--questions", type=Path, required=True, help="Eval file of questions with references about them.")
    parser.add_argument("--files", type=Path, help="File listing the documents to ingest, relative to --docs.")
    parser.add_argument("--held-out", type=float, default=0.3, help="Share of questions kept for the final comparison.")
    parser.add_argument("--users", type=int, default=3, help="Simulated users; each asks every training question once.")
    parser.add_argument("--work", type=Path, default=Path("loop-run"), help="Folder for the data, export, models and reports.")
    parser.add_argument(
        "--trl", action="append", default=[], metavar="JOB:NAME=VALUE",
        help="A TRL option for one training job, as `plumb train --trl` takes it (sft:num_train_epochs=3).",
    )
    parser.add_argument("--jobs", nargs="+", choices=("sft", "dpo"), default=["sft", "dpo"], help="The training jobs to run.")
    args = parser.parse_args()
    main(args.docs, args.questions, args.files, args.held_out, args.users, args.work, args.trl, args.jobs)
