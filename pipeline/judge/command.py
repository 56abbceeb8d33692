"""`plumb judge` (score answered turns) and `plumb judge agreement` (the judge against people): the
commands of a typer group that pipeline/cli.py registers. They raise PlumbError subclasses for the
CLI to report."""

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.export.command import DATE_FORMATS

console = Console(soft_wrap=True)


def judge_command(
    context: typer.Context,
    since: Annotated[
        datetime | None, typer.Option(help="Judge turns created from this time (UTC).", formats=DATE_FORMATS)
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="... until this time (UTC, exclusive); default now.", formats=DATE_FORMATS)
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Judge every turn ever answered.")] = False,
    model: Annotated[list[str] | None, typer.Option("--model", help="Only answers of this model; repeat for several.")] = None,
    user: Annotated[list[str] | None, typer.Option("--user", help="Only turns this user asked; repeat for several.")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight at once; default PLUMB_JUDGE_CONCURRENCY.")
    ] = None,
) -> None:
    """Score answered turns with the configured judge (PLUMB_JUDGE_*); turns it judged before are skipped."""
    if context.invoked_subcommand is not None:
        return
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.feedback.resilient import make_store
    from pipeline.judge.batch import JudgeConfig, run_judge
    from pipeline.judge.judge import DEMO_JUDGE, make_judge
    from pipeline.settings import get_settings

    settings = get_settings()
    config = JudgeConfig(
        since=since,
        until=until,
        everything=everything,
        model_ids=tuple(model or ()),
        users=tuple(user or ()),
        concurrency=concurrency or settings.judge_concurrency,
    )
    judge = make_judge(settings)
    if judge.model_id == DEMO_JUDGE:
        console.print("[yellow]The packaged small model judges as a demo only; set PLUMB_JUDGE_BACKEND=openai.[/yellow]")
    store = make_store(settings)
    try:
        from tqdm import tqdm

        with tqdm(unit=" turns", desc="judging") as bar:
            summary = run_judge(config, judge, store, DynamoFeedbackStore(settings), bar.update)
    finally:
        store.close()
    references = ", ".join(f"{kind} {n}" for kind, n in sorted(summary.references.items())) or "none"
    console.print(
        f"Judged {summary.judged} turns with {summary.judge} (references: {references}); "
        f"{summary.already_judged} judged before, {summary.not_generated} with no model answer, "
        f"{summary.failed} failed; {summary.queued} kept in the outbox until DynamoDB is back."
    )
    for failure in summary.failures:
        console.print(f"  failed: {failure}")


def agreement_command() -> None:
    """Exact agreement, within one level, Spearman and quadratic kappa of each judge with users' ratings."""
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.judge.agreement import judge_agreement
    from pipeline.settings import get_settings

    dynamo = DynamoFeedbackStore(get_settings())
    results = judge_agreement(dynamo.judgements(), dynamo)
    if not results:
        console.print("No turn has both a user's rating and a judgement yet: run `plumb judge` first.")
        return
    table = Table(title="AI judge vs users' ratings")
    for column in ("judge", "turns", "exact", "within one", "Spearman", "kappa (quadratic)"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for result in results:
        table.add_row(
            result.judge,
            str(result.turns),
            *(_figure(v) for v in (result.exact, result.within_one, result.spearman, result.kappa_quadratic)),
        )
    console.print(table)
    for result in results:
        console.print(f"{result.judge}: confusion, rows = user rating 1-5, columns = judge level 1-5")
        for rating, row in enumerate(result.confusion, start=1):
            console.print(f"  {rating}: " + " ".join(f"{n:>4}" for n in row))


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
