"""Which questions are held out for validation: whole groups of near-identical questions.

A question asked again with other case or punctuation, or rewritten by the condenser, is the same
question: if one copy trained the model and another validated it, validation would measure recall.
So questions are grouped, and a group's split is decided by a hash of its canonical key (its
smallest normalised question), the same on every run while the group is the same.

Two questions are in one group when their normalised forms (`normalised`) are equal, or when they
cite the same numbers and the embeddings of their standalone questions have a cosine similarity of
at least SIMILARITY_THRESHOLD; groups are the connected components of those links. Clause, section
and dimension numbers tell engineering questions apart where the embedding barely does (clause 12
and clause 13 of one section score 0.98, beams B12 and B14 0.95), and a condensed follow-up keeps
them (the condense prompt says so). That rule also means only questions that share their numbers
with another question are encoded at all.

Cost, measured on 2 busy cores with the packaged all-MiniLM-L6-v2: 5.6 ms of CPU per question
(one thread; two threads cost twice the CPU for no gain), plus loading the model (2 s to 15 s,
about 400 MB). Distinct normalised questions are encoded once each, one bucket of equal numbers at
a time; neighbours come from a FAISS HNSW graph per bucket, so nothing is quadratic.
"""

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Literal

import numpy as np

from pipeline.embeddings import Embedder

Split = Literal["train", "validation"]

# Measured on 12 pairs of paraphrases and 12 pairs of different questions on the same element
# (tests/test_export_holdout.py holds both lists): different questions scored up to 0.83 ("How far
# apart are the anchor bolts?" / "How deep are the anchor bolts embedded?"); case, punctuation and
# condenser-style rewrites 0.87 to 0.98. 0.85 merges none of the different pairs; freer paraphrases
# (0.63 to 0.85, "When must the formwork be struck?" / "When can the formwork be removed?") are
# not caught, a price paid to keep different questions apart.
SIMILARITY_THRESHOLD = 0.85
NEIGHBOURS = 10  # per question: enough for a cluster of restatements, and linking is transitive
_HNSW_LINKS = 32
_NUMBER = re.compile(r"\d+")


@lru_cache(maxsize=1 << 12)  # a question comes back with every answer to it
def normalised(text: str) -> str:
    """NFKC, casefolded, punctuation removed, whitespace collapsed: "What's the MAX slope of an
    accessible-ramp?" -> "whats the max slope of an accessible ramp". Apostrophes go without a
    trace (what's, whats); other punctuation separates words (accessible-ramp, clause 4.2)."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("'", "").replace("\u2019", "")
    return " ".join("".join(" " if unicodedata.category(ch)[0] == "P" else ch for ch in folded).split())


def split_for(key: str, validation_fraction: float) -> Split:
    """Deterministic split of a group by its canonical key."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return "validation" if bucket < validation_fraction else "train"


class QuestionGroups:
    """Numbers the distinct normalised questions as they stream in (`add`), then groups them and
    gives each its group's split (`splits`). Holds one short string per distinct question."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def add(self, question: str) -> int:
        """The id (0, 1, ...) of `question`'s normalised form."""
        return self._ids.setdefault(normalised(question), len(self._ids))

    def splits(self, embedder: Embedder, validation_fraction: float) -> list[Split]:
        """The split of every question id, by its group; loads the embedder only if some questions
        share their numbers."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        texts = list(self._ids)
        links = [pair for bucket in _buckets(texts) for pair in _similar(embedder, texts, bucket)]
        rows, cols = zip(*links, strict=True) if links else ((), ())
        graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(texts)))
        _, group_of = connected_components(graph, directed=False)
        keys: dict[int, str] = {}
        for text, group in zip(texts, group_of, strict=True):
            keys[group] = min(keys.get(group, text), text)
        return [split_for(keys[group], validation_fraction) for group in group_of]


def _buckets(texts: list[str]) -> list[list[int]]:
    """Ids of questions with the same numbers (as a multiset), for buckets of two or more."""
    by_numbers: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for n, text in enumerate(texts):
        by_numbers[tuple(sorted(_NUMBER.findall(text)))].append(n)
    return [ids for ids in by_numbers.values() if len(ids) > 1]


def _similar(embedder: Embedder, texts: list[str], ids: list[int]) -> list[tuple[int, int]]:
    """Pairs of ids whose embeddings are at least SIMILARITY_THRESHOLD apart, from each question's
    nearest neighbours in an HNSW graph (approximate: a link past the graph's reach can be missed)."""
    import faiss

    vectors = embedder.encode([texts[n] for n in ids])
    index = faiss.IndexHNSWFlat(vectors.shape[1], _HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    with _one_thread():
        index.add(vectors)
        similarities, neighbours = index.search(vectors, min(NEIGHBOURS, len(ids)))
    return [
        (ids[a], ids[b])
        for a, (row, found) in enumerate(zip(similarities, neighbours, strict=True))
        for similarity, b in zip(row, found, strict=True)
        if b not in (-1, a) and similarity >= SIMILARITY_THRESHOLD
    ]


@contextmanager
def _one_thread() -> Iterator[None]:
    """FAISS builds the HNSW graph in parallel, and the graph then depends on thread timing; on one
    thread it is the same on every run, and so are the groups."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)
