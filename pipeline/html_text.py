"""HTML to the text a browser shows, written as Markdown so its structure survives: headings as "#"
lines, list items as bullets, and each table row on one line with its cells between "|", so a value
stays tied to its row ("| B2 | W14x30 | 16 mm |").

Left out, because a browser does not show them: the <head> (the page title included), <script>,
<style>, <noscript> (shown only with scripts off), <template>, elements with the `hidden` attribute
and elements whose inline style says `display: none` or `visibility: hidden`. Left out because they
are the site's navigation, not the page's content: <nav> and elements with `role="navigation"` (a
Sphinx page holds its table of contents, "Previous topic"/"Next topic" and "This Page" twice, a
fifth of the Python documentation's text; indexed, they crowd the real passages out of search), and
the same site chrome under other names: DocBook's Prev / Up / Next tables (`div.navheader`,
`div.navfooter`) and in-page tables of contents (`div.toc`), and page footers (<footer>,
`role="contentinfo"`, Sphinx's `div.footer`: "© Copyright ... Created using Sphinx" on every page).
A heading inside a boxed aside (<aside>, DocBook's note, tip, warning, caution and important boxes,
whose titles are <h3>s) titles the box, not a section of the page: it is kept as bold text, so the
section it sits in goes on after the box (taken as a heading, every PostgreSQL "Note" became a
section, and the page's text after each box was cited as "... › Note"). Stylesheet rules are
not evaluated, so text hidden only by a class is kept. `aria-hidden="true"` content is kept: it hides
an element from screen readers, not from the eye (icons, decorative repeats), and the browser shows it.
Link targets and images are dropped and their text kept: a URL is not something a reader reads.
Permalink marks (a link to a place on the same page whose whole text is "¶", "§" or "#", as Sphinx and
MkDocs put after each heading) are dropped: pages show them only under the mouse.
Line breaks in the source are spaces, as in a browser, so a paragraph is one line.
Nor does a browser show the markup that is not elements: processing instructions (the
`<?xml version="1.0" ...?>` an XHTML page starts with), the doctype, comments and CDATA sections.
markdownify drops comments and the doctype but writes a processing instruction out as text (every
page of PostgreSQL's XHTML documentation began `xml version="1.0" encoding="UTF-8" ...`), so all of
them are removed from the parsed tree.

Library: markdownify (MIT, maintained, built on BeautifulSoup, which reads the page here anyway).
Compared on the same page: inscriptis lays tables out in aligned columns but split a row whose cell
held a <p> into two lines, needs lxml, and writes headings as plain lines; html2text (GPL-3.0) writes
similar Markdown but its tables have no leading "|" and it kept every hidden part; trafilatura is
built to drop boilerplate and drops real content with it. None of them removes the `hidden`
attribute or <noscript>, so those are removed from the parsed tree before conversion.
"""

import re

from bs4 import BeautifulSoup, CData, Comment, Declaration, Doctype, ProcessingInstruction, Tag
from markdownify import ATX, MarkdownConverter

_NOT_SHOWN = ["head", "title", "script", "style", "noscript", "template", "nav", "footer"]
_NOT_TEXT = (ProcessingInstruction, Declaration, Doctype, Comment, CData)
_PERMALINK_MARKS = {"¶", "§", "#"}
# Site chrome in divs of these classes, not in <nav> or <footer>: DocBook's XSL stylesheets
# (PostgreSQL's manual among many others) put each page's Prev / Up / Home / Next table in
# navheader and navfooter (in PostgreSQL's pages that table was the whole first passage) and a
# section's list of its subsections in toc; Sphinx's classic theme puts its footer in footer.
_CHROME_CLASSES = {"navheader", "navfooter", "toc", "footer"}
_CHROME_ROLES = {"navigation", "contentinfo"}
# Boxes whose headings title the box (DocBook's admonitions); <aside> is one too.
_BOX_CLASSES = {"note", "tip", "warning", "caution", "important"}
_HEADING = re.compile(r"h[1-6]")
_HIDING_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\b", re.IGNORECASE)
_CONVERTER = MarkdownConverter(
    heading_style=ATX,
    strip=["a", "img"],
    escape_asterisks=False,
    escape_underscores=False,
    table_infer_header=True,
    wrap=True,  # with no width: source line breaks become spaces, as a browser shows them; <br> stays
    wrap_width=None,
)


def html_text(html: str) -> str:
    """The visible text of the page `html`, as Markdown (see the module docstring)."""
    soup = BeautifulSoup(html, "html.parser")
    for element in soup.find_all(_is_hidden):
        element.decompose()
    for markup in soup.find_all(string=lambda node: isinstance(node, _NOT_TEXT)):
        markup.extract()
    for heading in soup.find_all(_HEADING):
        if any(_is_box(parent) for parent in heading.parents):
            heading.name = "strong"
            heading.wrap(soup.new_tag("p"))
    return _CONVERTER.convert_soup(soup)


def _is_hidden(element: Tag) -> bool:
    return (
        element.name in _NOT_SHOWN
        or element.has_attr("hidden")
        or element.get("role") in _CHROME_ROLES
        or not _CHROME_CLASSES.isdisjoint(element.get("class") or ())
        or bool(_HIDING_STYLE.search(element.get("style", "")))
        or _is_permalink(element)
    )


def _is_box(element: Tag) -> bool:
    return element.name == "aside" or not _BOX_CLASSES.isdisjoint(element.get("class") or ())


def _is_permalink(element: Tag) -> bool:
    return (
        element.name == "a"
        and element.get("href", "").startswith("#")
        and element.get_text(strip=True) in _PERMALINK_MARKS
    )
