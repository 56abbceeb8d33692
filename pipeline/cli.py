"""`plumb`: the one command in front of every job. Errors a user can meet end as one clear line
and a non-zero exit; everything heavy is imported inside the command that needs it."""

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.errors import PlumbError
from pipeline.evaluation.command import REPORT_HELP, EvalGroup, build_set_command, compare_command
from pipeline.export.command import export_command
from pipeline.escalation.review_command import consolidate_command, sample_command
from pipeline.judge.command import agreement_command, judge_command, pairs_command
from pipeline.models.command import MODEL_COMMANDS
from pipeline.settings import get_settings
from pipeline.training.command import dpo_command, grpo_command, kto_command, reward_command, sft_command

if TYPE_CHECKING:
    from pipeline.evaluation.evaluate import EvalCase
    from pipeline.index import ChunkIndex
    from pipeline.ingest import DocumentFile, IngestSummary
    from pipeline.shards import Shard

app = typer.Typer(help="Plumbline: document Q&A with page-exact citations that learns from feedback.", no_args_is_help=True)
db_app = typer.Typer(help="The DynamoDB tables for turns and feedback.", no_args_is_help=True)
index_app = typer.Typer(help="The vector index.", no_args_is_help=True)
app.add_typer(db_app, name="db")
judge_app = typer.Typer(help="The AI judge: scores answers 1-5 in half points, with a comment.")
app.add_typer(index_app, name="index")
app.add_typer(judge_app, name="judge")
train_app = typer.Typer(help="Train the next model from an export: SFT, reward model, DPO, KTO, GRPO (LoRA, logged to MLflow).", no_args_is_help=True)
app.add_typer(train_app, name="train")
eval_app = typer.Typer(
    cls=EvalGroup,
    no_args_is_help=True,
    help="Measure the chain on questions with reference answers: `plumb eval FILE.jsonl` is `plumb eval run FILE.jsonl`.",
)
app.add_typer(eval_app, name="eval")
console = Console(soft_wrap=True)


def fail(message: str) -> None:
    console.print(f"[red]Error:[/red] {message}")
    raise typer.Exit(1)


def run(job, *args, **kwargs):
    """Run a job, turning the project's errors into one line and exit code 1."""
    try:
        return job(*args, **kwargs)
    except PlumbError as exc:
        fail(str(exc))


