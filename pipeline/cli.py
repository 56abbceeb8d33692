"""`plumb`: the one command in front of every job. Errors a user can meet end as one clear line
and a non-zero exit; everything heavy is imported inside the command that needs it."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.errors import PlumbError
from pipeline.settings import get_settings

app = typer.Typer(help="Plumbline: document Q&A with page-exact citations that learns from feedback.", no_args_is_help=True)
db_app = typer.Typer(help="The DynamoDB tables for turns and feedback.", no_args_is_help=True)
index_app = typer.Typer(help="The vector index.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
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


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (searched recursively).")] = None,
    delete: Annotated[str | None, typer.Option("--delete", help="Remove this document (its source name or path).")] = None,
) -> None:
    """Index PDF, Markdown, HTML and text documents, or remove one with --delete."""
    run(_ingest, paths or [], delete)


def _ingest(paths: list[Path], delete: str | None) -> None:
    from tqdm import tqdm

    from pipeline.documents import find_files, source_name
    from pipeline.ingest import ingest_files, make_splitter
    from pipeline.wiring import make_embedder, open_index

    settings = get_settings()
    embedder = make_embedder(settings)
    index = open_index(settings, embedder)
    try:
        if delete:
            name = source_name(Path(delete)) if Path(delete).exists() else delete
            removed = index.delete_source(name)
            if not removed:
                fail(f"No document named {name!r} is indexed; `plumb index sources` lists them.")
            console.print(f"Removed {name} ({removed} chunks).")
            return
        if not paths:
            fail("Give files or folders to ingest, or --delete SOURCE.")
        files = find_files(paths)
        splitter = make_splitter(settings.chunk_size, settings.chunk_overlap)
        with tqdm(total=len(files), unit="file", desc="Ingesting") as bar:
            summary = ingest_files(files, index, embedder, splitter, progress=lambda _: bar.update())
    finally:
        index.close()
    for reason in summary.skipped:
        console.print(f"[yellow]Skipped[/yellow] {reason}")
    console.print(
        f"Ingested {summary.files} files, {summary.pages} pages, {summary.chunks} chunks "
        f"in {summary.seconds:.1f} s; skipped {len(summary.skipped)}."
    )


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


@app.command("eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="JSONL: question, reference, optional source and page.")],
    out: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path("eval-report.json"),
) -> None:
    """Measure the chain on questions with reference answers."""
    run(_evaluate, file, out)


def _evaluate(file: Path, out: Path) -> None:
    from pipeline.evaluate import load_cases, run_eval, write_report
    from pipeline.wiring import make_embedder, make_rag_chain, open_index

    if not file.exists():
        fail(f"{file} does not exist.")
    cases = load_cases(file)
    settings = get_settings()
    embedder = make_embedder(settings)
    index = open_index(settings, embedder)
    report = run_eval(cases, make_rag_chain(settings, index, embedder), embedder)
    write_report(report, out)
    table = Table(title=f"{report.cases} questions · {report.model_id}")
    for column in ("hit@k", "similarity mean", "similarity p10", "not covered", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    hit = "n/a" if report.hit_at_k is None else f"{report.hit_at_k:.2f}"
    table.add_row(
        hit,
        f"{report.similarity_mean:.3f}",
        f"{report.similarity_p10:.3f}",
        f"{report.not_covered_share:.0%}",
        f"{report.latency_p50_ms:.0f}",
        f"{report.latency_p95_ms:.0f}",
    )
    console.print(table)
    console.print(f"Report written to {out}")


@app.command()
def settings() -> None:
    """Print every setting as a Markdown table: environment variable, default, meaning."""
    from pipeline.settings import settings_table

    console.print(settings_table(), markup=False, highlight=False)


@index_app.command("sources")
def index_sources() -> None:
    """List the indexed documents with their chunk counts."""
    from pipeline.wiring import make_embedder, open_index

    settings = get_settings()
    index = run(open_index, settings, make_embedder(settings))
    for source, count in sorted(index.sources().items()):
        console.print(f"{count:6d}  {source}", markup=False)
