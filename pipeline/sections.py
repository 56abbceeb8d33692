"""Markdown cut into sections, so a passage of a Markdown or HTML document (which have no pages) is
cited by the headings it falls under: "Design › Loads › Wind".

A section runs from its heading to the next heading of the document's top level (headings inside
block quotes or list items do not start one), and its path is every enclosing heading, outermost
first, joined by " › ". A heading with no text of its own before the next heading ("## Loads"
directly followed by "### Wind") stays with the text that follows, under the inner path, so no
passage is a bare heading. Text before the first heading has the path "".

Headings are found by markdown-it-py, a CommonMark parser, because a line-by-line reading takes
"# comment" in a fenced shell block for a heading and misses setext headings (a line underlined
with "===" or "---"). Parsing costs about 1.8 s per MB of Markdown on the 2-core development machine
under load (1 MB of Python's library pages: 1.85 s, where turning their HTML into that Markdown took
18.5 s), little beside embedding the thousand or so chunks such a megabyte makes.
"""

from markdown_it import MarkdownIt
from markdown_it.token import Token

SEPARATOR = " › "
_PARSER = MarkdownIt("commonmark").enable("table")


def split_sections(markdown: str) -> list[tuple[str, str]]:
    """(heading path, text) for each section of `markdown`, in order; each text is a run of whole
    lines of `markdown`, heading lines included, and no text is blank."""
    lines = markdown.split("\n")
    headings = _headings(markdown)
    starts = [start for start, _, _, _ in headings]
    sections: list[tuple[str, str]] = []
    preamble = "\n".join(lines[: starts[0] if starts else len(lines)]).strip()
    if preamble:
        sections.append(("", preamble))
    path: list[tuple[int, str]] = []  # (level, title) of the enclosing headings
    first: int | None = None  # the first line of headings still waiting for text of their own
    for number, (start, body_start, level, title) in enumerate(headings):
        end = starts[number + 1] if number + 1 < len(starts) else len(lines)
        path = [(outer, name) for outer, name in path if outer < level] + [(level, title)]
        first = start if first is None else first
        if any(line.strip() for line in lines[body_start:end]) or end == len(lines):
            sections.append((SEPARATOR.join(name for _, name in path), "\n".join(lines[first:end]).strip()))
            first = None
    return sections


def within(section: str, expected: str) -> bool:
    """Whether a passage under the heading path `section` lies within the section `expected`:
    its headings appear in `section` one after the other ("Loads" and "Design › Loads" hold
    "Design › Loads › Wind"), in any letter case ("synopsis" is "Synopsis")."""
    inner, outer = section.casefold().split(SEPARATOR), expected.casefold().split(SEPARATOR)
    return any(inner[start : start + len(outer)] == outer for start in range(len(inner) - len(outer) + 1))


def enclosing(section: str) -> set[str]:
    """Every `expected` that `within(section, expected)` holds for: each run of consecutive
    headings of `section`, so that checking many expected sections against a document is one set
    lookup each; case folded, as `within` compares them."""
    names = section.casefold().split(SEPARATOR)
    return {SEPARATOR.join(names[start:end]) for start in range(len(names)) for end in range(start + 1, len(names) + 1)}


def _headings(markdown: str) -> list[tuple[int, int, int, str]]:
    """(first line, line after the heading, level 1-6, plain title) of each top-level heading."""
    tokens = _PARSER.parse(markdown)
    headings = []
    for position, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0 and token.map:
            title = _plain(tokens[position + 1])
            if title:
                headings.append((token.map[0], token.map[1], int(token.tag[1]), title))
    return headings


def _plain(inline: Token) -> str:
    """A heading's words without their markup: "3.2 *Curing*" is "3.2 Curing"."""
    parts = [" " if child.type == "softbreak" else child.content for child in inline.children or []]
    return " ".join("".join(parts).split())
