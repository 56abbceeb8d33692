"""Which passages an answer cites: its [n] markers matched to the numbered passages."""

import pytest

from pipeline.markers import cited_numbers


@pytest.mark.parametrize(
    ("answer", "count", "expected"),
    [
        ("Wind is 120 mph [2]. Snow is 30 psf [1].", 5, [2, 1]),
        ("Both [1, 3] agree [3][1].", 5, [1, 3]),
        ("Cited [7] and [0] only.", 5, []),
        ("No markers at all.", 5, []),
        ("Cited [2] of none.", 0, []),
        ("A list [a] and a year [2024].", 3, []),
    ],
)
def test_cited_numbers(answer, count, expected):
    assert cited_numbers(answer, count) == expected
