"""Offline review: seeded sampling draws the same batch again, stratified sampling covers every
stratum, consolidation matches hand-computed medians and agreement, and the commands round-trip
through DynamoDB Local."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from app.review_batch_page import to_review
from pipeline.cli import app
from pipeline.escalation.review import Candidate, ReviewBatch, ReviewItem, ReviewRating, agreement, consolidate, draw
from pipeline.feedback import make_store
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Citation, Feedback, Turn

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def turn(i: int, model: str = "m1", source: str = "a.pdf", **extra) -> Turn:
    return Turn(session_id=f"s{i % 4}", turn_id=f"t{i:03d}", user="ann", question=f"q{i}", condensed_question=f"q{i}",
                answer=f"a{i}", model_id=model, prompt_version="p", generated=True,
                citations=[Citation(source=source, page=1, passage="p", score=0.5)], **extra)


def pool() -> list[Candidate]:
    models = ["m1"] * 30 + ["m2"] * 8 + ["m3"] * 2
    return [Candidate(turn=turn(i, model=m, source=f"doc{i % 3}.pdf"), rating=(i % 5) + 1 if i % 2 else None)
            for i, m in enumerate(models)]


def ids(drawn: list[Candidate]) -> list[str]:
    return [c.turn.turn_id for c in drawn]


def test_random_sampling_is_reproducible_with_a_seed_whatever_the_read_order():
    candidates = pool()
    first = ids(draw(candidates, 10, seed=7))
    assert first == ids(draw(list(reversed(candidates)), 10, seed=7))
    assert first != ids(draw(candidates, 10, seed=8))
    assert len(set(first)) == 10
    assert len(draw(candidates, 100, seed=7)) == 40, "a batch larger than the pool takes the whole pool"


def test_stratified_sampling_takes_from_every_stratum_in_turn():
    drawn = draw(pool(), 6, seed=3, by=["model"])
    assert sorted(c.turn.model_id for c in drawn) == ["m1", "m1", "m2", "m2", "m3", "m3"]
    assert ids(drawn) == ids(draw(list(reversed(pool())), 6, seed=3, by=["model"]))
    by_rating = draw(pool(), 12, seed=1, by=["rating"])
    assert {str(c.rating) if c.rating else "unrated" for c in by_rating} == {"1", "2", "3", "4", "5", "unrated"}
    with pytest.raises(ValueError, match="at least one"):
        draw(pool(), 0, seed=1)


def test_consolidation_against_hand_computed_values():
    items = [ReviewItem(session_id="s", turn_id=t, question="q", answer="a", model_id="m") for t in ("A", "B", "C")]
    batch = ReviewBatch(batch_id="b1", seed=5, strata=["model"], reviewers_per_item=2, items=items)
    rated = [
        ReviewRating(batch_id="b1", turn_id="A", reviewer="r1", relevance=4, rated_at=T0),
        ReviewRating(batch_id="b1", turn_id="A", reviewer="r2", relevance=5, rated_at=T0),
        ReviewRating(batch_id="b1", turn_id="A", reviewer="r3", relevance=2, rated_at=T0),
        ReviewRating(batch_id="b1", turn_id="B", reviewer="r1", relevance=1, rated_at=T0),
        ReviewRating(batch_id="b1", turn_id="B", reviewer="r1", relevance=3, rated_at=T0 + timedelta(minutes=1)),
    ]
    manifest = consolidate(batch, reversed(rated))
    a, b, c = manifest["items"]
    # A: median of 4, 5, 2 is 4; pairs differ by 1, 2, 3 -> mean 2 -> 1 - 2/4 = 0.5
    assert (a["ratings"], a["score"], a["agreement"], a["complete"]) == ({"r1": 4, "r2": 5, "r3": 2}, 4.0, 0.5, True)
    # B: r1's later rating counts; one rating has no agreement and is short of two reviewers
    assert (b["ratings"], b["score"], b["agreement"], b["complete"]) == ({"r1": 3}, 3.0, None, False)
    assert (c["ratings"], c["score"], c["agreement"], c["complete"]) == ({}, None, None, False)
    assert (manifest["items_rated"], manifest["mean_agreement"], manifest["manifest_version"]) == (2, 0.5, 1)
    assert agreement([1, 5]) == 0.0 and agreement([3, 3, 3]) == 1.0 and agreement([2, 3]) == 0.75


def test_reviewers_see_items_until_enough_reviewers_rated():
    items = [ReviewItem(session_id="s", turn_id=t, question="q", answer="a", model_id="m") for t in ("A", "B")]
    batch = ReviewBatch(batch_id="b", seed=1, strata=[], reviewers_per_item=2, items=items)
    rated = [ReviewRating(batch_id="b", turn_id="A", reviewer=r, relevance=4) for r in ("r1", "r2")]
    assert [(i.turn_id, mine) for i, mine in to_review(batch, rated, "r3")] == [("B", None)]
    assert [(i.turn_id, mine) for i, mine in to_review(batch, rated, "r1")] == [("A", 4), ("B", None)]


def test_sample_rate_and_consolidate_through_dynamodb(dynamo_settings, tmp_path):
    store = make_store(dynamo_settings)
    for i in range(6):
        saved = turn(i, model="m1" if i < 4 else "m2")
        store.save_turn(saved)
        store.save_feedback(Feedback(session_id=saved.session_id, turn_id=saved.turn_id, user="ann", rating=2 + i % 3))
    store.save_turn(turn(99).model_copy(update={"generated": False}))  # the canned answer is not reviewed
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["review", "sample", "--size", "4", "--seed", "11", "--by", "model", "--reviewers", "2"])
    assert result.exit_code == 0, result.output
    reviews = DynamoFeedbackStore(dynamo_settings).review_batches
    [batch_id] = reviews.batch_ids()
    assert batch_id in result.output
    batch, ratings = reviews.batch(batch_id)
    assert ratings == [] and len(batch.items) == 4
    assert sorted(i.model_id for i in batch.items) == ["m1", "m1", "m2", "m2"]
    assert all(i.user_rating in (2, 3, 4) for i in batch.items)
    first = batch.items[0].turn_id
    reviews.rate(ReviewRating(batch_id=batch_id, turn_id=first, reviewer="r1", relevance=5))
    reviews.rate(ReviewRating(batch_id=batch_id, turn_id=first, reviewer="r2", relevance=4))
    reviews.rate(ReviewRating(batch_id=batch_id, turn_id=first, reviewer="r2", relevance=3))  # changed their mind
    out = tmp_path / "manifest.json"
    result = runner.invoke(app, ["review", "consolidate", batch_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads(out.read_text())
    assert (manifest["items"][0]["turn_id"], manifest["items"][0]["ratings"], manifest["items"][0]["score"]) == (
        first, {"r1": 5, "r2": 3}, 4.0)
    assert manifest["items"][0]["agreement"] == 0.5 and manifest["items_rated"] == 1
    again = runner.invoke(app, ["review", "sample", "--size", "4", "--seed", "11", "--by", "model"])
    second = [b for b in reviews.batch_ids() if b != batch_id][0]
    assert [i.turn_id for i in reviews.batch(second)[0].items] == [i.turn_id for i in batch.items], again.output
    bad = runner.invoke(app, ["review", "sample", "--by", "colour"])
    assert bad.exit_code == 1 and "Cannot stratify by colour: use rating, model or document." in bad.output
    missing = runner.invoke(app, ["review", "consolidate", "nope"])
    assert missing.exit_code == 1 and "There is no review batch 'nope'." in missing.output
    for unwritable in (tmp_path / "no-such-folder" / "m.json", tmp_path):
        refused = runner.invoke(app, ["review", "consolidate", batch_id, "--out", str(unwritable)])
        assert refused.exit_code == 1 and f"Cannot write the manifest to {unwritable}" in refused.output, refused.output


def test_review_commands_use_the_dynamodb_local_that_serve_runs(dynamo_local, monkeypatch):
    """In dev mode with no endpoint set, `plumb review` finds `plumb serve`'s DynamoDB Local, as
    `plumb export` does, instead of asking AWS itself for credentials."""
    from pipeline.feedback import create_tables
    from pipeline.serving import advertised
    from pipeline.settings import get_settings

    monkeypatch.delenv("PLUMB_DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.setenv("PLUMB_TABLE_PREFIX", f"rv{datetime.now(UTC):%H%M%S%f}-")
    get_settings.cache_clear()
    create_tables(get_settings().model_copy(update={"dynamodb_endpoint": dynamo_local.endpoint}))
    with advertised(get_settings(), dynamo_local.endpoint):
        result = CliRunner().invoke(app, ["review", "sample", "--size", "2"])
    assert result.exit_code == 1 and "No answered turns to sample" in result.output, result.output


def _review_page() -> None:
    from app.identity import User
    from app.review_batch_page import review_batch_page

    review_batch_page(User(name="rita", is_admin=False))


def test_reviewer_rates_on_the_review_page(dynamo_settings):
    from streamlit.testing.v1 import AppTest

    reviews = DynamoFeedbackStore(dynamo_settings).review_batches
    items = [ReviewItem(session_id="s", turn_id=t, question=f"question {t}", answer=f"answer {t}", model_id="m",
                        citations=[Citation(source="a.pdf", page=2, passage="the passage", score=0.7)]) for t in ("A", "B")]
    reviews.save_batch(ReviewBatch(batch_id="b1", seed=1, strata=[], reviewers_per_item=1, items=items))
    at = AppTest.from_function(_review_page, default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.text][:2] == ["question A", "answer A"]
    at.radio(key="rel-B").set_value(4).run()
    at.button(key="save-rel-B").click().run()
    assert not at.exception
    batch, ratings = reviews.batch("b1")
    assert [(r.turn_id, r.reviewer, r.relevance) for r in ratings] == [("B", "rita", 4)]
    assert "Your rating: 4 relevant" in [c.value for c in at.caption]


def test_the_review_page_says_so_when_the_store_fails_while_reading_a_batch(dynamo_settings, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from pipeline.errors import StoreUnavailable
    from pipeline.escalation.review_store import ReviewStore

    reviews = DynamoFeedbackStore(dynamo_settings).review_batches
    reviews.save_batch(ReviewBatch(batch_id="b1", seed=1, strata=[], reviewers_per_item=1, items=[]))

    def unreachable(self, batch_id):
        raise StoreUnavailable("The feedback store cannot be reached.")

    monkeypatch.setattr(ReviewStore, "batch", unreachable)
    at = AppTest.from_function(_review_page, default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The feedback store cannot be reached."]
