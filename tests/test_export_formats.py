"""The pure parts of the export: TRL rows, redaction, filters (the split: test_export_holdout.py)."""

import pytest

from pipeline.export import formats
from pipeline.export.formats import Rated
from pipeline.export.redact import redact
from pipeline.export.selection import Filters, redacted
from pipeline import prompts
from pipeline.prompts import NOT_COVERED
from tests.export_factory import ACCESS, CORRECTION, RAMP, RAMP_PASSAGE, SEEDS, Seed, make_pair


def rated(seed: Seed) -> Rated:
    return Rated(*make_pair(seed))


ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (rated(seed) for seed in SEEDS)


def test_prompt_is_one_user_message_with_the_passages_and_the_question():
    [message] = formats.prompt(ALICE.turn)
    assert message["role"] == "user"
    assert "[1] design-criteria.pdf – page 21\nRamps shall not exceed a slope of 1:12." in message["content"]
    assert message["content"].endswith(f"Question: {RAMP}")


def test_follow_up_prompt_is_the_history_then_the_question_as_typed():
    history = [("What does code C mean?", "Revise and resubmit [1]."), ("And code B?", "Approved as noted [2].")]
    turn = ALICE.turn.model_copy(update={"question": "and for ramps?", "condensed_question": RAMP, "history": history})
    messages = formats.prompt(turn)
    assert [(m["role"], m["content"]) for m in messages[:4]] == [
        ("user", "What does code C mean?"),
        ("assistant", "Revise and resubmit [1]."),
        ("user", "And code B?"),
        ("assistant", "Approved as noted [2]."),
    ]
    assert messages[4]["role"] == "user" and messages[4]["content"].endswith("Question: and for ramps?")
    assert messages == prompts.answer_messages(history, turn.citations, "and for ramps?")


def test_prompt_of_a_turn_without_recorded_history_is_refused():
    with pytest.raises(ValueError, match="did not record its history"):
        formats.prompt(ALICE.turn.model_copy(update={"history": None}))


@pytest.mark.parametrize(
    ("update", "correction", "reason"),
    [
        ({}, None, None),
        ({"history": None}, None, "history_not_recorded"),
        ({"generated": False, "not_covered": True, "answer": NOT_COVERED}, None, "not_generated"),
        ({"generated": False, "not_covered": True, "answer": NOT_COVERED}, CORRECTION, "retrieval_miss"),
        ({"answer": ""}, None, "empty_answer"),
        ({"answer": " \n\t "}, CORRECTION, "empty_answer"),
        ({"citations": [RAMP_PASSAGE.model_copy(update={"passage_truncated": True})]}, None, "passage_truncated"),
        # The model itself said the documents do not cover it: that is model output, and a sound row.
        ({"not_covered": True, "answer": "The documents don't cover this question."}, None, None),
    ],
)
def test_only_model_output_with_a_rebuildable_prompt_makes_rows(update, correction, reason):
    turn = ALICE.turn.model_copy(update=update)
    feedback = ALICE.feedback.model_copy(update={"correction": correction})
    assert formats.exclusion(Rated(turn, feedback)) == reason
    assert reason is None or reason in formats.EXCLUSIONS


def test_sft_takes_corrections_and_answers_rated_four_or_five():
    assert formats.sft_rows(ALICE) == [
        {
            "prompt": formats.prompt(ALICE.turn),
            "completion": formats.completion(ALICE.turn.answer),
            "completion_source": "model",
        }
    ]
    assert formats.sft_rows(BOB)[0]["completion"] == [{"role": "assistant", "content": CORRECTION}]
    assert formats.sft_rows(BOB)[0]["completion_source"] == "correction"
    assert formats.sft_rows(DAVE) == [] and formats.sft_rows(ERIN) == []


