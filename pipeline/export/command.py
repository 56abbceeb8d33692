"""`plumb export`: the export job's options as a typer command. Register it with
`app.command("export")(export_command)`; it raises PlumbError subclasses for the CLI to report."""

from datetime import datetime
from typing import Annotated

import typer

from pipeline.export.job import ExportConfig

HELP = ExportConfig.help()
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


def export_command(
    out: Annotated[str, typer.Option("--out", help=HELP["out"])],
    mode: Annotated[str, typer.Option(help=HELP["mode"])] = "incremental",
    since: Annotated[datetime | None, typer.Option(help=HELP["since"], formats=DATE_FORMATS)] = None,
    until: Annotated[datetime | None, typer.Option(help=HELP["until"], formats=DATE_FORMATS)] = None,
    rating: Annotated[list[int] | None, typer.Option("--rating", help=HELP["ratings"] + " Repeat for several.")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help=HELP["model_ids"] + " Repeat for several.")] = None,
    user: Annotated[list[str] | None, typer.Option("--user", help=HELP["users"] + " Repeat for several.")] = None,
    file_format: Annotated[str, typer.Option("--format", help=HELP["file_format"])] = "jsonl",
    redact: Annotated[bool, typer.Option("--redact/--no-redact", help=HELP["redact"])] = True,
    phone_region: Annotated[str, typer.Option(help=HELP["phone_region"])] = "US",
    validation_fraction: Annotated[float, typer.Option(help=HELP["validation_fraction"])] = 0.1,
    kto_neutral: Annotated[str, typer.Option(help=HELP["kto_neutral"])] = "omit",
    settle_seconds: Annotated[float, typer.Option(help=HELP["settle_seconds"])] = 60.0,
    feedback_export: Annotated[str, typer.Option(help=HELP["feedback_export"])] = "",
    turns_export: Annotated[str, typer.Option(help=HELP["turns_export"])] = "",
    tokenizer: Annotated[str, typer.Option(help=HELP["tokenizer"])] = "",
    max_tokens: Annotated[int, typer.Option(help=HELP["max_tokens"])] = 0,
    label_source: Annotated[
        list[str] | None, typer.Option("--label-source", help=HELP["label_sources"] + " Repeat for several.")
    ] = None,
    min_judge_agreement: Annotated[float | None, typer.Option(help=HELP["min_judge_agreement"])] = None,
) -> None:
    """Export feedback as TRL datasets (sft, preference, reward, kto, ratings) with a manifest."""
    from pipeline.export.job import main

    config = ExportConfig(
        out=out,
        mode=mode,
        since=since,
        until=until,
        ratings=tuple(rating or ()),
        model_ids=tuple(model or ()),
        users=tuple(user or ()),
        file_format=file_format,
        redact=redact,
        phone_region=phone_region,
        validation_fraction=validation_fraction,
        kto_neutral=kto_neutral,
        settle_seconds=settle_seconds,
        feedback_export=feedback_export,
        turns_export=turns_export,
        tokenizer=tokenizer,
        max_tokens=max_tokens,
        label_sources=tuple(label_source or ("human",)),
        min_judge_agreement=min_judge_agreement,
    )
    result = main(config)
    window = result.manifest["window"]
    span = f"from {window['start'] or 'the beginning'} to {window['end']}"
    not_matched = result.manifest["not_matched"]
    missing = result.manifest["feedback"]["missing_turns"]
    unanswered = f"{missing} feedback items name a turn that is not stored, so they were left out" if missing else ""
    if result.location is None:
        if not_matched or missing:
            why = [f"{not_matched} did not match the filters" if not_matched else "", unanswered]
            typer.echo(f"Nothing to export from {span}: " + "; ".join(filter(None, why)) + ".")
        else:
            typer.echo(f"Nothing to export: no feedback received {span}.")
        return
    counts = ", ".join(f"{name} {sum(splits.values())}" for name, splits in result.manifest["counts"].items())
    labels = result.manifest["ai_labels"]
    ai = ""
    if config.label_sources != ("human",):
        ai = (
            f", {labels['ai']} AI scores, {labels['sme']} expert scores, {labels['pairs']} AI pairs, "
            f"{labels['review']} reviewed transcripts, {labels['expert']} expert answers"
        )
    typer.echo(f"Exported {result.manifest['items']} feedback items{ai} to {result.location} ({counts} rows).")
    if missing:
        typer.echo(f"{unanswered} (counted in the manifest as feedback.missing_turns).")
    if superseded := sum(not entry["in_export"] for entry in result.manifest["supersedes"]):
        typer.echo(
            f"{superseded} changed verdict(s) are left out by the filters; rows of their earlier versions in this "
            "stream's earlier exports, if any, are out of date (listed under `supersedes` in the manifest)."
        )
