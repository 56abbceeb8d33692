"""The export job against real DynamoDB Local: file contents, incremental reruns, faults."""

import gc
import hashlib
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.errors import ConfigError, StoreUnavailable
from pipeline.export.job import ExportConfig, _fewer_collections, main
from pipeline.export.watermark import Watermarks, watermark_key
from pipeline.feedback.dynamo import DynamoFeedbackStore, create_tables
from pipeline.feedback.local_dynamo import LocalDynamo
from pipeline.settings import get_settings
from tests.export_factory import CORRECTION, SEEDS, Seed, bulk_pairs, bulk_store, make_pair, store_seeds


def rows(export: Path, name: str, split: str = "train") -> list[dict]:
    path = export / name / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def answers(export: Path, name: str, column: str = "completion") -> list[str]:
    return [row[column][-1]["content"] for row in rows(export, name)]


def run(settings, out: Path, **options) -> tuple[Path | None, dict]:
    result = main(ExportConfig(out=str(out), **{"settle_seconds": 0, "validation_fraction": 0.0, **options}), settings)
    return (Path(result.location) if result.location else None), result.manifest


@pytest.fixture
def store(dynamo_settings):
    return DynamoFeedbackStore(dynamo_settings)


@pytest.fixture
def seeded(store):
    return store_seeds(store)