def test_correction_is_preferred_over_the_answer_it_corrects():
    [row] = formats.correction_preference_rows(BOB)
    assert row["chosen"][0]["content"] == CORRECTION
    assert row["rejected"][0]["content"] == BOB.turn.answer
    assert formats.correction_preference_rows(ALICE) == []


def answers_best_first(*rated: Rated) -> list[formats.RatedAnswer]:
    """A best-rated answer, then the rest lowest-rated first (the order the builder reads them in)."""
    answers = sorted((formats.RatedAnswer.of(r) for r in rated), key=lambda a: (a.rating, a.answer))
    best = max(answers, key=lambda a: a.rating)
    return [best] + [a for a in answers if a is not best]


def test_best_answer_to_a_prompt_is_preferred_to_each_lower_rated_different_one():
    pairs = formats.rating_pairs(answers_best_first(CAROL, BOB, ALICE))
    # alice (5) and carol (4) gave the same answer: never preferred over itself.
    assert [(chosen.turn_id, rejected.turn_id) for chosen, rejected in pairs] == [
        (ALICE.turn.turn_id, BOB.turn.turn_id)
    ]
    assert formats.rating_pairs(answers_best_first(ALICE)) == []
    assert formats.rating_pairs([]) == []


def test_rating_pairs_are_linear_and_capped_per_prompt():
    answers = [rated(Seed(f"u{n}", RAMP, f"answer {n}", n % 5 + 1, SEEDS[0].citation)) for n in range(400)]
    pairs = formats.rating_pairs(answers_best_first(*answers))
    assert len(pairs) == formats.MAX_PAIRS_PER_PROMPT
    assert {chosen.rating for chosen, _ in pairs} == {5} and {rejected.rating for _, rejected in pairs} == {1}
    assert len({chosen.turn_id for chosen, _ in pairs}) == 1


def test_rating_pairs_read_no_further_than_the_cap():
    """Work is bounded by the cap, however many answers a prompt got: nothing quadratic."""
    best = formats.RatedAnswer.of(ALICE)
    read = 0

    def answers():
        nonlocal read
        yield best
        for n in range(100_000):
            read += 1
            yield formats.RatedAnswer("t", f"u{n}", 1, "m", "p", f"answer {n}", 1)

    assert len(formats.rating_pairs(answers())) == formats.MAX_PAIRS_PER_PROMPT
    assert read == formats.MAX_PAIRS_PER_PROMPT


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
    assert [(r["label"], r["completion_source"]) for r in formats.kto_rows(BOB, neutral)] == [
        (False, "model"),
        (True, "correction"),
    ]
    assert [r["label"] for r in formats.kto_rows(DAVE, neutral)] == labels


def test_ratings_row_keeps_score_and_note():
    row = formats.ratings_row(DAVE)
    assert (row["score"], row["note"]) == (3, "partly right")
    assert set(row) == {"prompt", "completion", "score", "note", "completion_source"}


# Contact details, in the national forms of several regions and in international form, go.
REDACTED = [
    ("US", "mail john.doe+site@example.co.uk now", "mail [email] now"),
    ("US", "call (212) 736-5000 or +44 20 7946 0958", "call [phone] or [phone]"),
    ("US", "tel. 202-555-0143.", "tel. [phone]."),
    ("US", "212.736.5000 (site office)", "[phone] (site office)"),
    ("US", "toll free 1-800-555-0199", "toll free [phone]"),
    ("US", "Call John on 2127365000 after 5.", "Call John on [phone] after 5."),
    ("US", "my number is 2127365000", "my number is [phone]"),
    ("US", "reach me at +12127365000", "reach me at [phone]"),
    ("US", "212 736 5000 ext. 12", "[phone] ext. 12"),
    ("GB", "Tel: 020 7946 0958", "Tel: [phone]"),
    ("GB", "mobile 07911 123456", "mobile [phone]"),
    ("GB", "+44 (0)20 7946 0958", "[phone]"),
    ("DE", "Telefon 030 12345678", "Telefon [phone]"),
    ("DE", "Rückruf unter 0151 2345 6789", "Rückruf unter [phone]"),
    ("DE", "030 / 123 456 78, +49 89 1234567", "[phone], [phone]"),
    ("FR", "appelez le 01 23 45 67 89", "appelez le [phone]"),
    ("FR", "portable 06.12.34.56.78", "portable [phone]"),
    ("AU", "site office (02) 9876 5432", "site office [phone]"),
    ("AU", "Phone 0412 345 678", "Phone [phone]"),
    ("AU", "04 1234 5678", "[phone]"),
    ("IN", "+91 98765 43210 or 022 2345 6789", "[phone] or [phone]"),
    ("JP", "電話 03-1234-5678", "電話 [phone]"),
    ("US", "Tel 212-555-0143, serial 4155550143", "Tel [phone], serial 4155550143"),
    ("GB", "issued 2024-08-15 10:30 by j.doe@example.com", "issued 2024-08-15 10:30 by [email]"),
]

