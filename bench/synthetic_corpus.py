"""A synthetic corpus shaped like Plumbline's: 384-wide unit vectors (all-MiniLM-L6-v2's width) that
fall in topic clusters, and chunk text whose words follow a Zipf law with English function words at
the top, plus clause numbers and part codes. Real embeddings would need the model to run over 100k
passages (tens of minutes here), and what the benchmarks measure depends only on these shapes.
"""

from dataclasses import dataclass

import numpy as np

DIMENSION = 384
WORDS_PER_CHUNK = 170  # a 1000-character chunk of English prose
STOPWORD_TEXT = (
    "the of and to a in is that for it as with be on by this are or from at not which an shall "
    "have was all any such where when if than other each its may must into been no only but "
    "more also these those can between under over per"
)
SYLLABLE_TEXT = (
    "ba be bi bo bu ca ce co cu da de di do du fa fe fi fo ga ge go la le li lo lu ma me mi mo "
    "mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo "
    "za ze"
)
STOPWORDS = STOPWORD_TEXT.split()
SYLLABLES = SYLLABLE_TEXT.split()


@dataclass(frozen=True)
class Corpus:
    """Chunks of `sources` documents; row i of `vectors` embeds `texts[i]` of `source_of[i]`."""

    vectors: np.ndarray
    texts: list[str]
    source_of: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def _vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    words = set(STOPWORDS)
    vocab = list(STOPWORDS)
    while len(vocab) < size:
        word = "".join(rng.choice(SYLLABLES, size=rng.integers(2, 5)))
        if word not in words:
            words.add(word)
            vocab.append(word)
    return vocab


def _cluster_vectors(n: int, clusters: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `clusters` random centres; neighbours in one cluster have cosine ~0.5,
    about what the model gives passages on one topic."""
    centres = rng.standard_normal((clusters, DIMENSION), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, size=n)
    noise = rng.standard_normal((n, DIMENSION), dtype=np.float32) / DIMENSION**0.5
    vectors = centres[labels] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, labels


def _texts(labels: np.ndarray, vocab: list[str], rng: np.random.Generator) -> list[str]:
    """Zipf-distributed words; each topic cluster favours its own slice of the rarer vocabulary.
    Word order does not matter to any engine measured, so words are drawn for all chunks at once."""
    n = len(labels)
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.07
    common = rng.choice(len(vocab), size=(n, WORDS_PER_CHUNK), p=weights / weights.sum())
    topic_start = 500 + (labels * 37) % (len(vocab) - 600)
    topical = topic_start[:, None] + rng.integers(0, 100, size=(n, 12))
    words = np.array(vocab, dtype=object)[np.concatenate([common, topical], axis=1)]
    clauses = rng.integers(0, [50, 99, 99], size=(n, 3))
    parts = rng.integers(0, 10**6, size=n)
    return [
        " ".join(row) + f" {a:02d} {b:02d} {c:02d} PX-{part:06d}" for row, (a, b, c), part in zip(words, clauses, parts)
    ]


def make_corpus(n: int, seed: int = 0, chunks_per_source: int = 40) -> Corpus:
    """`n` chunks in documents of `chunks_per_source` chunks each."""
    rng = np.random.default_rng(seed)
    vectors, labels = _cluster_vectors(n, clusters=max(10, n // 200), rng=rng)
    texts = _texts(labels, _vocabulary(30_000, rng), rng)
    sources = [f"docs/spec-{i // chunks_per_source:05d}.pdf" for i in range(n)]
    return Corpus(vectors=vectors, texts=texts, source_of=sources)


def make_queries(corpus: Corpus, count: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
    """Questions near random chunks: a few of the chunk's words wrapped in function words, and a
    vector that is the chunk's moved about as far as a paraphrase moves it (cosine ~0.7)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(corpus), size=count)
    queries = []
    for row in rows:
        words = [w for w in corpus.texts[row].split() if w not in STOPWORDS]
        picked = " ".join(rng.choice(words, size=4, replace=False))
        queries.append(f"what is the {picked} for the {rng.choice(words)}")
    noise = rng.standard_normal((count, DIMENSION), dtype=np.float32) / DIMENSION**0.5
    vectors = corpus.vectors[rows] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return queries, vectors


def exact_top_k(vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> list[set[int]]:
    """The true `k` nearest rows of each query, the reference for recall."""
    scores = query_vectors @ vectors.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return [set(map(int, row)) for row in top]
