"""What a question may be asked within: documents, and collections of them.

A collection is the common start of its documents' names up to a "/": `plumb ingest --collection
specs docs/` names its files `specs/...`, so "specs/" is that collection (and "specs/sub/" a part of
it). A scope is a list of such names; it is stored with each turn as the asker chose it, and turned
into the documents it covers at the moment of asking, so a collection takes in documents added later.
"""

from collections.abc import Iterable
from pathlib import PurePosixPath


def scope_options(sources: Iterable[str]) -> list[str]:
    """Every collection ("specs/", "specs/sub/") of the indexed `sources`, then every document, sorted."""
    names = sorted(set(sources))
    collections = {f"{parent.as_posix()}/" for name in names for parent in PurePosixPath(name).parents if parent.name}
    return sorted(collections) + names


def scope_sources(scope: Iterable[str], sources: Iterable[str]) -> list[str]:
    """The indexed `sources` that `scope` covers: a name ending in "/" covers the documents whose
    names start with it, any other name the document of that name."""
    wanted = list(scope)
    return sorted(source for source in set(sources) if any(source == w or (w.endswith("/") and source.startswith(w)) for w in wanted))