# Engineering data stays, including numbers that libphonenumber alone takes for valid phone numbers.
KEPT = [
    ("US", "issued 2024-08-15 10:30"),
    ("DE", "issued 2024-08-15 10:30"),
    ("GB", "issued 2024-08-15 10:30:00"),
    ("US", "revised 2024-08-15T10:30:00Z, 2024-08-16T09:05+02:00"),
    ("FR", "15-08-2024 10:30"),
    ("DE", "vom 15.08.2024 bis 16.08.2024, 10:30 Uhr"),
    ("US", "08/15/2024 10:30 AM"),
    ("GB", "15/08/2024 and 2024/08/15"),
    ("AU", "20240815 1030"),
    ("IN", "dated 2024-08-15"),
    ("US", "Project 2024081510 closes"),
    ("US", "Project no. 2125550143"),
    ("US", "serial number 4155550143"),
    ("GB", "S/N: 02079460958"),
    ("US", "SN 212-555-0143"),
    ("US", "P/N 4471-2210-05, part 2125550143"),
    ("US", "DWG 1234-567-8901 rev C"),
    ("GB", "drawing 4471 2210 0512"),
    ("US", "job PRJ-2125550143-A"),
    ("US", "order 2125550143 was shipped"),
    ("US", "Phone the supplier about PO 4155550143"),
    ("DE", "Charge 2125550143 geliefert"),
    ("US", "section 01 13 10, clause 3.2.1, page 21"),
    ("FR", "section 01 13 10 20"),
    ("US", "per ASCE 7-16 and EN 1992-1-1"),
    ("DE", "ISO 9001:2015, BS 8110-1:1997, IEC 60364-5-52, EN 1993-1-8:2005"),
    ("GB", "BS EN 1090-2:2018+A1:2024"),
    ("DE", "1200 x 600 mm, 2400 x 1200 x 600 mm"),
    ("US", "$1,250,000.00 (12.5% contingency)"),
    ("US", "USD 2125550143"),
    ("DE", "DN 100/150/200 at 25.4 kN/m2, item 4.8.2"),
    ("US", "grid 12345678.90 N"),
]


@pytest.mark.parametrize(("region", "text", "expected"), REDACTED)
def test_redaction_removes_contact_details(region, text, expected):
    assert redact(text, region) == expected


@pytest.mark.parametrize(("region", "text"), KEPT)
def test_redaction_keeps_engineering_data(region, text):
    assert redact(text, region) is text


def test_redaction_reaches_every_exported_text():
    history = [("Who answers the gate, 202-555-0143?", "Mail gate@example.com [1].")]
    clean = redacted(Rated(ERIN.turn.model_copy(update={"history": history}), ERIN.feedback), "US")
    exported = str([formats.ratings_row(clean), formats.kto_rows(clean)])
    assert "gate@example.com" not in exported and "[email] [1]" in exported
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
