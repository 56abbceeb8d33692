"""The one text normalisation every format goes through."""

import pytest

from pipeline.normalise import normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The \ufb03ce has a \ufb01re door", "The ffice has a fire door"),
        ("\ufb00 \ufb01 \ufb02 \ufb03 \ufb04 \ufb05 \ufb06", "ff fi fl ffi ffl st st"),
        ("rein\u00adforce\u00adment", "reinforcement"),
        ("rein\u00ad\nforcement bars", "reinforcement bars"),
        ("\ufeffScope of work", "Scope of work"),
        ("wind\x00 speed\x07 is\x1b 120\x7f mph\x9b", "wind speed is 120 mph"),
        ("a\r\nb\rc\fd\ve\u2028f", "a\nb\nc\nd\ne\nf"),
        ("column\tvalue\nnext", "column\tvalue\nnext"),
        ("cafe\u0301", "caf\u00e9"),
    ],
)
def test_faults_are_cleaned(raw: str, expected: str):
    assert normalise(raw) == expected


def test_engineering_symbols_are_kept():
    """What NFKC would fold (superscripts, fractions, the micro sign) stays as written."""
    text = "Area 12 m\u00b2, cover \u00bd in, 5 \u00b5m, note\u00b9, 20 \u00b0C, x\u2082"
    assert normalise(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("the rein-\nforcement is", "the reinforcement is"),
        ("the rein-  \n  forcement is", "the reinforcement is"),
        ("ASTM-\nA615", "ASTM-\nA615"),
        ("Grade-\n60", "Grade-\n60"),
        ("cast-\nIn-place", "cast-\nIn-place"),
        ("items -\nnext", "items -\nnext"),
        ("- one\n- two", "- one\n- two"),
        ("cast-in-place concrete", "cast-in-place concrete"),
        ("pre-\n\nstressed", "pre-\n\nstressed"),
    ],
)
def test_words_broken_across_lines_are_joined_only_between_lowercase_letters(raw: str, expected: str):
    assert normalise(raw) == expected