def test_each_file_holds_the_expected_rows(dynamo_settings, seeded, tmp_path):
    export, manifest = run(dynamo_settings, tmp_path / "out", mode="all")
    alice, bob, carol, dave, erin, frank = (seed.answer for seed in SEEDS)

    # carol's verdict endorses the same answer to the same prompt as alice's: one row per verdict.
    assert sorted(answers(export, "sft")) == sorted([alice, carol, CORRECTION, frank])
    assert sorted(
        zip(answers(export, "preference", "chosen"), answers(export, "preference", "rejected"), strict=True)
    ) == sorted([(CORRECTION, bob), (alice, bob)])
    reward = rows(export, "reward")
    assert sorted((r["chosen"][1]["content"], r["rejected"][1]["content"]) for r in reward) == sorted(
        [(CORRECTION, bob), (alice, bob)]
    )
    assert all(r["chosen"][0]["role"] == "user" and "prompt" not in r for r in reward)
    erin_redacted = "Call John at [email] or [phone]."
    kto = sorted((r["completion"][0]["content"], r["label"]) for r in rows(export, "kto"))
    assert kto == sorted(
        [(alice, True), (carol, True), (bob, False), (CORRECTION, True), (frank, True), (erin_redacted, False)]
    )
    ratings = sorted((r["completion"][0]["content"], r["score"], r["note"]) for r in rows(export, "ratings"))
    assert ratings == sorted(
        [
            (alice, 5, ""),
            (bob, 1, "wrong, see page 21"),
            (carol, 4, ""),
            (dave, 3, "partly right"),
            (erin_redacted, 2, "my number is [phone], don't share it"),
            (frank, 4, ""),
        ]
    )

    prompt = rows(export, "sft")[0]["prompt"]
    assert [m["role"] for m in prompt] == ["user"] and "– page" in prompt[0]["content"]
    assert manifest["counts"]["sft"] == {"train": 4, "validation": 0}
    assert manifest["items"] == 6
    assert manifest["excluded"] == {} and manifest["supersedes"] == []
    on_disk = json.loads((export / "manifest.json").read_text())
    assert on_disk == manifest and on_disk["source"]["table"] == dynamo_settings.table_prefix + "feedback"
    for name, entry in manifest["files"].items():
        data = (export / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["rows"] == len(data.splitlines())
    assert "config_name: kto" in (export / "README.md").read_text()


def test_contact_details_are_redacted_by_default_and_kept_when_asked(dynamo_settings, seeded, tmp_path):
    export, _ = run(dynamo_settings, tmp_path / "redacted", mode="all")
    text = "".join(p.read_text() for p in export.rglob("*.jsonl"))
    for secret in ("john.doe@example.com", "(212) 736-5000", "+44 20 7946 0958", "202-555-0143"):
        assert secret not in text
    raw, manifest = run(dynamo_settings, tmp_path / "raw", mode="all", redact=False)
    assert "john.doe@example.com" in "".join(p.read_text() for p in raw.rglob("*.jsonl"))
    assert manifest["options"]["redact"] is False


def test_filters_by_rating_model_and_user(dynamo_settings, seeded, tmp_path):
    export, manifest = run(dynamo_settings, tmp_path / "a", mode="all", ratings=(1, 2))
    assert sorted(r["score"] for r in rows(export, "ratings")) == [1, 2]
    assert manifest["filters"]["ratings"] == [1, 2]
    export, _ = run(dynamo_settings, tmp_path / "b", mode="all", model_ids=("mistral-7b-v2",))
    assert answers(export, "ratings") == [SEEDS[5].answer]
    export, _ = run(dynamo_settings, tmp_path / "c", mode="all", users=("dave",))
    assert answers(export, "ratings") == [SEEDS[3].answer] and rows(export, "sft") == []


def test_incremental_rerun_exports_only_what_is_new(dynamo_settings, store, seeded, tmp_path):
    out = tmp_path / "out"
    first, manifest = run(dynamo_settings, out)
    assert manifest["items"] == 6 and manifest["window"]["start"] is None
    nothing, empty = run(dynamo_settings, out)
    assert nothing is None and empty["items"] == 0

    new = [make_pair(Seed("gina", "Where is the fire exit?", f"Door {n} [1].", 5, SEEDS[0].citation)) for n in (1, 2)]
    for turn, feedback in new:
        store.save_turn(turn)
        store.save_feedback(feedback)
    second, manifest = run(dynamo_settings, out)
    assert sorted(answers(second, "ratings")) == ["Door 1 [1].", "Door 2 [1]."]
    assert manifest["watermark"]["previous"] == empty["watermark"]["next"]

    everything = [json.dumps(row) for export in (first, second) for row in rows(export, "ratings")]
    assert len(everything) == len(set(everything)) == 8


PROVENANCE = {"turn_id", "user", "feedback_version", "model_id", "prompt_version", "label_source", "export_id"}


def test_every_row_names_its_turn_verdict_model_prompt_and_export(dynamo_settings, seeded, tmp_path):
    export, manifest = run(dynamo_settings, tmp_path / "out", mode="all")
    turns = {turn.turn_id: turn for turn, _ in seeded}
    for name in ("sft", "kto", "ratings"):
        for row in rows(export, name):
            assert PROVENANCE <= set(row), name
            turn = turns[row["turn_id"]]
            expected = (turn.user, turn.model_id, turn.prompt_version)
            assert (row["user"], row["model_id"], row["prompt_version"]) == expected
            assert (row["feedback_version"], row["label_source"], row["export_id"]) == (1, "human", export.name)
    bob = next(turn for turn, _ in seeded if turn.user == "bob")
    alice = next(turn for turn, _ in seeded if turn.user == "alice")
    for name in ("preference", "reward"):
        pairs = {r["pair"]: r for r in rows(export, name)}
        correction, rating = pairs["correction"], pairs["rating"]
        assert correction["chosen_turn_id"] == correction["rejected_turn_id"] == bob.turn_id
        assert correction["chosen_model_id"] == "" and correction["rejected_model_id"] == bob.model_id
        assert (rating["chosen_turn_id"], rating["rejected_turn_id"]) == (alice.turn_id, bob.turn_id)
        assert (rating["chosen_user"], rating["rejected_user"]) == ("alice", "bob")
        assert rating["label_source"] == "human" and rating["export_id"] == manifest["export_id"]


def test_answers_are_paired_only_with_answers_to_the_same_prompt(dynamo_settings, store, tmp_path):
    """Same question, other passages: a different prompt, so no pair; the same prompt twice: a pair."""
    other_passage = SEEDS[0].citation.model_copy(update={"page": 22, "passage": "Landings every 9 m of ramp."})
    seeds = [
        Seed("ann", SEEDS[0].question, "1:12 [1].", 5, SEEDS[0].citation),
        Seed("ben", SEEDS[0].question, "Landings every 9 m [1].", 1, other_passage),
        Seed("cat", SEEDS[0].question, "1:8 [1].", 2, SEEDS[0].citation),
    ]
    store_seeds(store, seeds)
    export, _ = run(dynamo_settings, tmp_path / "out", mode="all")
    pairs = [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows(export, "preference")]
    assert pairs == [("1:12 [1].", "1:8 [1].")]
    [row] = rows(export, "preference")
    assert "Landings" not in row["prompt"][-1]["content"]


def test_turns_without_model_output_or_a_rebuildable_prompt_make_no_row(dynamo_settings, store, tmp_path):
    """Stored in DynamoDB and read back: each kind is left out and counted by reason."""
    from pipeline.feedback.dynamo import PASSAGE_MAX_CHARS
    from pipeline.prompts import NOT_COVERED

    canned = {"answer": NOT_COVERED, "generated": False, "not_covered": True}
    long_passage = SEEDS[0].citation.model_copy(update={"passage": "x" * (PASSAGE_MAX_CHARS + 1)})
    cases = [
        (canned, 5, None),
        (canned, 1, CORRECTION),
        ({"answer": "  \n "}, 4, None),
        ({"history": None}, 5, None),
        ({"citations": [long_passage]}, 5, None),
    ]
    for n, (update, rating, correction) in enumerate(cases):
        turn, feedback = make_pair(Seed(f"user{n}", SEEDS[0].question, "unused", rating, SEEDS[0].citation))
        store.save_turn(turn.model_copy(update=update))
        store.save_feedback(feedback.model_copy(update={"correction": correction}))
    store_seeds(store, SEEDS[:1])
    export, manifest = run(dynamo_settings, tmp_path / "out", mode="all")
    assert manifest["excluded"] == {
        "not_generated": 1,
        "retrieval_miss": 1,
        "empty_answer": 1,
        "history_not_recorded": 1,
        "passage_truncated": 1,
    }
    assert manifest["items"] == 6
    for name in ("sft", "kto", "ratings"):
        assert [row["user"] for row in rows(export, name)] == ["alice"], name
    assert rows(export, "preference") == []
    card = (export / "README.md").read_text()
    assert "retrieval_miss" in card and "not_generated" in card


def test_mode_all_is_a_snapshot_of_the_latest_verdicts(dynamo_settings, store, seeded, tmp_path):
    out = tmp_path / "out"
    first, _ = run(dynamo_settings, out)
    turn, feedback = seeded[0]
    store.save_feedback(feedback.model_copy(update={"rating": 2, "note": "on second thought", "version": 2}))
    store.save_feedback(feedback.model_copy(update={"rating": 3, "note": "third thought", "version": 3}))
    incremental, manifest = run(dynamo_settings, out)
    latest = {"turn_id": turn.turn_id, "user": "alice", "feedback_version": 3, "in_export": True}
    assert manifest["supersedes"] == [latest]

    snapshot, manifest = run(dynamo_settings, tmp_path / "all", mode="all")
    alice = [(r["feedback_version"], r["score"], r["note"]) for r in rows(snapshot, "ratings") if r["user"] == "alice"]
    assert alice == [(3, 3, "third thought")]
    assert len(rows(snapshot, "ratings")) == 6 and manifest["supersedes"] == [latest]

    # Assembling the two incremental exports as the card says gives the snapshot, file by file: alice's
    # latest verdict (3) makes no sft row, so her earlier sft row must go too.
    exports = (first, incremental)
    latest: dict = {}
    for row in (row for export in exports for row in rows(export, "ratings")):
        key = (row["turn_id"], row["user"])
        latest[key] = max(latest.get(key, 0), row["feedback_version"])
    for name in ("sft", "kto", "ratings"):
        assembled = [
            {**row, "export_id": None}
            for export in exports
            for row in rows(export, name)
            if row["feedback_version"] == latest[(row["turn_id"], row["user"])]
        ]
        expected = [{**row, "export_id": None} for row in rows(snapshot, name)]
        assert sorted(map(json.dumps, assembled)) == sorted(map(json.dumps, expected)), name
    assert any(row["user"] == "alice" for row in rows(first, "sft"))


def test_a_filtered_incremental_run_does_not_move_the_unfiltered_watermark(dynamo_settings, store, seeded, tmp_path):
    """Each (destination, filters) stream holds every item it selects exactly once over its runs: the
    rating-1 items are in the `--rating 1` stream once and in the unfiltered stream once (the two
    streams are different datasets sharing a folder); every other item is in the unfiltered stream once."""
    out = tmp_path / "out"
    stream = {"rating 1": [], "all": []}

    def incremental(name: str, **filters) -> dict:
        export, manifest = run(dynamo_settings, out, redact=False, **filters)
        stream[name] += [(r["score"], r["completion"][0]["content"]) for r in rows(export, "ratings")] if export else []
        return manifest

    first = incremental("rating 1", ratings=(1,))
    second = incremental("all")
    for n in (1, 4):
        turn, feedback = make_pair(Seed("gina", "Where is the fire exit?", f"Door {n} [1].", n, SEEDS[0].citation))
        store.save_turn(turn)
        store.save_feedback(feedback)
    incremental("all")
    incremental("rating 1", ratings=(1,))

    every = [(seed.rating, seed.answer) for seed in SEEDS] + [(1, "Door 1 [1]."), (4, "Door 4 [1].")]
    assert sorted(stream["all"]) == sorted(every)
    assert sorted(stream["rating 1"]) == sorted(item for item in every if item[0] == 1)
    assert first["watermark"]["key"] != second["watermark"]["key"]


def test_a_filtered_stream_learns_that_a_verdict_it_exported_changed(dynamo_settings, store, tmp_path, capsys):
    """A `--rating 1` stream exported gina's 1; she changes it to 5, which the stream does not select.
    Its next run lists the new version as superseding (not in the export), so assembling the stream's
    exports as the card says leaves her old row out; and the command says feedback arrived."""
    from pipeline.export.command import export_command

    turn, feedback = make_pair(Seed("gina", "Where is the fire exit?", "Door 1 [1].", 1, SEEDS[0].citation))
    store.save_turn(turn)
    store.save_feedback(feedback)
    out = tmp_path / "out"
    first, _ = run(dynamo_settings, out, ratings=(1,))
    assert [r["score"] for r in rows(first, "ratings")] == [1]
    store.save_feedback(feedback.model_copy(update={"rating": 5, "version": 2}))
    second, manifest = run(dynamo_settings, out, ratings=(1,))
    assert manifest["items"] == 0 and manifest["not_matched"] == 1
    assert manifest["supersedes"] == [
        {"turn_id": turn.turn_id, "user": "gina", "feedback_version": 2, "in_export": False}
    ]
    assert second is not None and rows(second, "ratings") == []
    latest = {(e["turn_id"], e["user"]): e["feedback_version"] for e in manifest["supersedes"]}
    assembled = [r for r in rows(first, "ratings") if r["feedback_version"] >= latest.get((r["turn_id"], r["user"]), 0)]
    assert assembled == []

    # A new verdict the stream does not select, superseding nothing: nothing published, and the
    # command says that feedback arrived but none matched.
    other, verdict = make_pair(Seed("hal", "Where is the fire exit?", "Door 2 [1].", 5, SEEDS[0].citation))
    store.save_turn(other)
    store.save_feedback(verdict)
    export_command(out=str(out), rating=[1], settle_seconds=0)
    said = capsys.readouterr().out
    assert said.startswith("Nothing to export from ") and said.endswith(": 1 did not match the filters.\n")


def test_a_watermark_keyed_by_the_destination_alone_is_not_trusted(dynamo_settings, seeded, tmp_path):
    """Before keys named the filters, a filtered run may have moved the bare destination's watermark,
    so the first run of every stream after the upgrade reads from the beginning."""
    out = tmp_path / "out"
    watermarks = Watermarks(dynamo_settings)
    watermarks.create_table()
    watermarks._table(str(out.resolve()), watermark=datetime.now(UTC), updated_at=datetime.now(UTC)).save()
    export, manifest = run(dynamo_settings, out)
    assert manifest["window"]["start"] is None and len(rows(export, "ratings")) == len(SEEDS)


def test_changed_feedback_is_exported_again_in_its_latest_version(dynamo_settings, store, seeded, tmp_path):
    out = tmp_path / "out"
    run(dynamo_settings, out)
    turn, feedback = seeded[0]
    store.save_feedback(feedback.model_copy(update={"rating": 2, "note": "on second thought", "version": 2}))
    store.save_feedback(feedback.model_copy(update={"rating": 3, "note": "third thought", "version": 3}))
    export, manifest = run(dynamo_settings, out)
    assert [(r["score"], r["note"]) for r in rows(export, "ratings")] == [(3, "third thought")]
    assert manifest["feedback"]["versions_read"] == 2


def test_range_mode_reads_feedback_received_in_the_range(dynamo_settings, seeded, tmp_path):
    future = datetime.now(UTC) + timedelta(hours=1)
    export, _ = run(dynamo_settings, tmp_path / "a", mode="range", since=future)
    assert export is None
    export, manifest = run(dynamo_settings, tmp_path / "b", mode="range", since=datetime.now(UTC) - timedelta(days=2))
    assert manifest["items"] == 6 and manifest["watermark"] is None


def test_split_is_by_question_and_the_same_on_every_run(dynamo_settings, tmp_path):
    bulk_store(dynamo_settings, bulk_pairs(300, questions=60, passages=1, passage_chars=50))
    first, manifest = run(dynamo_settings, tmp_path / "a", mode="all", validation_fraction=0.3)
    second, _ = run(dynamo_settings, tmp_path / "b", mode="all", validation_fraction=0.3)
    questions = {
        split: {r["prompt"][0]["content"].rsplit("Question: ", 1)[1] for r in rows(first, "ratings", split)}
        for split in ("train", "validation")
    }
    assert questions["train"] and questions["validation"] and not questions["train"] & questions["validation"]
    for name in manifest["files"]:
        same = (first / name).read_bytes().replace(first.name.encode(), second.name.encode())
        assert same == (second / name).read_bytes(), "the same rows in the same order, but for the export id"


def test_near_identical_questions_never_straddle_train_and_validation(dynamo_settings, store, tmp_path):
    from tests.test_export_holdout import VARIANTS

    questions = [(group, question) for group, variants in enumerate(VARIANTS) for question in variants]
    store_seeds(store, [Seed(f"u{n}", q, f"Answer {n}.", 5, SEEDS[0].citation) for n, (_, q) in enumerate(questions)])
    export, _ = run(dynamo_settings, tmp_path / "out", mode="all", validation_fraction=0.5)
    split_of = {
        row["completion"][0]["content"]: split
        for split in ("train", "validation")
        for row in rows(export, "ratings", split)
    }
    splits = [{split_of[f"Answer {n}."] for n, (g, _) in enumerate(questions) if g == group} for group in range(5)]
    assert all(len(one) == 1 for one in splits), splits
    assert set.union(*splits) == {"train", "validation"}


def test_parquet_holds_the_same_rows(dynamo_settings, seeded, tmp_path):
    jsonl, _ = run(dynamo_settings, tmp_path / "j", mode="all")
    parquet, manifest = run(dynamo_settings, tmp_path / "p", mode="all", file_format="parquet")
    assert "kto/train.parquet" in manifest["files"]
    for name in ("sft", "preference", "reward", "kto", "ratings"):
        in_parquet = pq.read_table(parquet / name / "train.parquet").to_pylist()
        assert [row | {"export_id": jsonl.name} for row in in_parquet] == rows(jsonl, name)


def test_feedback_whose_turn_is_missing_is_counted_not_exported(dynamo_settings, store, tmp_path, capsys):
    """A verdict naming a turn that is not stored (another session's id, say) is left out, and the
    command says so: alone in its window it used to be reported as no feedback received."""
    from pipeline.export.command import export_command

    turn, feedback = make_pair(SEEDS[0])
    store.save_feedback(feedback)
    export, manifest = run(dynamo_settings, tmp_path / "out", mode="all")
    assert export is None and manifest["feedback"]["missing_turns"] == 1
    export_command(out=str(tmp_path / "inc"), settle_seconds=0)
    said = capsys.readouterr().out
    assert said.startswith("Nothing to export from ")
    assert said.endswith(": 1 feedback items name a turn that is not stored, so they were left out.\n")

    other, verdict = make_pair(SEEDS[1])
    store.save_turn(other)
    store.save_feedback(verdict)
    store.save_feedback(feedback.model_copy(update={"version": 2, "rating": 2}))
    export_command(out=str(tmp_path / "inc"), settle_seconds=0)
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("Exported 1 feedback items to ")
    assert said[1] == (
        "1 feedback items name a turn that is not stored, so they were left out "
        "(counted in the manifest as feedback.missing_turns)."
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"mode": "weekly"}, "'weekly'"),
        ({"mode": "range"}, "--since"),
        ({"since": datetime(2025, 1, 1)}, "mode 'range'"),
        ({"mode": "range", "since": datetime(2025, 2, 1), "until": datetime(2025, 1, 1)}, "2025-02-01"),
        ({"ratings": (0, 6)}, "rating 0"),
        ({"file_format": "csv"}, "'csv'"),
        ({"phone_region": "XX"}, "'XX'"),
        ({"validation_fraction": 0.9}, "0.9"),
        ({"kto_neutral": "maybe"}, "'maybe'"),
        ({"settle_seconds": -1}, "-1"),
        ({"max_tokens": -5}, "-5"),
        ({"feedback_export": "s3://b/x"}, "--turns-export"),
        ({"out": " "}, "--out"),
    ],
)
def test_bad_config_is_refused_naming_the_value(options, named):
    with pytest.raises(ConfigError, match="Export not started") as error:
        ExportConfig(**{"out": "exports", **options})
    assert named in str(error.value)


