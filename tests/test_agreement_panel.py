"""The judge's agreement with users, experts and users' preferences: the figures on a seeded set
computed by hand, as pipeline/judge/agreement.py gives them and as the admin page shows them."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.judge.agreement import pair_agreement, preferred
from pipeline.records import Judgement, PairJudgement, Review
from pipeline.settings import get_settings
from tests.export_factory import store_seeds
from tests.test_review_page import JUDGE, SCORES

PAIR_JUDGE = "pair-model#plumb-pairwise-v1"


def verdict(better, other, tie: bool = False) -> PairJudgement:
    """The stored form of "`better` beats `other`" (or a tie), sides ordered by turn id."""
    first, second = sorted((better, other), key=lambda turn: turn.turn_id)
    outcome = "tie" if tie else ("first" if first is better else "second")
    return PairJudgement(
        first_session_id=first.session_id, first_turn_id=first.turn_id, first_user=first.user,
        second_session_id=second.session_id, second_turn_id=second.turn_id, second_user=second.user,
        judge_model="pair-model", prompt_version="plumb-pairwise-v1", outcome=outcome,
    )


def review(turn, version_action: str, score: float) -> Review:
    return Review(session_id=turn.session_id, turn_id=turn.turn_id, judge=JUDGE, reviewer="rita",
                  action=version_action, score=score, reason="checked against the drawings")


@pytest.fixture
def seeded(dynamo_settings, monkeypatch):
    """The six seeded turns (rated 5, 1, 4, 3, 2, 4) scored SCORES (levels 5, 5, 4, 3, 4, 4); experts
    reviewed alice (overrode 3.0, then accepted 5.0), bob (overrode 1.0) and erin (overrode 2.0);
    the pairwise judge preferred alice over bob, bob over carol, and tied alice and carol."""
    monkeypatch.setenv("PLUMB_ADMINS", '["alice"]')
    get_settings.cache_clear()
    dynamo = DynamoFeedbackStore(get_settings())
    turns = [turn for turn, _ in store_seeds(dynamo)]
    for turn, score in zip(turns, SCORES, strict=True):
        dynamo.save_judgement(Judgement(session_id=turn.session_id, turn_id=turn.turn_id, user=turn.user,
                                        judge_model="judge-model", prompt_version="plumb-judge-v1", score=score,
                                        comment="c", reference_kind="none"))
    alice, bob, carol, _, erin, _ = turns
    for turn, action, score in [(alice, "override", 3.0), (alice, "accept", 5.0), (bob, "override", 1.0),
                                (erin, "override", 2.0)]:
        dynamo.save_review(review(turn, action, score))
    for pair in [verdict(alice, bob), verdict(bob, carol), verdict(alice, carol, tie=True)]:
        dynamo.save_pair_judgement(pair)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield dynamo
    st.cache_data.clear()
    st.cache_resource.clear()


def admin_script() -> None:
    from app import services
    from app.admin_page import admin_page
    from app.identity import current_user

    admin_page(current_user(services.settings()))


# Users: ratings [5, 1, 4, 3, 2, 4] against levels [5, 5, 4, 3, 4, 4].
USERS = {
    "turns": 6,
    "exact": 4 / 6,  # alice, carol, dave, frank
    "within one": 4 / 6,  # bob (4 apart) and erin (2 apart) are not
    # Ranks: ratings [6, 1, 4.5, 3, 2, 4.5], scores [6, 5, 3, 1, 3, 3], both of mean 3.5; products of the
    # deviations sum to 3.5, squares to 17 and 15.5.
    "Spearman": 3.5 / (17 * 15.5) ** 0.5,
    # sum(w*O) = (16 + 4) / 16 for bob (1 vs 5) and erin (2 vs 4); sum(w*E) = 118 / 96 from row totals
    # (1, 1, 1, 2, 1) and column totals (0, 0, 1, 3, 2).
    "kappa (quadratic)": 1 - (20 / 16) / (118 / 96),
}
USER_CONFUSION = [[0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 2, 0], [0, 0, 0, 0, 1]]
# Experts' latest decisions as levels [5 (alice accepted), 1 (bob), 2 (erin)] against AI levels [5, 5, 4].
EXPERTS = {"turns": 3, "exact": 1 / 3, "within one": 1 / 3}


def test_the_admin_page_shows_the_hand_computed_figures(seeded):
    at = AppTest.from_function(admin_script, default_timeout=60)
    at.query_params["user"] = "alice"
    at.run()
    assert not at.exception, at.exception
    assert "AI judge agreement" in [s.value for s in at.subheader]
    frames = [frame.value for frame in at.dataframe]
    users = next(f for f in frames if "kappa (quadratic)" in f.columns)
    for column, expected in USERS.items():
        assert users.loc[JUDGE, column] == pytest.approx(expected), column
    experts = [f for f in frames if "kappa (quadratic)" in f.columns][1]
    for column, expected in EXPERTS.items():
        assert experts.loc[JUDGE, column] == pytest.approx(expected), column
    confusions = [f for f in frames if "AI 1" in f.columns]
    assert confusions[0].values.tolist() == USER_CONFUSION
    assert confusions[1].loc["expert 1", "AI 5"] == 1 and confusions[1].loc["expert 2", "AI 4"] == 1
    pairs = next(f for f in frames if "non_tied" in f.columns)
    # alice over bob agrees with the ratings (5 over 1), bob over carol does not (1 under 4); the tie is left out.
    assert pairs.loc[PAIR_JUDGE].to_dict() == {"pairs": 3, "non_tied": 2, "agreement": 0.5, "judge_ties": 1}


def test_pair_agreement_counts_only_pairs_neither_side_ties():
    assert preferred(5, 1) == "first" and preferred(2, 4) == "second" and preferred(3, 3) == "tie"
    outcomes = [("first", "first"), ("second", "first"), ("tie", "first"), ("first", "tie"), ("second", "second")]
    result = pair_agreement("j", outcomes)
    assert (result.pairs, result.non_tied, result.judge_ties) == (5, 3, 1)
    assert result.agreement == pytest.approx(2 / 3)
    assert pair_agreement("j", [("tie", "first")]).agreement is None