def reported(command):
    """A typer command whose project errors end as one clear line (keeps the signature typer reads)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        return run(command, *args, **kwargs)

    return wrapper


# The commands that read or write the DynamoDB tables: the feedback store, or the live model version
# that `ask` and `eval` answer with and `model` promotes.
STORE_COMMANDS = {"export", "judge", "db", "review", "ask", "eval", "model"}


@app.callback()
def _main(ctx: typer.Context) -> None:
    """In dev mode the feedback store is the DynamoDB Local that `plumb serve` runs, or one started
    for the command (`serving.dev_store_endpoint`), never AWS by accident."""
    if ctx.invoked_subcommand in STORE_COMMANDS:
        from pipeline.serving import dev_store_endpoint

        run(ctx.with_resource, dev_store_endpoint())


app.command("export")(reported(export_command))
judge_app.callback(invoke_without_command=True)(reported(judge_command))
judge_app.command("agreement")(reported(agreement_command))
for name, command in (("sft", sft_command), ("reward", reward_command), ("dpo", dpo_command), ("kto", kto_command), ("grpo", grpo_command)):
    train_app.command(name)(reported(command))
model_app = typer.Typer(help="Trained model versions: the registry and the live version.", no_args_is_help=True)
app.add_typer(model_app, name="model")
for name, command in MODEL_COMMANDS.items():
    model_app.command(name)(reported(command))
review_app = typer.Typer(help="Offline review: sampled transcripts rated 1-5 for relevance by people.", no_args_is_help=True)
app.add_typer(review_app, name="review")
review_app.command("sample")(reported(sample_command))
review_app.command("consolidate")(reported(consolidate_command))
judge_app.command("pairs")(reported(pairs_command))
eval_app.command("build-set")(reported(build_set_command))
eval_app.command("compare")(reported(compare_command))


@app.command()
def ingest(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files or folders (searched recursively), or s3://bucket/prefix.")
    ] = None,
    collection: Annotated[
        str, typer.Option("--collection", help="Name the documents NAME/<path below the folder given>.")
    ] = "",
    delete: Annotated[
        list[str] | None,
        typer.Option("--delete", help="Remove this document, named as citations and `plumb index sources` show it."),
    ] = None,
    ocr: Annotated[bool, typer.Option("--ocr", help="Read scanned PDF pages (no text layer) with Tesseract OCR.")] = False,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="I/N: only worker I's share of N workers, chosen by a hash of each document's name."),
    ] = None,
) -> None:
    """Index PDF, Markdown, HTML and text documents, or remove one with --delete. A document is named
    by its path below the folder given (a file given alone: its file name; an S3 object: its key
    below the prefix), after --collection if set; a file unchanged since it was last ingested with
    the same settings is skipped."""
    run(_ingest, paths or [], collection, delete or [], ocr, shard)


# Ingestion writes whole files a group at a time (`ingest.ingest_files`) and skips unchanged ones.
STOPPED = (
    "Stopped: files are written to the index whole, about 1,024 chunks at a time, and those written before "
    "the stop are kept; run the same command again to go on from there."
)


def _ingest(paths: list[str], collection: str, delete: list[str], ocr: bool, shard: str | None) -> None:
    from pipeline.interrupts import stopped_by_sigterm
    from pipeline.ocr import require_tesseract
    from pipeline.s3_documents import is_s3_url
    from pipeline.shards import parse_shard

    share = parse_shard(shard) if shard else None
    if ocr:
        require_tesseract()
    if delete:
        _delete(delete, paths)
        return
    if not paths:
        fail("Give files or folders to ingest, or --delete NAME.")
    whole = any(is_s3_url(path) or Path(path).is_dir() for path in paths)
    try:
        with stopped_by_sigterm():
            # Listed before the model loads, so that a wrong path or bucket is reported at once.
            files = _documents(paths, collection, share)
            summary, unlisted = _index_files(files, ocr, collection if whole else None, share)
    except KeyboardInterrupt:
        console.print(STOPPED)
        raise typer.Exit(130) from None
    for reason in summary.skipped:
        console.print(f"[yellow]Skipped[/yellow] {escape(reason)}")
    for note in summary.notes:
        console.print(f"[yellow]Note[/yellow] {escape(note)}")
    console.print(
        f"Ingested {summary.files} files, {summary.pages} pages, {summary.chunks} chunks "
        f"in {summary.seconds:.1f} s; unchanged, skipped: {summary.unchanged}; "
        f"unreadable or without text, skipped: {len(summary.skipped)}; "
        f"{summary.cut} chunks too long for the embedding model (cut)."
    )
    if summary.emptied:
        console.print(
            f"Removed the earlier text of {len(summary.emptied)} files that now hold none: {_few(summary.emptied)}.",
            markup=False,
        )
    if unlisted:
        under = f" under {collection.strip('/')}/" if collection.strip("/") else ""
        console.print(
            f"{len(unlisted)} indexed documents{under} are not in the folders given: {_few(unlisted)}; "
            "if they were renamed or removed, `plumb ingest --delete NAME` removes each.",
            markup=False,
        )


def _index_files(
    files: "list[DocumentFile]", ocr: bool, collection: str | None, share: "Shard | None"
) -> "tuple[IngestSummary, list[str]]":
    """Ingest `files` with a progress bar; returns the summary and, when `collection` is not None
    (the files list whole folders), the indexed documents under it that they no longer hold
    (`ingest.unlisted_sources`; of `share`'s documents only)."""
    from tqdm import tqdm

    from pipeline.ingest import ingest_files, make_splitter, unlisted_sources
    from pipeline.wiring import make_embedder, open_index, open_originals

    settings = get_settings()
    embedder = make_embedder(settings)
    index = open_index(settings, embedder)
    try:
        splitter = make_splitter(embedder, settings.chunk_tokens, settings.chunk_overlap_tokens)
        with tqdm(total=0, unit="chunk", desc="Reading") as bar:
            summary = ingest_files(files, index, embedder, splitter, progress=lambda state: _show(bar, state), ocr=ocr,
                                   originals=open_originals(settings))
        if collection is None:
            return summary, []
        indexed = [source for source in index.sources() if share is None or share.holds(source)]
        return summary, unlisted_sources(indexed, files, collection)
    finally:
        index.close()


def _few(names: list[str], shown: int = 5) -> str:
    """The first `shown` names, and how many more there are."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _documents(paths: list[str], collection: str, share: "Shard | None") -> "list[DocumentFile]":
    """The documents that `paths` (local files and folders, s3:// URLs) hold, named after
    `collection`; with `share`, only those of that shard."""
    from pipeline.documents import find_files
    from pipeline.s3_documents import is_s3_url, list_documents, make_s3_client

    urls = [path for path in paths if is_s3_url(path)]
    found: list[DocumentFile] = [*find_files([Path(path) for path in paths if not is_s3_url(path)], collection)]
    if urls:
        client = make_s3_client()
        for url in urls:
            found.extend(list_documents(url, client, collection))
    if share is None:
        return found
    mine = [file for file in found if share.holds(file.source)]
    console.print(f"Shard {share.number}/{share.count}: {len(mine)} of {len(found)} documents.")
    return mine


def _delete(names: list[str], paths: list[str]) -> None:
    """Remove the document named exactly `names[0]`, loading no model, or fail naming the closest
    indexed names; refused, deleting nothing, when given more than one name or any path."""
    from pipeline.wiring import open_index, open_originals

    extra = [*names[1:], *paths]
    if extra:
        fail(escape(
            f"--delete removes one document and takes no other names or paths (also given: "
            f"{', '.join(map(repr, extra))}); nothing was deleted: run it once per document."
        ))
    name = names[0]
    settings = get_settings()
    index = open_index(settings)
    try:
        removed = index.delete_source(name)
        if not removed:
            close = _closest(name, list(index.sources()))
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else "`plumb index sources` lists them."
            fail(escape(f"No document named {name!r} is indexed; {hint}"))
    finally:
        index.close()
    open_originals(settings).delete(name)
    console.print(f"Removed {name} ({removed} chunks).", markup=False)


def _closest(name: str, names: list[str]) -> list[str]:
    """Up to three of `names` closest to `name`, ignoring case: a name typed in other capitals
    (`PY/JSON.HTML`) finds its document as surely as one with a typo does, and the file's path
    (`/home/me/docs/b/joins.html`) the names it ends with (`b/joins.html`)."""
    from difflib import get_close_matches

    path = "/" + name.lower().lstrip("/")
    ending = sorted((known for known in names if path.endswith("/" + known.lower())), key=len, reverse=True)
    by_lower: dict[str, list[str]] = {}
    for known in names:
        by_lower.setdefault(known.lower(), []).append(known)
    close = get_close_matches(name.lower(), list(by_lower), n=3)
    similar = [known for lower in close for known in by_lower[lower] if known not in ending]
    return (ending + similar)[:3]


def _show(bar, state) -> None:
    """Move the tqdm `bar` to `state` (an `ingest.IngestProgress`): chunks encoded out of those found
    so far, with tqdm's rate (chunks/s) and time left; the total is final once every file is read."""
    bar.total = state.chunks
    bar.set_description(f"{state.files_read}/{state.files} files read", refresh=False)
    bar.update(state.chunks_encoded - bar.n)
    bar.refresh()


@app.command()
def samples(folder: Annotated[Path, typer.Argument(help="Where to write them.")] = Path("samples")) -> None:
    """Write the sample documents and their evaluation questions (eval.jsonl)."""
    from pipeline.samples import write_samples

    for path in write_samples(folder):
        console.print(f"Wrote {path}")
    console.print(f"Wrote {folder / 'eval.jsonl'}")


@app.command()
def ask(question: Annotated[str, typer.Argument(help="A question about the indexed documents.")]) -> None:
    """Answer one question in the terminal, streaming, with its citations."""
    run(_ask, question)


def _ask(question: str) -> None:
    from pipeline.wiring import make_embedder, make_rag_chain, open_index

    if not _is_utf8(question):
        fail("The question holds bytes that are not UTF-8 text; set the terminal to UTF-8 and ask again.")
    settings = get_settings()
    embedder = make_embedder(settings)
    index = open_index(settings, embedder)
    stream = make_rag_chain(settings, index, embedder).stream(question)
    for piece in stream:
        console.print(piece, end="", markup=False, highlight=False)
    console.print()
    for number, citation in enumerate(stream.answer.citations, start=1):
        console.print(f"[{number}] {citation.label()}  (score {citation.score:.3f})", markup=False)
    console.print(f"[dim]{stream.answer.model_id} · {stream.answer.timings_ms['total']:.0f} ms[/dim]")


def _is_utf8(text: str) -> bool:
    """False for a command-line argument that held bytes that are not UTF-8 (Python keeps them as
    lone surrogates, which the model's tokenizer and the terminal cannot encode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@eval_app.command("run")
def evaluate(
    file: Annotated[Path, typer.Argument(help="JSONL: question, reference, optional source and page.")],
    out: Annotated[Path, typer.Option(help=REPORT_HELP)] = Path("eval-report.json"),
    retrieval_only: Annotated[
        bool, typer.Option("--retrieval-only", help="Measure dense, keyword and hybrid search alone; no answers are generated.")
    ] = False,
) -> None:
    """Measure the chain on questions with reference answers, with the judge's scores and the RAG metrics."""
    from pipeline.evaluation.evaluate import check_report_path

    run(check_report_path, out)
    run(_evaluate_retrieval if retrieval_only else _evaluate, file, out)


def _open_eval(file: Path):
    """The evaluation cases of `file`, the settings, the embedder and the index they run against."""
    from pipeline.evaluation.evaluate import load_cases
    from pipeline.wiring import make_embedder, open_index

    if not file.exists():
        fail(f"{file} does not exist.")
    cases = load_cases(file)
    settings = get_settings()
    embedder = make_embedder(settings)
    return cases, settings, embedder, open_index(settings, embedder)


def _check_eval(cases: "list[EvalCase]", index: "ChunkIndex") -> list[str]:
    """What the index does not hold of each case (`check_cases`), one line printed per problem
    before any case is scored; an empty index is refused, as every case would be one."""
    from pipeline.evaluation.evaluate import check_cases

    if not index.sources():
        fail("The index is empty: ingest the documents the questions are about first (`plumb ingest`).")
    problems = check_cases(cases, index)
    for case, problem in zip(cases, problems):
        if problem:
            console.print(f'Unmatched, scored as a miss: "{case.question}": {problem}', markup=False)
    return problems


def _evaluate(file: Path, out: Path) -> None:
    from pipeline.evaluation.command import print_judged, record_eval
    from pipeline.evaluation.evaluate import run_eval, write_report
    from pipeline.judge.judge import make_judge
    from pipeline.wiring import make_rag_chain

    cases, settings, embedder, index = _open_eval(file)
    try:
        problems = _check_eval(cases, index)
        report = run_eval(cases, problems, make_rag_chain(settings, index, embedder), embedder, make_judge(settings))
    finally:
        index.close()
    write_report(report, out)
    table = Table(title=f"{report.cases} questions ({report.unmatched} unmatched) · {report.model_id}")
    for column in ("hit@k", "page hit@k", "similarity mean", "similarity p10", "not covered", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    table.add_row(
        _share(report.hit_at_k),
        _share(report.page_hit_at_k),
        f"{report.similarity_mean:.3f}",
        f"{report.similarity_p10:.3f}",
        f"{report.not_covered_share:.0%}",
        f"{report.latency_p50_ms:.0f}",
        f"{report.latency_p95_ms:.0f}",
    )
    console.print(table)
    print_judged(console, report)
    console.print(f"Report written to {out}")
    record_eval(report, settings, file, out)


def _evaluate_retrieval(file: Path, out: Path) -> None:
    from dataclasses import asdict

    from pipeline.evaluation.evaluate import write_report
    from pipeline.evaluation.retrieval import run_retrieval_eval

    cases, _, embedder, index = _open_eval(file)
    try:
        report = run_retrieval_eval(cases, _check_eval(cases, index), index, embedder)
    finally:
        index.close()
    write_report(report, out)
    table = Table(
        title=f"{report.scored} questions with a source ({report.with_page} with a page or section, "
        f"{report.unmatched} unmatched), {report.without_source} without, counted apart · "
        f"{report.embedding_model} · {report.seconds:.1f} s"
    )
    columns = ("hit@1", "hit@3", "hit@5", "MRR", "page hit@1", "page hit@3", "page hit@5", "page MRR")
    table.add_column("search")
    for column in columns:
        table.add_column(column, justify="right")
    for mode, scores in report.modes.items():
        table.add_row(mode, *(_share(value) for value in asdict(scores).values()))
    console.print(table)
    console.print(f"Report written to {out}")


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


@app.command()
def settings() -> None:
    """Print every setting as a Markdown table: environment variable, default, meaning."""
    from pipeline.settings import settings_table

    console.print(settings_table(), markup=False, highlight=False)


@db_app.command("init")
def db_init() -> None:
    """Create the DynamoDB tables (safe to repeat)."""
    from pipeline.feedback import create_tables

    settings = get_settings()
    run(create_tables, settings)
    console.print(f"Tables ready ({settings.table_prefix}*, {settings.dynamodb_endpoint or 'AWS ' + settings.aws_region}).")


@index_app.command("init")
def index_init() -> None:
    """Create the index (for OpenSearch: the index template, the hybrid search pipeline and the index)."""
    run(_index_init)


def _index_init() -> None:
    from pipeline.wiring import make_embedder, open_index

    settings = get_settings()
    if settings.index_backend == "opensearch":
        from pipeline.index.opensearch import OpenSearchIndex

        OpenSearchIndex.create(settings, make_embedder(settings).dimension).close()
    else:
        open_index(settings).close()
    console.print(f"Index ready ({settings.index_backend}).")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8501,
    with_samples: Annotated[bool, typer.Option("--samples/--no-samples", help="Ingest the samples into an empty index.")] = True,
    address: Annotated[str, typer.Option(help="Address to listen on; dev mode allows only loopback.")] = "127.0.0.1",
) -> None:
    """Run the web app. In dev mode without PLUMB_DYNAMODB_ENDPOINT, DynamoDB Local is started too
    (data kept under PLUMB_DATA_DIR), used by other `plumb` commands meanwhile, and stopped on exit,
    Ctrl-C or SIGTERM."""
    run(_serve, port, with_samples, address)


def _serve(port: int, with_samples: bool, address: str) -> None:
    import os
    import sys
    from contextlib import ExitStack

    import app as app_package
    from pipeline.feedback import create_tables
    from pipeline.feedback.local_dynamo import LocalDynamo
    from pipeline.llm import check_llm, make_llm
    from pipeline.serving import advertised, check_address, check_port, run_until_stopped, sigterm_as_interrupt, streamlit_command

    settings = get_settings()
    check_address(settings, address)
    check_port(address, port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with sigterm_as_interrupt(), ExitStack() as stack:
        if settings.dev_mode and not settings.dynamodb_endpoint:
            dynamo = stack.enter_context(LocalDynamo(db_path=settings.data_dir / "dynamodb"))
            os.environ["PLUMB_DYNAMODB_ENDPOINT"] = dynamo.endpoint
            get_settings.cache_clear()
            stack.enter_context(advertised(settings, dynamo.endpoint))
            settings = get_settings()
            console.print(f"DynamoDB Local is up at {dynamo.endpoint}")
        create_tables(settings)
        if with_samples:
            _ingest_samples_if_empty(settings)
        console.print(f"Preparing the model ({settings.llm_backend})…")
        if settings.llm_backend == "local":
            make_llm(settings)
        check_llm(settings)
        main = os.path.join(os.path.dirname(app_package.__file__), "main.py")
        console.print(f"[bold green]Plumbline is up at http://{address}:{port}[/bold green]  (Ctrl-C stops it)")
        run_until_stopped(streamlit_command(sys.executable, main, port, address, settings.dev_mode))


def _ingest_samples_if_empty(settings) -> None:
    """Ingest the sample documents into an empty index, named by their file names (never by the
    data folder they are written to)."""
    from pipeline.documents import find_files
    from pipeline.ingest import ingest_files, make_splitter
    from pipeline.samples import write_samples
    from pipeline.wiring import make_embedder, open_index, open_originals

    index = open_index(settings)  # no model is loaded unless the samples go in
    try:
        if index.sources():
            return
    finally:
        index.close()
    embedder = make_embedder(settings)
    index = open_index(settings, embedder)
    try:
        files = find_files(write_samples(settings.data_dir / "samples"))
        splitter = make_splitter(embedder, settings.chunk_tokens, settings.chunk_overlap_tokens)
        summary = ingest_files(files, index, embedder, splitter, originals=open_originals(settings))
        console.print(f"Ingested the samples: {summary.files} files, {summary.pages} pages, {summary.chunks} chunks.")
    finally:
        index.close()


@index_app.command("sources")
def index_sources() -> None:
    """List the indexed documents with their chunk counts."""
    from pipeline.wiring import open_index

    settings = get_settings()
    index = run(open_index, settings)
    for source, count in sorted(index.sources().items()):
        console.print(f"{count:6d}  {source}", markup=False)
