"""One normalisation for the text of every document format (PDF, HTML, Markdown, plain text), so a
passage holds what a reader reads and search matches the words a user types ("office", not "o\ufb03ce").

The steps, in order:

1. Line breaks of every kind (CR LF, CR, vertical tab, form feed, NEL, U+2028/U+2029: the set
   `str.splitlines` knows) become "\\n". Plain text files split pages at form feeds before this.
2. A soft hyphen at a line end joins the two halves of its word; every other soft hyphen (U+00AD, an
   invisible break opportunity) is removed.
3. Typographic ligatures U+FB00..U+FB06 (ff, fi, fl, ffi, ffl, long s + t, st) become their letters.
4. Byte-order marks (U+FEFF) and the C0 and C1 control characters (NUL, BEL, ESC, ..., U+0080..U+009F)
   are removed; tab and newline stay.
5. NFC: a letter and its combining accent become the one precomposed character ("e" + U+0301 -> "é"),
   which changes no visible character.
6. A word hyphenated across a line end is joined: a lowercase letter, "-", the line end, a lowercase
   letter ("rein-\\nforcement" -> "reinforcement"). Anything else keeps its hyphen and line break: a
   capital or digit on either side ("ASTM-\\nA615", "Grade-\\n60"), a space before the hyphen (a list
   item or a dash), or no line end after it ("cast-in-place"). The rule cannot tell a compound split
   exactly at its own hyphen ("well-\\nknown" becomes "wellknown"); justified PDF text breaks inside
   words far more often, and a dictionary per language would be needed to do better.

Why not a library: `unicodedata.normalize("NFKC")` folds ligatures but also turns "m²" into "m2", "½"
into "1⁄2" and superscript note marks into digits, which changes engineering text; ftfy's `fix_text`
also straightens curly quotes and re-decodes what it takes for mojibake. The characters to change
are a short fixed list, so one translation table does exactly that, with each ligature's letters
taken from `unicodedata` rather than typed by hand.
"""

import re
import unicodedata

_LINE_BREAKS = re.compile("\r\n?|[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_SOFT_HYPHEN_AT_LINE_END = re.compile("\u00ad[ \t]*\n[ \t]*")
_LIGATURES = {code: unicodedata.normalize("NFKC", chr(code)) for code in range(0xFB00, 0xFB07)}
_CONTROLS = [code for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(code) not in "\t\n"]
_TRANSLATION = str.maketrans({**_LIGATURES, **dict.fromkeys([0x00AD, 0xFEFF, *_CONTROLS])})
_LINE_END_HYPHEN = re.compile(r"(?<=\w)-[ \t]*\n[ \t]*(?=\w)")


def normalise(text: str) -> str:
    """`text` as a reader reads it (see the module docstring for the steps and their limits)."""
    text = _LINE_BREAKS.sub("\n", text)
    text = _SOFT_HYPHEN_AT_LINE_END.sub("", text)
    text = unicodedata.normalize("NFC", text.translate(_TRANSLATION))
    return _LINE_END_HYPHEN.sub(_join_hyphenated, text)


def _join_hyphenated(match: re.Match[str]) -> str:
    """'' (join the word) when lowercase letters stand on both sides of the broken line, else as found."""
    before, after = match.string[match.start() - 1], match.string[match.end()]
    return "" if before.islower() and after.islower() else match.group(0)
