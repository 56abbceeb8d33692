"""The export job: feedback from DynamoDB (or a DynamoDB export in S3) to TRL datasets.

`main(ExportConfig(out=...))` reads one window of feedback, builds every dataset into a staging
location, publishes it whole, and only then moves the incremental watermark, so a run that fails
at any point publishes nothing and the next run reads the same window again.
"""

import gc
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args
from uuid import uuid4

from pipeline.errors import ConfigError
from pipeline.export.options import FileFormat, KtoNeutral, LabelSource, Mode
from pipeline.settings import Settings, get_settings


@dataclass(frozen=True)
class ExportConfig:
    out: str = field(
        metadata={"help": "Directory or s3://bucket/prefix; each run adds a folder named by its export id."}
    )
    mode: Mode = field(
        default="incremental",
        metadata={
            "help": "'incremental': what arrived since the last run to this --out with the same --rating, "
            "--model and --user filters (a watermark in DynamoDB per destination and filters); "
            "'all': everything; 'range': feedback received from --since to --until."
        },
    )
    since: datetime | None = field(default=None, metadata={"help": "Start of the range (UTC), with mode 'range'."})
    until: datetime | None = field(default=None, metadata={"help": "End of the range (UTC, exclusive); default now."})
    ratings: tuple[int, ...] = field(default=(), metadata={"help": "Only these ratings (1-5); default all."})
    model_ids: tuple[str, ...] = field(default=(), metadata={"help": "Only answers of these model ids."})
    users: tuple[str, ...] = field(default=(), metadata={"help": "Only feedback from these users."})
    file_format: FileFormat = field(default="jsonl", metadata={"help": "'jsonl' or 'parquet'."})
    redact: bool = field(default=True, metadata={"help": "Replace e-mail addresses and phone numbers."})
    phone_region: str = field(
        default="US", metadata={"help": "Country (ISO code) assumed for phone numbers written without +code."}
    )
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of questions held out for validation (0 to 0.5)."}
    )
    kto_neutral: KtoNeutral = field(
        default="omit", metadata={"help": "Rating 3 in the kto file: 'omit', 'desirable' or 'undesirable'."}
    )
    settle_seconds: float = field(
        default=60.0,
        metadata={
            "help": "Incremental runs stop this long before now, so feedback still on its way into the "
            "index (or from a clock a little behind) is not skipped."
        },
    )
    feedback_export: str = field(
        default="",
        metadata={"help": "Read a DynamoDB export of the feedback table instead: s3://…/AWS/DynamoDB/<export id>."},
    )
    turns_export: str = field(
        default="", metadata={"help": "The DynamoDB export of the turns table, with --feedback-export."}
    )
    tokenizer: str = field(
        default="",
        metadata={
            "help": "The model to be trained, whose tokenizer and chat template count row lengths: a folder or "
            "a Hugging Face model id (e.g. mistralai/Mistral-7B-Instruct-v0.3); default the packaged SmolLM2."
        },
    )
    max_tokens: int = field(
        default=0,
        metadata={
            "help": "Longest prompt + completion in the model's tokens (the trainer's max_length): prompts "
            "longer lose their last uncited passages; rows that still do not fit are left out. 0: no limit."
        },
    )

    label_sources: tuple[LabelSource, ...] = field(
        default=("human",),
        metadata={
            "help": "Whose labels: 'human' (users' feedback), 'ai' (the AI judge's scores and pairwise verdicts, "
            "RLAIF), 'sme' (scores experts overrode on the review page), 'review' (reviewers' consolidated "
            "relevance ratings of sampled transcripts, `plumb review`) and 'expert' (experts' answers to escalations "
            "they chose as training data, SFT); default human only."
        },
    )
    min_judge_agreement: float | None = field(
        default=None,
        metadata={
            "help": "Only AI labels of judges that agree with users at least this much: quadratic-weighted kappa "
            "with their ratings for scores, the share of agreement on non-tied pairs for pairwise verdicts."
        },
    )

    def __post_init__(self) -> None:
        for problem in self._problems():
            raise ConfigError(f"Export not started: {problem}.")

    def _problems(self) -> list[str]:
        import phonenumbers

        problems = [
            *_choice("mode", self.mode, Mode),
            *_choice("file_format", self.file_format, FileFormat),
            *_choice("kto_neutral", self.kto_neutral, KtoNeutral),
        ]
        if not self.out.strip():
            problems.append("--out is empty: give a directory or s3://bucket/prefix")
        if self.mode == "range" and self.since is None:
            problems.append("mode 'range' needs --since")
        if self.mode != "range" and (self.since or self.until):
            problems.append(f"--since and --until go with mode 'range', not {self.mode!r}")
        if self.since and self.until and _utc(self.since) >= _utc(self.until):
            problems.append(f"--since {self.since.isoformat()} is not before --until {self.until.isoformat()}")
        problems += [f"rating {r!r} is not one of 1, 2, 3, 4, 5" for r in self.ratings if r not in range(1, 6)]
        if self.phone_region not in phonenumbers.SUPPORTED_REGIONS:
            problems.append(f"phone region {self.phone_region!r} is not a two-letter country code such as US or GB")
        if not 0 <= self.validation_fraction <= 0.5:
            problems.append(f"validation fraction {self.validation_fraction!r} is not between 0 and 0.5")
        if self.max_tokens < 0:
            problems.append(f"max tokens {self.max_tokens!r} is negative (0 means no limit)")
        if self.settle_seconds < 0:
            problems.append(f"settle seconds {self.settle_seconds!r} is negative")
        if bool(self.feedback_export) != bool(self.turns_export):
            problems.append("--feedback-export and --turns-export go together: give the exports of both tables")
        problems += [
            f"label source {source!r} is not one of human, ai, sme, review, expert"
            for source in self.label_sources
            if source not in get_args(LabelSource)
        ]
        if not self.label_sources:
            problems.append("no label source given: name human, ai, sme, review or expert")
        if self.feedback_export and set(self.label_sources) - {"human"}:
            problems.append("AI and expert labels are read from the DynamoDB tables, not from DynamoDB exports in S3")
        if self.min_judge_agreement is not None and not -1 <= self.min_judge_agreement <= 1:
            problems.append(f"minimum judge agreement {self.min_judge_agreement!r} is not between -1 and 1")
        if self.min_judge_agreement is not None and "ai" not in self.label_sources:
            problems.append("--min-judge-agreement filters AI labels: add --label-source ai")
        return problems

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    location: str | None
    manifest: dict


