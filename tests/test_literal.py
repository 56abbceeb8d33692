"""Document text shown through Streamlit's Markdown stays literal: a heading cannot become an image."""

import pytest
from markdown_it import MarkdownIt

from app.literal import literal

LEAK = "https://evil.example/p.png?q=1"


@pytest.mark.parametrize(
    "text",
    [
        f"notes.md – Rebar ![x]({LEAK})",
        f"notes.md – [click]({LEAK})",
        f"notes.md – <img src=\"{LEAK}\">",
        "prices.md – $5 and $6 › **bold** `code` :red[alarm]",
        "a\\b – back\\slash",
    ],
)
def test_a_label_is_shown_as_written(text):
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(literal(text))
    assert "<img" not in html and "<a " not in html and "<strong>" not in html and "<code>" not in html
    assert MarkdownIt("commonmark").render(literal(text)) == f"<p>{_escaped(text)}</p>\n"


def test_letters_digits_and_other_scripts_are_untouched():
    assert literal("design criteria 3 – page iv › Grundlagen › 風荷重") == "design criteria 3 – page iv › Grundlagen › 風荷重"


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
