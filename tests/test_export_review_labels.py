"""Offline review in the export, against real DynamoDB Local: reviewers' consolidated relevance ratings
enter the ratings and KTO files as `label_source = review`, only when asked for with --label-source,
and a changed rating comes in the next incremental export and supersedes the earlier row."""

from datetime import UTC, datetime

import pytest

from pipeline.errors import ConfigError
from pipeline.escalation.review import ReviewBatch, ReviewItem, ReviewRating
from pipeline.export.job import ExportConfig
from pipeline.feedback.dynamo import DynamoFeedbackStore
from tests.export_factory import store_seeds
from tests.test_export_ai_labels import by_source
from tests.test_export_job import rows, run

pytestmark = pytest.mark.usefixtures("prepared_models")  # the encoder exported once for every test


@pytest.fixture
def reviewed(dynamo_settings):
    """A batch of alice's, bob's and carol's turns, two reviewers each: alice rated 5 and 4 (median
    4.5, agreement 0.75), bob 1 and 2 (1.5, 0.75), carol by nobody."""
    dynamo = DynamoFeedbackStore(dynamo_settings)
    alice, bob, carol, *_ = [turn for turn, _ in store_seeds(dynamo)]
    items = [ReviewItem(session_id=t.session_id, turn_id=t.turn_id, question=t.question, answer=t.answer,
                        model_id=t.model_id) for t in (alice, bob, carol)]
    batch = ReviewBatch(seed=3, strata=[], reviewers_per_item=2, items=items)
    dynamo.review_batches.save_batch(batch)
    for turn, scores in ((alice, (5, 4)), (bob, (1, 2))):
        for reviewer, relevance in zip(("r1", "r2"), scores, strict=True):
            dynamo.review_batches.rate(ReviewRating(batch_id=batch.batch_id, turn_id=turn.turn_id, reviewer=reviewer,
                                                    relevance=relevance))
    return dynamo, batch, (alice, bob, carol)


def test_consolidated_reviews_are_a_label_source_of_ratings_and_kto(dynamo_settings, reviewed, tmp_path):
    _, batch, (alice, bob, _) = reviewed
    export, manifest = run(dynamo_settings, tmp_path / "out", mode="all", label_sources=("review",))
    ratings = by_source(export, "ratings")
    assert set(ratings) == {"review"}, "no human rows when only review labels are asked for"
    got = sorted((r["turn_id"], r["score"], r["user"], r["note"]) for r in ratings["review"])
    reviewer = f"review#{batch.batch_id}"
    assert got == sorted([(alice.turn_id, 4.5, reviewer, "2 reviewers, agreement 0.75"),
                          (bob.turn_id, 1.5, reviewer, "2 reviewers, agreement 0.75")])
    kto = {r["turn_id"]: r["label"] for r in rows(export, "kto")}
    assert kto == {alice.turn_id: True, bob.turn_id: False}  # 4.5 counts as 5, 1.5 as 2
    assert rows(export, "sft") == [] and manifest["ai_labels"]["review"] == 2
    assert manifest["filters"]["label_sources"] == ["review"]
    assert "`review` (2 sampled transcripts" in (export / "README.md").read_text()


def test_review_labels_only_with_their_label_source_and_the_other_filters(dynamo_settings, reviewed, tmp_path):
    _, _, (alice, _, _) = reviewed
    human, _ = run(dynamo_settings, tmp_path / "human", mode="all")
    assert set(by_source(human, "ratings")) == {"human"}
    both, manifest = run(dynamo_settings, tmp_path / "both", mode="all", label_sources=("human", "review"))
    assert {k: len(v) for k, v in by_source(both, "ratings").items()} == {"human": 6, "review": 2}
    fives, manifest = run(dynamo_settings, tmp_path / "fives", mode="all", label_sources=("review",), ratings=(5,))
    assert [(r["turn_id"], r["label_source"]) for r in rows(fives, "ratings")] == [(alice.turn_id, "review")]
    assert manifest["ai_labels"]["not_matched"] == 1


def test_a_changed_rating_comes_in_the_next_incremental_export_and_supersedes(dynamo_settings, reviewed, tmp_path):
    dynamo, batch, (alice, _, _) = reviewed
    out = tmp_path / "out"
    first, _ = run(dynamo_settings, out, label_sources=("review",))
    [before] = [r for r in rows(first, "ratings") if r["turn_id"] == alice.turn_id]
    dynamo.review_batches.rate(ReviewRating(batch_id=batch.batch_id, turn_id=alice.turn_id, reviewer="r2", relevance=2,
                                            rated_at=datetime.now(UTC)))
    second, manifest = run(dynamo_settings, out, label_sources=("review",))
    [after] = rows(second, "ratings")
    assert (after["turn_id"], after["score"]) == (alice.turn_id, 3.5)
    assert after["feedback_version"] > before["feedback_version"]
    assert [(s["turn_id"], s["user"]) for s in manifest["supersedes"]] == [(alice.turn_id, f"review#{batch.batch_id}")]
    nothing, _ = run(dynamo_settings, out, label_sources=("review",))
    assert nothing is None, "each consolidation is exported once"


def test_an_unknown_label_source_names_review_among_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="not one of human, ai, sme, review, expert"):
        ExportConfig(out=str(tmp_path), label_sources=("reviews",))