def main(cfg: ExportConfig, settings: Settings | None = None) -> ExportResult:
    """Run one export; raises a PlumbError subclass (saying what to do) when it cannot finish."""
    from pipeline.embeddings import make_embedder
    from pipeline.export.destinations import destination_for, published_end
    from pipeline.export.lengths import TokenCounter, load_tokenizer
    from pipeline.export.selection import Filters
    from pipeline.export.sources import DynamoSource, S3ExportSource
    from pipeline.export.watermark import Watermarks, watermark_key

    settings = settings or get_settings()
    destination = destination_for(cfg.out)
    filters = Filters(
        frozenset(cfg.ratings),
        frozenset(cfg.model_ids),
        frozenset(cfg.users),
        frozenset(cfg.label_sources),
        cfg.min_judge_agreement,
    )
    # A length limit leaves rows out as a filter does, so it names its own stream too.
    stream = filters.stream() | ({"max_tokens": [cfg.max_tokens]} if cfg.max_tokens else {})
    key = watermark_key(destination.name, stream)
    source = S3ExportSource(cfg.feedback_export, cfg.turns_export) if cfg.feedback_export else DynamoSource(settings)
    watermarks = Watermarks(settings) if cfg.mode == "incremental" else None
    stored = previous = None
    if watermarks:
        watermarks.create_table()
        stored = watermarks.get(key)
        # An export published while storing its watermark failed still counts: the published
        # manifests are the record of what this stream holds, the watermark a fast copy of it.
        published = published_end(destination, key)
        previous = max(filter(None, [stored, published and datetime.fromisoformat(published)]), default=None)
    now = datetime.now(UTC)
    window = _window(cfg, previous, source.end_limit(), now)
    export_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid4().hex[:6]}"
    details = {
        "created_at": now.isoformat(),
        "source": source.description,
        "mode": cfg.mode,
        "window": {"start": _iso(window.start), "end": window.end.isoformat()},
        "watermark": {
            "destination": destination.name,
            "key": key,
            "previous": _iso(previous),
            "next": window.end.isoformat(),
        }
        if watermarks
        else None,
        "options": {name: getattr(cfg, name) for name in OPTION_FIELDS},
    }
    labels = None
    if set(cfg.label_sources) - {"human"}:
        from pipeline.export.ai_labels import AiLabels

        labels = AiLabels(settings)
        details["judge_agreement"] = labels.agreement() if cfg.min_judge_agreement is not None else None
    with _fewer_collections():
        embedder = make_embedder(settings)  # its model loads only if the split needs it
        counter = TokenCounter(load_tokenizer(cfg.tokenizer, settings.models_dir))
        result = _build_and_publish(
            cfg, filters, source, labels, window, destination, export_id, details, embedder, counter
        )
    if watermarks and (previous is None or window.end > previous):
        watermarks.advance(key, stream, stored, window.end, export_id)
    return result