def test_bad_destination_is_refused():
    with pytest.raises(Exception, match="s3://bucket/prefix"):
        main(ExportConfig(out="s3:///nobucket"), get_settings())


@pytest.fixture
def restartable_dynamo(tmp_path, monkeypatch):
    """A DynamoDB Local of this test's own, persisted on disk so it can be stopped and started again."""
    local = LocalDynamo(db_path=tmp_path / "dynamodb").start()
    monkeypatch.setenv("PLUMB_DYNAMODB_ENDPOINT", local.endpoint)
    get_settings.cache_clear()
    create_tables(get_settings())
    yield local
    local.stop()


def test_dynamodb_stopped_mid_export_fails_cleanly_and_the_rerun_exports_everything(restartable_dynamo, tmp_path):
    settings = get_settings()
    bulk_store(settings, bulk_pairs(1000, passages=3))
    out = tmp_path / "out"
    outcome: dict = {}

    def export() -> None:
        try:
            outcome["result"] = run(settings, out)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome["error"] = error

    worker = threading.Thread(target=export)
    worker.start()
    deadline = time.monotonic() + 60
    while not any(out.glob(".partial-*")) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.is_alive(), "the export finished before DynamoDB Local could be stopped: seed more items"
    restartable_dynamo.stop()
    worker.join(120)

    assert isinstance(outcome.get("error"), StoreUnavailable), outcome
    assert "cannot be reached" in str(outcome["error"])
    assert list(out.iterdir()) == [], "nothing published and no staging left behind"

    restartable_dynamo.start()
    unfiltered = watermark_key(str(out.resolve()), {"ratings": [], "model_ids": [], "users": []})
    assert Watermarks(settings).get(unfiltered) is None, "the watermark did not move"
    export, manifest = run(settings, out)
    assert manifest["items"] == 1000 and len(rows(export, "ratings")) == 1000
    assert [p.name for p in out.iterdir()] == [export.name]


