"""How a citation names the place a reader looks: a printed page label, a section's heading path,
or the page number; and that the answer prompt's passage headers say the same."""

import pytest

from pipeline.prompts import answer_messages
from pipeline.records import Citation


def cite(source: str = "paper.pdf", page: int = 3, **places: str) -> Citation:
    return Citation(source=source, page=page, passage="Text.", score=0.5, **places)


@pytest.mark.parametrize(
    ("citation", "label"),
    [
        (cite(page_label="1"), "paper.pdf – page 1 (PDF page 3)"),
        (cite(page_label="iv"), "paper.pdf – page iv (PDF page 3)"),
        (cite(page_label="3"), "paper.pdf – page 3"),
        (cite(), "paper.pdf – page 3"),  # a text page, or a turn stored before labels were kept
        (cite("spec.md", 1, section="3.2 Curing"), "spec.md – 3.2 Curing"),
        (cite("spec.md", 1, section="Design › Loads › Wind"), "spec.md – Design › Loads › Wind"),
        (
            cite("controlflow.html", 1, section="4. More Control Flow Tools › 4.8. More on Defining Functions › "
                 "4.8.3. Special parameters › 4.8.3.4. Function Examples"),
            "controlflow.html – … › 4.8.3. Special parameters › 4.8.3.4. Function Examples",
        ),
        (cite("notes.md", 1), "notes.md – page 1"),  # text before the first heading
    ],
)
def test_a_citation_names_where_a_reader_looks(citation: Citation, label: str):
    assert citation.label() == label


def test_the_answer_prompt_heads_each_passage_with_its_label():
    citations = [cite(page_label="ii"), cite("spec.md", 1, section="Loads › Wind")]
    (message,) = answer_messages([], citations, "Wind speed?")
    assert "[1] paper.pdf – page ii (PDF page 3)\nText.\n\n[2] spec.md – Loads › Wind\nText." in message["content"]
