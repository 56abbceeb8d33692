"""Documents and collections a question may be asked within."""

from pipeline.scope import scope_options, scope_sources

SOURCES = ["design-criteria.pdf", "specs/concrete.md", "specs/steel/bolts.md", "specsheet.md"]


def test_options_list_every_collection_then_every_document():
    assert scope_options(SOURCES) == ["specs/", "specs/steel/", *sorted(SOURCES)]


def test_a_collection_covers_the_documents_below_it_only():
    assert scope_sources(["specs/"], SOURCES) == ["specs/concrete.md", "specs/steel/bolts.md"]
    assert scope_sources(["specs/steel/", "design-criteria.pdf"], SOURCES) == ["design-criteria.pdf", "specs/steel/bolts.md"]


def test_a_name_no_longer_indexed_covers_nothing():
    assert scope_sources(["gone.pdf", "gone/"], SOURCES) == []