def test_export_command_runs_the_job_with_its_options(dynamo_settings, seeded, tmp_path):
    import typer
    from typer.testing import CliRunner

    from pipeline.export.command import export_command

    app = typer.Typer()
    app.command()(export_command)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["--out", str(out), "--mode", "all", "--rating", "1", "--rating", "2", "--no-redact"]
    )
    assert result.exit_code == 0, result.output
    assert "Exported 2 feedback items" in result.output
    [export] = list(out.iterdir())
    assert "john.doe@example.com" in (export / "ratings" / "train.jsonl").read_text()
    refused = CliRunner().invoke(app, ["--out", str(out), "--mode", "weekly"])
    assert isinstance(refused.exception, ConfigError) and "'weekly'" in str(refused.exception)


def test_recent_exports_lists_only_complete_exports_newest_first(dynamo_settings, seeded, tmp_path):
    from pipeline.export.destinations import recent_exports

    out = tmp_path / "out"
    first, _ = run(dynamo_settings, out, mode="all")
    second, _ = run(dynamo_settings, out, mode="all")
    (out / ".partial-unfinished").mkdir()
    (out / ".partial-unfinished" / "manifest.json").write_text("{}")
    (out / "no-manifest").mkdir()
    assert [m["export_id"] for m in recent_exports(out)] == [second.name, first.name]


