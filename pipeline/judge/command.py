"""`plumb judge` (score answered turns), `plumb judge pairs` (compare answers to the same prompt) and
`plumb judge agreement` (the judges against people): the commands of a typer group that pipeline/cli.py registers. They raise PlumbError subclasses for the
CLI to report."""

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from pipeline.export.command import DATE_FORMATS

if TYPE_CHECKING:
    from pipeline.judge.batch import JudgeConfig

console = Console(soft_wrap=True)
Summary = TypeVar("Summary")


Since = Annotated[datetime | None, typer.Option(help="Judge turns created from this time (UTC).", formats=DATE_FORMATS)]
Until = Annotated[
    datetime | None, typer.Option(help="... until this time (UTC, exclusive); default now.", formats=DATE_FORMATS)
]
Everything = Annotated[bool, typer.Option("--all", help="Judge every turn ever answered.")]
Models = Annotated[list[str] | None, typer.Option("--model", help="Only answers of this model; repeat for several.")]
Users = Annotated[list[str] | None, typer.Option("--user", help="Only turns this user asked; repeat for several.")]
Concurrency = Annotated[int | None, typer.Option(help="Requests in flight at once; default PLUMB_JUDGE_CONCURRENCY.")]


def judge_command(
    context: typer.Context,
    since: Since = None,
    until: Until = None,
    everything: Everything = False,
    model: Models = None,
    user: Users = None,
    concurrency: Concurrency = None,
) -> None:
    """Score answered turns with the configured judge (PLUMB_JUDGE_*); turns it judged before are skipped."""
    if context.invoked_subcommand is not None:
        return
    from pipeline.judge.batch import run_judge

    summary = _run(run_judge, _config(since, until, everything, model, user, concurrency), " turns", "judging")
    references = ", ".join(f"{kind} {n}" for kind, n in sorted(summary.references.items())) or "none"
    console.print(
        f"Judged {summary.judged} turns with {summary.judge} (references: {references}; "
        f"{summary.rejudged} of them again, against a reference stronger than before); "
        f"{summary.already_judged} judged before, {summary.not_generated} with no model answer, "
        f"{summary.failed} failed; {summary.queued} kept in the outbox until DynamoDB is back."
    )
    for failure in summary.failures:
        console.print(f"  failed: {failure}")


def pairs_command(
    since: Since = None,
    until: Until = None,
    everything: Everything = False,
    model: Models = None,
    user: Users = None,
    concurrency: Concurrency = None,
) -> None:
    """Compare answers to the same prompt in pairs, both orders (a win only when both agree); pairs compared before are skipped."""
    from pipeline.judge.pairs import run_pairs

    summary = _run(run_pairs, _config(since, until, everything, model, user, concurrency), " pairs", "comparing")
    console.print(
        f"Compared {summary.compared} pairs of answers to {summary.prompts} prompts with {summary.judge}; "
        f"{summary.already_compared} compared before, {summary.failed} failed; "
        f"{summary.queued} kept in the outbox until DynamoDB is back."
    )
    for failure in summary.failures:
        console.print(f"  failed: {failure}")


def agreement_command() -> None:
    """Each judge against users' ratings and experts' reviews (exact, within one, Spearman, quadratic
    kappa, confusion), and each pairwise judge against users' preferences on non-tied pairs."""
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.judge.agreement import judge_agreement, judge_pair_agreement, sme_agreement
    from pipeline.settings import get_settings

    dynamo = DynamoFeedbackStore(get_settings())
    judgements = list(dynamo.judgements())
    users = judge_agreement(judgements, dynamo)
    experts = sme_agreement(judgements, dynamo.reviews())
    pairs = judge_pair_agreement(dynamo.pair_judgements(), dynamo)
    if not (users or experts or pairs):
        console.print("No turn has both a user's rating and a judgement yet: run `plumb judge` first.")
        return
    _score_table("AI judge vs users' ratings", "user rating", users)
    _score_table("AI judge vs experts' reviews", "expert's level", experts)
    if pairs:
        table = Table(title="Pairwise judge vs users' preferences (the higher-rated answer)")
        for column in ("judge", "pairs", "non-tied", "agreement", "judge ties"):
            table.add_column(column, justify="left" if column == "judge" else "right")
        for result in pairs:
            table.add_row(result.judge, str(result.pairs), str(result.non_tied), _figure(result.agreement),
                          str(result.judge_ties))
        console.print(table)


def _score_table(title: str, rows: str, results) -> None:
    if not results:
        return
    table = Table(title=title)
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
        console.print(f"{result.judge}: confusion, rows = {rows} 1-5, columns = judge level 1-5")
        for rating, row in enumerate(result.confusion, start=1):
            console.print(f"  {rating}: " + " ".join(f"{n:>4}" for n in row))


def _run(job: Callable[..., Summary], config: "JudgeConfig", unit: str, desc: str) -> Summary:
    """`job` (run_judge or run_pairs) with the configured judge, the resilient store for what it
    writes and DynamoDB for what it reads, a progress bar counting `unit`; its summary."""
    from tqdm import tqdm

    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.feedback.resilient import make_store
    from pipeline.judge.judge import make_judge
    from pipeline.settings import get_settings

    settings = get_settings()
    judge = make_judge(settings)
    _warn_if_demo(judge)
    store = make_store(settings)
    try:
        with tqdm(unit=unit, desc=desc) as bar:
            return job(config, judge, store, DynamoFeedbackStore(settings), bar.update)
    finally:
        store.close()


def _warn_if_demo(judge) -> None:
    from pipeline.judge.judge import DEMO_JUDGE

    if judge.model_id == DEMO_JUDGE:
        console.print("[yellow]The packaged small model judges as a demo only; set PLUMB_JUDGE_BACKEND=openai.[/yellow]")


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _config(since, until, everything, model, user, concurrency: int | None) -> "JudgeConfig":
    """The window and filters `plumb judge` and `plumb judge pairs` share, checked by JudgeConfig;
    no `concurrency` is PLUMB_JUDGE_CONCURRENCY."""
    from pipeline.judge.batch import JudgeConfig
    from pipeline.settings import get_settings

    return JudgeConfig(
        since=since,
        until=until,
        everything=everything,
        model_ids=tuple(model or ()),
        users=tuple(user or ()),
        concurrency=concurrency or get_settings().judge_concurrency,
    )