OPTION_FIELDS = (
    "file_format",
    "redact",
    "phone_region",
    "validation_fraction",
    "kto_neutral",
    "tokenizer",
    "max_tokens",
)


def _build_and_publish(
    cfg: ExportConfig, filters, source, labels, window, destination, export_id: str, details: dict, embedder, counter
) -> ExportResult:
    """Every dataset built in staging, then published whole; on any failure the staging is removed."""
    from pipeline.export.build import BuildOptions, DatasetBuilder
    from pipeline.export.card import manifest, write_card, write_manifest
    from pipeline.export.errors import ExportFailed
    from pipeline.export.selection import redacted

    options = BuildOptions(cfg.validation_fraction, cfg.kto_neutral, cfg.file_format, cfg.max_tokens)
    staging = destination.staging(export_id)
    try:
        with tempfile.TemporaryDirectory(prefix="plumb-export-scratch-") as scratch:
            builder = DatasetBuilder(staging, Path(scratch) / "build.sqlite", options, export_id, embedder, counter)
            for rated in source.rated(window, Path(scratch)):
                if filters.accepts(rated):
                    builder.add(redacted(rated, cfg.phone_region) if cfg.redact else rated)
                else:
                    builder.not_matched(rated, supersedes=cfg.mode != "all")
            if labels is not None:
                region = cfg.phone_region if cfg.redact else None
                _add_ai_labels(builder, labels, filters, window, details.get("judge_agreement") or {}, region)
            summary = builder.finish()
        details = {
            **details,
            "filters": filters.describe(),
            "feedback": {"versions_read": source.stats.versions, "missing_turns": source.stats.missing_turns},
        }
        if summary.rows_too_long and not summary.rows:
            raise ExportFailed(
                f"Nothing was exported: none of the {sum(summary.rows_too_long.values())} rows fits --max-tokens "
                f"{cfg.max_tokens}, even with only the passages its answer cites. Raise --max-tokens (an export "
                "without it reports the rows' lengths in tokens)."
            )
        content = manifest(summary, export_id, details)
        if not summary.items and not summary.supersedes and not summary.rows:
            destination.discard(staging)
            return ExportResult(export_id, None, content)
        write_card(staging, content)
        write_manifest(staging, content)
        return ExportResult(export_id, destination.publish(staging, export_id), content)
    except OSError as error:
        destination.discard(staging)
        raise ExportFailed(
            f"Writing the export failed ({error}); nothing was published. Free some space or fix the "
            "permissions, then run it again."
        ) from error
    except BaseException:
        destination.discard(staging)
        raise


