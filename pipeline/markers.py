"""The passages an answer cites: its [n] markers matched to the numbered passages of its prompt.

The answer prompt numbers the passages from 1 (`prompts.format_context`) and asks the model to cite
them like [1]; models also write [1, 3] or [1][3]. A number outside 1..count is no passage, so it is
not a citation (small models invent them).
"""

import re

MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def marker_numbers(text: str) -> list[list[int]]:
    """The numbers of each [n] or [n, m] marker in `text`, in order; a marker's numbers as written."""
    return [[int(n) for n in match.group(1).split(",")] for match in MARKER.finditer(text)]


def cited_numbers(answer: str, count: int) -> list[int]:
    """The passage numbers (1..count) that `answer` cites, in the order first cited, each once."""
    cited: dict[int, None] = {}
    for numbers in marker_numbers(answer):
        cited.update((n, None) for n in numbers if 1 <= n <= count)
    return list(cited)
