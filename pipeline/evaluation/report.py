"""The Markdown report written next to an eval or compare JSON report, with its plots as PNG files
beside it: the judge's score histogram (both sides' for a compare, before and after) and the
win/tie/loss bar. Plots are drawn with matplotlib's object API (no pyplot state, no display)."""

from pathlib import Path

from matplotlib.figure import Figure

from pipeline.evaluation.compare import CompareReport
from pipeline.evaluation.stats import Spread
from pipeline.evaluation.evaluate import EvalReport
from pipeline.records import JUDGE_SCORES


def write_eval_markdown(report: EvalReport, json_path: Path) -> list[Path]:
    """`<json stem>.md` and its histogram PNG; returns the files written."""
    lines = [
        f"# Evaluation: {report.model_id}",
        "",
        f"{report.cases} questions ({report.unmatched} naming a document or place the index does not hold, "
        f"scored as misses); hit@k {_fmt(report.hit_at_k)}, page hit@k {_fmt(report.page_hit_at_k)}, "
        f"not covered {report.not_covered_share:.0%}, latency p50 {report.latency_p50_ms:.0f} ms.",
        "",
        "| metric | mean | 95% interval | p90 | variance |",
        "| --- | --- | --- | --- | --- |",
        _row("similarity (SAS)", report.similarity),
    ]
    written = []
    if report.judge is not None and report.scores is not None:
        lines += [_row(name.replace("_", " "), value) for name, value in report.scores.items()]
        judge = report.judge
        lines += ["", f"Judge {judge.judge_model}: {judge.judged} answers scored, {judge.failed_verdicts} verdicts failed; "
                  f"share above 3: {_fmt(judge.share_above_3)}, below 3: {_fmt(judge.share_below_3)}."]
        plot = json_path.with_name(f"{json_path.stem}-scores.png")
        _histogram({report.model_id: [r.judge_score for r in report.results if r.judge_score is not None]}, plot)
        lines += ["", f"![judge scores]({plot.name})"]
        written.append(plot)
    lines += ["", "| question | SAS | judge | faithful | relevant | context precision | context recall |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in report.results:
        cells = [r.similarity, r.judge_score, r.faithfulness, r.answer_relevancy, r.context_precision, r.context_recall]
        lines.append(f"| {_cell(r.question)} | " + " | ".join(_fmt(value) for value in cells) + " |")
    return [_write(json_path.with_suffix(".md"), lines), *written]


def write_compare_markdown(report: CompareReport, json_path: Path) -> list[Path]:
    """`<json stem>.md` with both sides' score histograms and the win/tie/loss bar as PNGs."""
    scores = json_path.with_name(f"{json_path.stem}-scores.png")
    bar = json_path.with_name(f"{json_path.stem}-outcomes.png")
    _histogram(
        {
            f"A {report.a.model_id}": [c.judge_a for c in report.results if c.judge_a is not None],
            f"B {report.b.model_id}": [c.judge_b for c in report.results if c.judge_b is not None],
        },
        scores,
    )
    _outcomes(report.wins, report.ties, report.losses, bar)
    lines = [
        f"# Compare: A {report.a.model_id} {report.a.overrides} vs B {report.b.model_id} {report.b.overrides}",
        "",
        f"B against A on {report.cases} questions (judge {report.judge_model}): {report.wins} wins, {report.ties} ties, "
        f"{report.losses} losses, {report.failed} not judged; sign test p = {_fmt(report.sign_test_p)}.",
        report.consistency(),
        "",
        "| | mean | 95% interval | p90 | variance |",
        "| --- | --- | --- | --- | --- |",
        _row("SAS A", report.a.similarity),
        _row("SAS B", report.b.similarity),
        _row("SAS B - A", report.similarity_difference),
        _row("judge A", report.a.judge),
        _row("judge B", report.b.judge),
        _row("judge B - A", report.judge_difference),
        "",
        f"![judge scores]({scores.name}) ![win/tie/loss]({bar.name})",
        "",
        "| question | SAS A | SAS B | judge A | judge B | B | orders |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in report.results:
        cells = [c.similarity_a, c.similarity_b, c.judge_a, c.judge_b]
        lines.append(f"| {_cell(c.question)} | " + " | ".join(_fmt(v) for v in cells) + f" | {c.outcome or 'failed'} | {c.orders} |")
    return [_write(json_path.with_suffix(".md"), lines), scores, bar]


def _histogram(series: dict[str, list[float]], path: Path) -> None:
    """Side-by-side bars of how many answers got each half point, one colour per series."""
    figure = Figure(figsize=(7, 3.5))
    axes = figure.subplots()
    width = 0.4 / len(series)
    for n, (name, values) in enumerate(series.items()):
        counts = [values.count(level) for level in JUDGE_SCORES]
        axes.bar([level + (n - (len(series) - 1) / 2) * width for level in JUDGE_SCORES], counts, width, label=name)
    axes.set(xlabel="judge score", ylabel="answers", xticks=list(JUDGE_SCORES), title="Judge score distribution")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def _outcomes(wins: int, ties: int, losses: int, path: Path) -> None:
    figure = Figure(figsize=(5, 3))
    axes = figure.subplots()
    axes.bar(["win", "tie", "loss"], [wins, ties, losses], color=["tab:green", "tab:gray", "tab:red"])
    axes.set(ylabel="questions", title="B against A")
    figure.tight_layout()
    figure.savefig(path)


def _row(name: str, value: Spread | None) -> str:
    if value is None:
        return f"| {name} | n/a | n/a | n/a | n/a |"
    bounds = "n/a" if value.low is None else f"{value.low:.3f} – {value.high:.3f}"
    return f"| {name} | {value.mean:.3f} | {bounds} | {value.p90:.3f} | {value.variance:.4f} |"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: one line, pipes escaped, cut at 80 characters."""
    return " ".join(text.split()).replace("|", "\\|")[:80]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
