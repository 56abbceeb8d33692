"""The `plumb eval` group's shared pieces: the group that keeps `plumb eval FILE.jsonl` working
beside its subcommands, and the tables of judged figures."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from pipeline.errors import PlumbError

console = Console(soft_wrap=True)
REPORT_HELP = "Where to write the JSON report (.json); the Markdown report and its plots go beside it."

if TYPE_CHECKING:  # the CLI imports this module at start; the evaluation's imports wait for a command
    from pipeline.evaluation.stats import Spread
    from pipeline.evaluation.evaluate import EvalReport


class EvalGroup(TyperGroup):
    """`plumb eval` with subcommands (`run`, `compare`, `build-set`) where anything else first, a
    file or an option, goes to `run`: `plumb eval FILE.jsonl` is `plumb eval run FILE.jsonl`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def spread_cells(value: "Spread | None") -> list[str]:
    """Mean, 95% interval, p90 and variance as table cells; n/a for a metric never measured."""
    if value is None:
        return ["n/a"] * 4
    bounds = "n/a" if value.low is None else f"{value.low:.3f} – {value.high:.3f}"
    return [f"{value.mean:.3f}", bounds, f"{value.p90:.3f}", f"{value.variance:.4f}"]


def print_judged(console: Console, report: "EvalReport") -> None:
    """The judge's distribution and every metric's mean, interval, p90 and variance."""
    if report.judge is None or report.scores is None:
        return
    judge = report.judge
    shares = "n/a" if judge.mean is None else f"{judge.share_above_3:.0%} above 3, {judge.share_below_3:.0%} below 3"
    console.print(
        f"Judge {judge.judge_model}: {judge.judged} of {report.cases} answers scored, {shares}; "
        f"{judge.failed_verdicts} verdicts failed.",
        markup=False,
    )
    table = Table(title="Figures with bootstrap 95% intervals of the mean")
    for column in ("metric", "mean", "95% interval", "p90", "variance"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    table.add_row("similarity (SAS)", *spread_cells(report.similarity))
    for name, value in report.scores.items():
        table.add_row(name.replace("_", " "), *spread_cells(value))
    console.print(table)


def build_set_command(
    exports: Annotated[list[Path], typer.Argument(help="Export folders (each holding manifest.json), of one stream.")],
    out: Annotated[Path, typer.Option(help="The eval file to write (JSONL).")] = Path("eval-set.jsonl"),
) -> None:
    """Turn the exports' validation split into an eval file: questions with users' corrections as
    references, with the source and page the correction cites; refused when a training question
    would enter it."""
    from pipeline.evaluation.build_set import build_eval_set, write_eval_set
    from pipeline.settings import get_settings
    from pipeline.wiring import make_embedder

    built = build_eval_set(exports, make_embedder(get_settings()))
    if not built.cases:
        raise PlumbError("The exports' validation split holds no corrected answer that cites a passage: no eval set was written.")
    write_eval_set(built.cases, out)
    left_out = ", ".join(f"{reason}: {count}" for reason, count in sorted(built.left_out.items())) or "none"
    console.print(
        f"Wrote {len(built.cases)} questions to {out}, none of them among the {built.train_questions} training "
        f"questions; left out: {left_out}.",
        markup=False,
    )


def compare_command(
    file: Annotated[Path, typer.Argument(help="JSONL: question, reference, optional source and page.")],
    a: Annotated[list[str], typer.Option("--a", help="A setting of side A (the baseline), KEY=VALUE; repeat for more.")] = [],  # noqa: B006 (typer reads the default)
    b: Annotated[list[str], typer.Option("--b", help="A setting of side B (the candidate), KEY=VALUE; repeat for more.")] = [],  # noqa: B006
    out: Annotated[Path, typer.Option(help=REPORT_HELP)] = Path("compare-report.json"),
) -> None:
    """Run two configurations of the chain (models or adapters, prompt versions, index settings) on the same questions:
    win/tie/loss of B against A by the pairwise judge in both orders, SAS and judge means of both,
    the sign test and bootstrap intervals of the differences, and a table per question."""
    from pipeline.evaluation.compare import Side, compare, side_settings
    from pipeline.evaluation.report import write_compare_markdown
    from pipeline.evaluation.tracking import log_compare
    from pipeline.evaluation.evaluate import answer_case, answered_by, check_report_path, load_cases, write_report
    from pipeline.judge.judge import make_judge
    from pipeline.settings import get_settings
    from pipeline.wiring import make_embedder, make_rag_chain, open_index

    if not a and not b:
        raise PlumbError("Give what differs: --a KEY=VALUE for the baseline and/or --b KEY=VALUE for the candidate.")
    if not file.exists():
        raise PlumbError(f"{file} does not exist.")
    check_report_path(out)
    cases = load_cases(file)
    base = get_settings()
    configured = [side_settings(base, pairs) for pairs in (a, b)]  # every override checked before a model loads
    sas = make_embedder(base)
    results, sides = [], []
    for settings, overrides in configured:
        same_embedder = (settings.embedding_model, settings.embedding_backend) == (base.embedding_model, base.embedding_backend)
        embedder = sas if same_embedder else make_embedder(settings)
        index = open_index(settings, embedder)
        try:
            if not index.sources():
                raise PlumbError(f"The index of {overrides or 'the settings'} is empty: ingest the documents first.")
            chain = make_rag_chain(settings, index, embedder)
            results.append([answer_case(case, chain, sas) for case in cases])
        finally:
            index.close()
        sides.append(Side(overrides=overrides, model_id=answered_by(results[-1]), similarity=None, judge=None))
    report = compare(results[0], results[1], (sides[0], sides[1]), make_judge(base))
    write_report(report, out)
    print_compare(console, report)
    console.print(f"Report written to {out}")
    written = write_compare_markdown(report, out)
    run_id = log_compare(report, (configured[0][0], configured[1][0]), file, [out, *written])
    console.print(f"Markdown report {written[0]}; MLflow run {run_id} at {base.mlflow_uri}", markup=False)


def record_eval(report: "EvalReport", settings, file: Path, out: Path) -> None:
    """Write the Markdown report next to the JSON one and log the run to MLflow."""
    from pipeline.evaluation.report import write_eval_markdown
    from pipeline.evaluation.tracking import log_eval

    written = write_eval_markdown(report, out)
    run_id = log_eval(report, settings, file, [out, *written])
    console.print(f"Markdown report {written[0]}; MLflow run {run_id} at {settings.mlflow_uri}", markup=False)


def print_compare(console: Console, report) -> None:
    """Win/tie/loss, both sides' means, the differences with their intervals, and each question."""
    console.print(
        f"B against A on {report.cases} questions (judge {report.judge_model}): {report.wins} wins, "
        f"{report.ties} ties, {report.losses} losses, {report.failed} not judged; sign test p = "
        f"{'n/a' if report.sign_test_p is None else report.sign_test_p}.",
        markup=False,
    )
    console.print(report.consistency(), markup=False)
    table = Table(title="Means with bootstrap 95% intervals")
    for column in ("", "mean", "95% interval", "p90", "variance"):
        table.add_column(column, justify="right" if column else "left")
    for name, value in (
        (f"SAS A ({report.a.model_id})", report.a.similarity),
        (f"SAS B ({report.b.model_id})", report.b.similarity),
        ("SAS B - A", report.similarity_difference),
        ("judge A", report.a.judge),
        ("judge B", report.b.judge),
        ("judge B - A", report.judge_difference),
    ):
        table.add_row(name, *spread_cells(value))
    console.print(table)
    questions = Table(title="Per question")
    for column in ("question", "SAS A", "SAS B", "judge A", "judge B", "B", "orders"):
        questions.add_column(column, justify="left" if column == "question" else "right")
    for case in report.results:
        questions.add_row(
            case.question[:60], f"{case.similarity_a:.3f}", f"{case.similarity_b:.3f}",
            _score(case.judge_a), _score(case.judge_b), case.outcome or "failed", case.orders,
        )
    console.print(questions)


def _score(value: float | None) -> str:
    return "failed" if value is None else f"{value:.1f}"
