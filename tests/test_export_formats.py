"""The pure parts of the export: TRL rows, redaction, filters (the split: test_export_holdout.py)."""

import pytest

from pipeline.export import formats
from pipeline.export.formats import Rated
from pipeline.export.redact import redact
from pipeline.export.selection import Filters, redacted
from tests.export_factory import ACCESS, CORRECTION, RAMP, SEEDS, Seed, make_pair


def rated(seed: Seed) -> Rated:
    return Rated(*make_pair(seed))


ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (rated(seed) for seed in SEEDS)


def test_prompt_is_one_user_message_with_the_passages_and_the_question():
    [message] = formats.prompt(ALICE.turn)
    assert message["role"] == "user"
    assert "[1] design-criteria.pdf – page 21\nRamps shall not exceed a slope of 1:12." in message["content"]
    assert message["content"].endswith(f"Question: {RAMP}")


def test_prompt_uses_the_condensed_question_of_a_follow_up():
    turn = ALICE.turn.model_copy(update={"question": "and for ramps?", "condensed_question": RAMP})
    assert formats.prompt(turn)[0]["content"].endswith(f"Question: {RAMP}")


def test_sft_takes_corrections_and_answers_rated_four_or_five():
    assert formats.sft_rows(ALICE) == [
        {"prompt": formats.prompt(ALICE.turn), "completion": formats.completion(ALICE.turn.answer)}
    ]
    assert formats.sft_rows(BOB)[0]["completion"] == [{"role": "assistant", "content": CORRECTION}]
    assert formats.sft_rows(DAVE) == [] and formats.sft_rows(ERIN) == []


def test_correction_is_preferred_over_the_answer_it_corrects():
    [row] = formats.correction_preference_rows(BOB)
    assert row["chosen"][0]["content"] == CORRECTION
    assert row["rejected"][0]["content"] == BOB.turn.answer
    assert formats.correction_preference_rows(ALICE) == []


def test_higher_rated_answer_is_preferred_to_a_lower_rated_one_for_the_same_question():
    rows = formats.rating_preference_rows([formats.RatedAnswer.of(r) for r in (CAROL, BOB, ALICE)])
    # alice (5) and carol (4) gave the same answer: it is preferred to bob's (1) once per pair,
    # never over itself.
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        (ALICE.turn.answer, BOB.turn.answer),
        (CAROL.turn.answer, BOB.turn.answer),
    ]
    assert formats.rating_preference_rows([formats.RatedAnswer.of(ALICE)]) == []


def test_rating_pairs_are_capped_per_question_widest_gap_first():
    answers = [rated(Seed(f"u{n}", RAMP, f"answer {n}", n % 5 + 1, SEEDS[0].citation)) for n in range(40)]
    rows = formats.rating_preference_rows([formats.RatedAnswer.of(a) for a in answers])
    assert len(rows) == formats.MAX_PAIRS_PER_QUESTION
    first = rows[0]
    assert first["chosen"][0]["content"].startswith("answer") and first["rejected"] != first["chosen"]


def test_reward_rows_fold_the_prompt_into_both_sides():
    [preference] = formats.correction_preference_rows(BOB)
    row = formats.reward_row(preference)
    assert set(row) == {"chosen", "rejected"}
    assert row["chosen"] == preference["prompt"] + preference["chosen"]
    assert [m["role"] for m in row["rejected"]] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("neutral", "labels"),
    [("omit", []), ("desirable", [True]), ("undesirable", [False])],
)
def test_kto_labels(neutral, labels):
    assert [r["label"] for r in formats.kto_rows(ALICE, neutral)] == [True]
    assert [r["label"] for r in formats.kto_rows(BOB, neutral)] == [False, True]
    assert [r["label"] for r in formats.kto_rows(DAVE, neutral)] == labels


def test_ratings_row_keeps_score_and_note():
    row = formats.ratings_row(DAVE)
    assert (row["score"], row["note"]) == (3, "partly right")
    assert set(row) == {"prompt", "completion", "score", "note"}


def test_question_key_ignores_case_and_spacing():
    same = ALICE.turn.model_copy(update={"condensed_question": "  what IS the maximum slope of an  accessible ramp?"})
    assert formats.question_key(same) == formats.question_key(ALICE.turn)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.doe+site@example.co.uk now", "mail [email] now"),
        ("call (212) 736-5000 or +44 20 7946 0958", "call [phone] or [phone]"),
        ("tel. 202-555-0143.", "tel. [phone]."),
        ("section 01 13 10, page 21, 1200 x 600 mm, 2024-03-05, ISO 9001:2015", None),
        ("DN 100/150/200 at 25.4 kN/m2, item 4.8.2", None),
    ],
)
def test_redaction(text, expected):
    assert redact(text) == (expected or text)


def test_redaction_reaches_every_exported_text():
    clean = redacted(ERIN, "US")
    exported = str([formats.ratings_row(clean), formats.kto_rows(clean)])
    for secret in ("john.doe@example.com", "(212) 736-5000", "+44 20 7946 0958", "202-555-0143"):
        assert secret not in exported
    assert "[email]" in exported and "[phone]" in exported
    assert ERIN.turn.answer.startswith("Call John at john.doe@example.com"), "the original is left untouched"


def test_filters():
    assert Filters().accepts(ALICE)
    assert Filters(ratings=frozenset({1, 2})).accepts(BOB) and not Filters(ratings=frozenset({1, 2})).accepts(ALICE)
    assert Filters(model_ids=frozenset({"mistral-7b-v2"})).accepts(FRANK) and not Filters(
        model_ids=frozenset({"x"})
    ).accepts(FRANK)
    assert Filters(users=frozenset({"erin"})).accepts(ERIN) and not Filters(users=frozenset({"erin"})).accepts(DAVE)
    assert ACCESS in ERIN.turn.question
