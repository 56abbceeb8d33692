"""`plumb review sample` (draw answered turns into a review batch) and `plumb review consolidate`
(the reviewers' ratings as a manifest): the commands of a typer group that pipeline/cli.py
registers. They raise PlumbError for the CLI to report."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.errors import PlumbError
from pipeline.escalation.review import Candidate, Stratum, consolidate, make_batch, manifest_json

console = Console(soft_wrap=True)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def candidates(store, since: datetime | None) -> list[Candidate]:
    """Every turn answered since `since` (all when None) with its asker's latest rating."""
    now = datetime.now(UTC)
    ratings: dict[str, tuple[int, int]] = {}  # turn id -> (version, rating) of the asker's latest verdict
    for feedback in store.feedback_between(since or EPOCH, now):
        if feedback.version >= ratings.get(feedback.turn_id, (0, 0))[0]:
            ratings[feedback.turn_id] = (feedback.version, feedback.rating)
    return [
        Candidate(turn=turn, rating=ratings.get(turn.turn_id, (0, None))[1])
        for turn in store.turns_between(since, now)
    ]


def sample_command(
    size: Annotated[int, typer.Option(help="Transcripts in the batch.")] = 50,
    seed: Annotated[int, typer.Option(help="The same seed over the same turns draws the same batch.")] = 0,
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Stratify by rating, model or document; repeat to combine.")
    ] = None,
    reviewers: Annotated[int, typer.Option(help="Reviewers wanted per transcript.")] = 1,
    since: Annotated[datetime | None, typer.Option(help="Only turns answered from this time (UTC).")] = None,
) -> None:
    """Draw answered turns into a new review batch that reviewers then rate on the review page."""
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.settings import get_settings

    strata = list(dict.fromkeys(by or []))
    unknown = [name for name in strata if name not in ("rating", "model", "document")]
    if unknown:
        raise PlumbError(f"Cannot stratify by {', '.join(unknown)}: use rating, model or document.")
    if size < 1 or reviewers < 1:
        raise PlumbError("--size and --reviewers must be 1 or more.")
    store = DynamoFeedbackStore(get_settings())
    since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    chosen: list[Stratum] = strata  # type: ignore[assignment] (checked above)
    batch = make_batch(candidates(store, since), size, seed, chosen, reviewers)
    if not batch.items:
        raise PlumbError("No answered turns to sample: nothing was drawn.")
    store.review_batches.save_batch(batch)
    console.print(f"Review batch {batch.batch_id}: {len(batch.items)} transcripts, {reviewers} reviewer(s) each.")


def consolidate_command(
    batch_id: Annotated[str, typer.Argument(help="The batch, as `plumb review sample` named it.")],
    out: Annotated[Path, typer.Option(help="Where to write the manifest (JSON).")] = Path("review-manifest.json"),
) -> None:
    """Write the batch's ratings, consolidated score and agreement per transcript as a manifest."""
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.settings import get_settings

    found = DynamoFeedbackStore(get_settings()).review_batches.batch(batch_id)
    if found is None:
        raise PlumbError(f"There is no review batch {batch_id!r}.")
    manifest = consolidate(*found)
    try:
        out.write_text(manifest_json(manifest), encoding="utf-8")
    except OSError as exc:
        raise PlumbError(f"Cannot write the manifest to {out}: {exc.strerror}. Give a file in a folder that exists.") from None
    console.print(f"{manifest['items_rated']} of {len(manifest['items'])} transcripts rated; manifest in {out}.")
