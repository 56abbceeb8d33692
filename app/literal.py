"""Document text shown through Streamlit's Markdown, kept literal.

Titles, captions and widget labels (an expander's, a checkbox's) render Markdown, images included,
and a citation's label carries a document's own words: its name and the headings of its section.
A heading such as ``## Rebar `![x](https://evil.example/p.png)` `` reaches the label as the text
`![x](https://...)` and would make the browser fetch that URL as soon as the label is shown. Every
ASCII punctuation character is backslash-escaped (CommonMark escapes exactly these), so the text
shows as written and no Markdown, math (`$`) or Streamlit directive (`:red[...]`) of its own acts.
"""

import re

_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def literal(text: str) -> str:
    """`text` escaped so that Streamlit's Markdown shows it as written."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", text)