def _add_ai_labels(builder, labels, filters, window, figures: dict, region: str | None) -> None:
    """The AI judge's and experts' labels received in the window, the reviewers' consolidated
    ratings given in it (review_labels.py) and the experts' answers chosen as training data in it
    (expert_labels.py), as the filters and the agreement floor allow, redacted as
    feedback is (`region` None: not redacted); labels the filters leave out are counted, not listed
    as superseding anything."""
    from dataclasses import replace
    from itertools import chain

    from pipeline.export.ai_labels import trusted
    from pipeline.export.redact import redact
    from pipeline.export.selection import redacted

    def clean(rated):
        return rated if region is None else redacted(rated, region)

    counts = builder.summary.ai_labels
    judged = labels.labels(window.start, window.end) if filters.label_sources & {"ai", "sme"} else ()
    reviewed = labels.reviews.labels(window.start, window.end) if "review" in filters.label_sources else ()
    for label in chain(judged, reviewed):
        if not filters.accepts_label(label.rated.turn, label.level, label.source):
            counts["not_matched"] += 1
        elif label.source == "ai" and not trusted(label.judge, figures, filters.min_judge_agreement):
            counts["below_agreement"] += 1
        else:
            builder.add_label(replace(label, rated=clean(label.rated)))
    for pair in labels.pairs(window.start, window.end):
        if not filters.accepts_pair(pair.chosen.turn, pair.rejected.turn):
            counts["pairs_not_matched"] += 1
        elif not trusted(pair.judge, figures, filters.min_judge_agreement):
            counts["below_agreement"] += 1
        else:
            builder.add_judged_pair(replace(pair, chosen=clean(pair.chosen), rejected=clean(pair.rejected)))
    experts = labels.experts.answers(window.start, window.end) if "expert" in filters.label_sources else ()
    for expert in experts:
        if not filters.accepts_label(expert.rated.turn, None, "expert"):
            counts["not_matched"] += 1
        else:
            answer = expert.answer if region is None else redact(expert.answer, region)
            builder.add_expert_answer(replace(expert, rated=clean(expert.rated), answer=answer))
    counts["missing_turns"] = labels.missing_turns + labels.reviews.missing_turns + labels.experts.missing_turns


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Let the cyclic garbage collector run less often while the export runs.

    Each page DynamoDB returns decodes into tens of thousands of dicts and strings that live until
    the page is written out; at CPython's default threshold (a collection every 700 allocations) the
    collector walks them again and again, a fifth of the export's CPU. The export makes no cycles
    worth collecting early. The threshold goes back when the last of the exports running in this
    process (the admin page may run two) ends.
    """
    global _exports_running, _thresholds
    with _gc_lock:
        if _exports_running == 0:
            _thresholds = gc.get_threshold()
            gc.set_threshold(50_000, 20, 100)
        _exports_running += 1
    try:
        yield
    finally:
        with _gc_lock:
            _exports_running -= 1
            if _exports_running == 0:
                gc.set_threshold(*_thresholds)


_gc_lock = threading.Lock()
_exports_running = 0
_thresholds = gc.get_threshold()


def _window(cfg: ExportConfig, previous: datetime | None, limit: datetime | None, now: datetime):
    from pipeline.export.sources import Window

    match cfg.mode:
        case "incremental":
            start, end = previous, now - timedelta(seconds=cfg.settle_seconds)
        case "all":
            start, end = None, now
        case "range":
            start, end = _utc(cfg.since), _utc(cfg.until) if cfg.until else now
    if limit is not None:
        end = min(end, limit)
    if start is not None and end < start:
        end = start
    return Window(start, end)


def _choice(name: str, value: str, allowed) -> list[str]:
    choices = get_args(allowed)
    return [] if value in choices else [f"{name} {value!r} is not one of {', '.join(choices)}"]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