def test_a_killed_exports_staging_is_removed_by_the_next_export_on_the_same_host(dynamo_settings, seeded, tmp_path):
    import socket
    import subprocess
    import sys

    out = tmp_path / "out"
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    for name, pid in (("killed", killed.pid), ("running", os.getpid())):
        (out / f".partial-{name}").mkdir(parents=True)
        (out / f".partial-{name}" / ".owner").write_text(f"{socket.gethostname()} {pid}")
    (out / ".partial-elsewhere").mkdir()
    (out / ".partial-elsewhere" / ".owner").write_text(f"another-host {killed.pid}")
    killed.kill()
    killed.wait()

    export, _ = run(dynamo_settings, out, mode="all")
    assert sorted(p.name for p in out.iterdir()) == sorted([export.name, ".partial-running", ".partial-elsewhere"])
    assert not (export / ".owner").exists(), "the published export carries no staging marker"


def test_unreachable_dynamodb_is_reported_before_anything_is_written(monkeypatch, tmp_path):
    from pipeline.feedback.local_dynamo import free_port

    monkeypatch.setenv("PLUMB_DYNAMODB_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        run(get_settings(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_overlapping_exports_give_the_collector_its_threshold_back():
    """Two exports in one process (the admin page) that end in either order leave the process's
    garbage collector as they found it."""
    before = gc.get_threshold()
    first, second = _fewer_collections(), _fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() != before
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_a_length_limit_names_its_own_stream(dynamo_settings, store, seeded, tmp_path):
    """Rows a --max-tokens run leaves out are still new to a run without the limit to the same --out."""
    from tests.export_factory import filler

    turn, feedback = make_pair(Seed("hal", "What does the long clause say?", "It says this [5].", 5, SEEDS[0].citation))
    passages = [SEEDS[0].citation.model_copy(update={"source": f"long-{n}.pdf", "passage": filler(1900)}) for n in range(5)]
    store.save_turn(turn.model_copy(update={"citations": passages}))
    store.save_feedback(feedback)
    out = tmp_path / "out"
    _, limited = run(dynamo_settings, out, max_tokens=1024)
    assert limited["tokens"]["rows_too_long"] == {"sft": 1, "kto": 1, "ratings": 1}
    export, unlimited = run(dynamo_settings, out)
    assert len(rows(export, "ratings")) == len(SEEDS) + 1
    assert limited["watermark"]["key"] != unlimited["watermark"]["key"]


def test_an_output_that_is_a_file_is_refused_before_anything_is_read(tmp_path):
    from pipeline.export.errors import ExportFailed

    (tmp_path / "afile").write_text("")
    with pytest.raises(ExportFailed, match="is a file"):
        main(ExportConfig(out=str(tmp_path / "afile"), mode="all"))


def test_a_watermark_lost_after_publishing_doubles_nothing(dynamo_settings, store, seeded, tmp_path, monkeypatch):
    """DynamoDB went away between publishing and storing the watermark: the next run starts after the
    published export all the same, so every item is exported exactly once."""
    out = tmp_path / "out"

    def gone(*args, **kwargs):
        raise StoreUnavailable("DynamoDB cannot be reached")

    with monkeypatch.context() as patch:
        patch.setattr(Watermarks, "advance", gone)
        with pytest.raises(StoreUnavailable):
            run(dynamo_settings, out)
    [first] = list(out.iterdir())
    assert len(rows(first, "ratings")) == len(SEEDS)
    again, manifest = run(dynamo_settings, out)
    assert again is None and manifest["window"]["start"] == json.loads((first / "manifest.json").read_text())["window"]["end"]
    turn, feedback = make_pair(Seed("gina", "Where is the fire exit?", "Door 1 [1].", 4, SEEDS[0].citation))
    store.save_turn(turn)
    store.save_feedback(feedback)
    third, _ = run(dynamo_settings, out)
    assert [r["user"] for r in rows(third, "ratings")] == ["gina"]


def test_every_dataset_of_both_splits_loads_as_the_card_says(dynamo_settings, seeded, tmp_path):
    from datasets import load_dataset

    export, _ = run(dynamo_settings, tmp_path / "out", mode="all", validation_fraction=0.5)
    for name in ("sft", "preference", "reward", "kto", "ratings"):
        lines = [row for split in ("train", "validation") for row in rows(export, name, split)]
        assert all(value is not None for row in lines for value in row.values()), name
        if lines:
            loaded = load_dataset(str(export), name)
            assert sum(len(split) for split in loaded.values()) == len(lines)


def test_a_snapshot_lists_no_verdict_its_filters_leave_out(dynamo_settings, store, seeded, tmp_path):
    turn, feedback = seeded[0]
    store.save_feedback(feedback.model_copy(update={"rating": 2, "note": "changed"}))
    _, manifest = run(dynamo_settings, tmp_path / "out", mode="all", users=("dave",))
    assert manifest["supersedes"] == [] and manifest["not_matched"] == len(SEEDS) - 1
