"""OpenSearch as the chunk index: the production backend, where k-NN, BM25 and their fusion run in
one cluster that every app replica shares.

`plumb index init` (`OpenSearchIndex.create`) puts an index template, so the mapping (vector width,
HNSW on faiss, BM25 text) is declared in one place, and creates the index from it; opening the index
(`from_settings`) only reads, so the app needs no write access to the cluster. Hybrid search is OpenSearch's own
`hybrid` query behind a search pipeline whose normalization processor rescales the keyword and
vector scores (min-max) before averaging them, so the two scales can be compared.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import urlparse

import boto3
import numpy as np
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth, helpers
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    NotFoundError,
    RequestError,
    TransportError,
)
from opensearchpy.exceptions import ConnectionError as ConnectionFailed

from pipeline.errors import ConfigError, IndexUnavailable
from pipeline.index.base import Chunk, Hit, Places, SearchMode, SourceFilter, checked_chunks, source_names, unit_vector
from pipeline.settings import Settings

RETURNED_FIELDS = ["chunk_id", "source", "page", "page_label", "section", "text", "vector"]
# Weights of the hybrid query's sub-queries, in their order: keyword first, then vector.
HYBRID_WEIGHTS = [0.3, 0.7]
REQUEST_TIMEOUT_S = 30
BULK_MAX_RETRIES = 3
BULK_INITIAL_BACKOFF_S = 1
# A terms aggregation returns at most this many documents; far more than one deployment holds.
MAX_SOURCES = 10_000
# How many distinct (source, page, label, section) combinations `places` reads per request: a
# composite aggregation pages through them, so a document of any size stays under the bucket limit.
PLACES_PAGE = 1_000
PLACE_KEYS = [
    {"source": {"terms": {"field": "source"}}},
    {"page": {"terms": {"field": "page"}}},
    # Chunks indexed before labels and sections were kept have neither: their place counts as "".
    {"page_label": {"terms": {"field": "page_label", "missing_bucket": True}}},
    {"section": {"terms": {"field": "section", "missing_bucket": True}}},
]
# Every chunk carries its document's fingerprint (see `ChunkIndex.replace_source`) with the number of
# chunks written with it, as "12:<fingerprint>"; one aggregation over the keyword lists them all, and
# a document that a failed bulk request left part-written or mixed is seen not to match its count.
FINGERPRINT_FIELD = {"type": "keyword"}


def index_template(index: str, dimension: int) -> dict[str, Any]:
    """The composable index template that gives the chunk index its mapping.

    Embeddings are unit-length, so the inner product is the cosine similarity; faiss supports
    `innerproduct` on every OpenSearch 2.x release, unlike `cosinesimil`. The English analyzer
    (lower-case, stop words, stemming) matches the embedded index's, so "walls" finds "wall".
    """
    return {
        "index_patterns": [index],
        "template": {
            # Searches see the index as of its last refresh, and the index refreshes only when a
            # document's replacement is complete, so a search never sees a document half-replaced.
            "settings": {"index": {"knn": True, "refresh_interval": "-1"}},
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "chunk_id": {"type": "keyword"},
                    "source": {"type": "keyword"},
                    "fingerprint": FINGERPRINT_FIELD,
                    "page": {"type": "integer"},
                    "page_label": {"type": "keyword"},
                    "section": {"type": "keyword"},
                    "text": {"type": "text", "analyzer": "english", "similarity": "BM25"},
                    "vector": {
                        "type": "knn_vector",
                        "dimension": dimension,
                        "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"},
                    },
                },
            },
        },
    }


def hybrid_pipeline() -> dict[str, Any]:
    """The search pipeline that fuses the hybrid query's keyword and vector scores."""
    return {
        "description": "Plumbline hybrid search: min-max normalised BM25 and k-NN scores, weighted mean.",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {"technique": "arithmetic_mean", "parameters": {"weights": HYBRID_WEIGHTS}},
                }
            }
        ],
    }


def _http_auth(settings: Settings) -> tuple[str, str] | Urllib3AWSV4SignerAuth | None:
    """Basic auth when a user is set; for an Amazon OpenSearch Service domain without one, requests
    are signed with the process's AWS credentials so the ECS task role is the identity (see infra/)."""
    if settings.opensearch_user:
        return (settings.opensearch_user, settings.opensearch_password)
    if (urlparse(settings.opensearch_url).hostname or "").endswith(".amazonaws.com"):
        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise ConfigError(
                f"No AWS credentials to sign requests to {settings.opensearch_url}: run with an IAM role "
                "or AWS credentials, or set PLUMB_OPENSEARCH_USER and PLUMB_OPENSEARCH_PASSWORD."
            )
        return Urllib3AWSV4SignerAuth(credentials, settings.aws_region, "es")
    return None


def _describe(error: Any) -> str:
    """The root cause in an OpenSearch error object, which says more than the HTTP status."""
    if isinstance(error, dict):
        cause = (error.get("root_cause") or [error])[0]
        return ": ".join(str(part) for part in (cause.get("type"), cause.get("reason")) if part)
    return str(error)


def _reason(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    return _describe(info.get("error") or exc.error)


def _source_term(source: str) -> dict[str, Any]:
    return {"term": {"source": source}}


def _source_filter(sources: list[str]) -> dict[str, Any]:
    """One name as the term query it always was; several as a terms query."""
    return _source_term(sources[0]) if len(sources) == 1 else {"terms": {"source": sources}}


def _match(query: str, sources: list[str] | None) -> dict[str, Any]:
    filters = [_source_filter(sources)] if sources else []
    return {"bool": {"must": [{"match": {"text": query}}], "filter": filters}}


def _knn(vector: list[float], k: int, sources: list[str] | None) -> dict[str, Any]:
    # A filter inside the k-NN clause is applied during the graph search (faiss efficient
    # filtering), so a filtered search still finds k chunks of those sources.
    clause: dict[str, Any] = {"vector": vector, "k": k}
    if sources:
        clause["filter"] = _source_filter(sources)
    return {"knn": {"vector": clause}}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms else 0.0


def _hit(raw: dict[str, Any], query_vector: np.ndarray) -> Hit:
    """A search hit. The similarity is recomputed from the stored vector because the hit's score
    is BM25 or a normalised fusion in two of the three modes and cannot be turned back into it."""
    doc = raw["_source"]
    return Hit(
        chunk_id=doc["chunk_id"],
        source=doc["source"],
        page=doc["page"],
        text=doc["text"],
        score=float(raw["_score"]),
        similarity=_cosine(query_vector, np.asarray(doc["vector"], dtype=np.float32)),
        page_label=doc.get("page_label", ""),  # absent from chunks indexed before labels were kept
        section=doc.get("section", ""),
    )


def _chunk(doc: dict[str, Any]) -> Chunk:
    return Chunk(
        chunk_id=doc["chunk_id"],
        source=doc["source"],
        page=doc["page"],
        text=doc["text"],
        vector=np.asarray(doc["vector"], dtype=np.float32),
        page_label=doc.get("page_label", ""),
        section=doc.get("section", ""),
    )


def _client(settings: Settings) -> OpenSearch:
    return OpenSearch(
        hosts=[settings.opensearch_url],
        http_auth=_http_auth(settings),
        timeout=REQUEST_TIMEOUT_S,
        max_retries=BULK_MAX_RETRIES,
        retry_on_timeout=True,
    )


class OpenSearchIndex:
    """The ChunkIndex on an OpenSearch cluster (a docker-compose node or an AWS domain)."""

    def __init__(self, client: OpenSearch, index: str, dimension: int, url: str) -> None:
        self._client = client
        self._index = index
        self._pipeline = f"{index}-hybrid"
        self._dimension = dimension
        self._url = url

    @classmethod
    def from_settings(cls, settings: Settings, dimension: int | None = None) -> Self:
        """Open the index that `plumb index init` created, checking it holds `dimension`-wide vectors
        (`None`: the dimension in its mapping, for commands that load no embedding model).

        Opening writes nothing, so the app's identity needs only read access to the cluster.
        """
        index = cls(_client(settings), settings.opensearch_index, dimension or 0, settings.opensearch_url)
        with index._errors("opening the index"):
            if dimension is None:
                index._dimension = index._mapped_dimension() or 0
            else:
                index._check_dimension()
        return index

    @classmethod
    def create(cls, settings: Settings, dimension: int) -> Self:
        """What `plumb index init` runs: put the index template and the search pipeline (both
        idempotent) and create the index if it is missing, else put the template's mapping on it
        (OpenSearch adds the fields an older version lacked, such as `fingerprint`, `page_label` and
        `section`, and keeps the rest); returns it opened.

        Creating and tolerating 'already exists' rather than checking first is safe when several
        init jobs start at once.
        """
        index = cls(_client(settings), settings.opensearch_index, dimension, settings.opensearch_url)
        with index._errors("creating the index"):
            index._client.indices.put_index_template(name=index._index, body=index_template(index._index, dimension))
            index._client.search_pipeline.put(id=index._pipeline, body=hybrid_pipeline())
            try:
                index._client.indices.create(index=index._index)
            except RequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
                index._check_dimension()
                mappings = index_template(index._index, dimension)["template"]["mappings"]
                index._client.indices.put_mapping(index=index._index, body=mappings)
        return index

    def _mapped_dimension(self) -> int | None:
        mapping = self._client.indices.get_mapping(index=self._index)
        properties = next(iter(mapping.values()))["mappings"].get("properties", {})
        return properties.get("vector", {}).get("dimension")

    def _check_dimension(self) -> None:
        found = self._mapped_dimension()
        if found != self._dimension:
            raise ConfigError(
                f"OpenSearch index {self._index!r} holds vectors of dimension {found}, but the embedding "
                f"model makes {self._dimension}: set PLUMB_OPENSEARCH_INDEX to a new index name "
                "(or delete the old index) and run `plumb index init`, then ingest the documents again."
            )

    def replace_source(self, source: str, chunks: Sequence[Chunk], fingerprint: str = "") -> None:
        """Delete the document's chunks, index the new ones, then refresh once, so that searches
        switch from the old version to the new one in one step (atomically with one primary shard
        and one writer at a time). If indexing fails, nothing is refreshed: searches keep seeing
        the old version, and ingesting the document again repairs it (a part-written document has
        no fingerprint, see `fingerprints`)."""
        checked = checked_chunks(source, chunks, self._dimension)
        with self._errors(f"indexing {source!r}"):
            self._client.delete_by_query(index=self._index, body={"query": _source_term(source)})
            # raise_on_error=False because the helper would otherwise raise on the first rejected
            # chunk, before it gets to retry the ones the cluster turned away as too busy (429).
            failures = [
                info
                for _, info in helpers.streaming_bulk(
                    self._client,
                    (self._action(chunk, f"{len(checked)}:{fingerprint}") for chunk in checked),
                    max_retries=BULK_MAX_RETRIES,
                    initial_backoff=BULK_INITIAL_BACKOFF_S,
                    raise_on_error=False,
                    yield_ok=False,
                )
            ]
            if not failures:
                self._client.indices.refresh(index=self._index)
        if failures:
            first = next(iter(failures[0].values()))
            raise IndexUnavailable(
                f"OpenSearch rejected {len(failures)} chunk(s) of {source!r}, the first with "
                f"{_describe(first.get('error'))}; run `plumb index init` if the index mapping is out of date."
            )

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """One multi-get by document id (the chunk id). `realtime=false` reads the last refresh, as
        searches do, so a document half-way through its replacement is seen as it was before."""
        if not chunk_ids:
            return []
        with self._errors("fetching chunks"):
            response = self._client.mget(index=self._index, body={"ids": list(chunk_ids)}, realtime=False)
        return [_chunk(doc["_source"]) for doc in response["docs"] if doc.get("found")]

    def _action(self, chunk: Chunk, stamp: str) -> dict[str, Any]:
        # The chunk id is the document id, so a bulk request retried after a timeout
        # overwrites what it already wrote instead of duplicating it.
        return {
            "_index": self._index,
            "_id": chunk.chunk_id,
            "_source": {
                "chunk_id": chunk.chunk_id,
                "source": chunk.source,
                "fingerprint": stamp,
                "page": chunk.page,
                "page_label": chunk.page_label,
                "section": chunk.section,
                "text": chunk.text,
                "vector": chunk.vector.tolist(),
            },
        }

    def replace_sources(
        self, documents: Mapping[str, Sequence[Chunk]], fingerprints: Mapping[str, str] | None = None
    ) -> None:
        """One `replace_source` per document: each is its own delete, bulk and refresh."""
        for source, chunks in documents.items():
            self.replace_source(source, chunks, (fingerprints or {}).get(source, ""))

    def delete_source(self, source: str) -> int:
        with self._errors(f"deleting {source!r}"):
            response = self._client.delete_by_query(
                index=self._index, body={"query": _source_term(source)}, refresh=True
            )
        return int(response["deleted"])

    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        k: int,
        mode: SearchMode = "hybrid",
        source: SourceFilter = None,
    ) -> list[Hit]:
        if k < 1:
            raise ValueError(f"k is {k}: ask for at least one passage.")
        source = source_names(source)
        if source == []:
            return []
        vector = unit_vector(query_vector, self._dimension, "The query vector")
        params: dict[str, str] = {}
        match mode:
            case "dense":
                clause = _knn(vector.tolist(), k, source)
            case "keyword":
                clause = _match(query, source)
            case "hybrid":
                clause = {"hybrid": {"queries": [_match(query, source), _knn(vector.tolist(), k, source)]}}
                params["search_pipeline"] = self._pipeline
            case other:
                raise ValueError(f"Unknown search mode {other!r}: use 'dense', 'keyword' or 'hybrid'.")
        body = {"size": k, "_source": RETURNED_FIELDS, "query": clause}
        with self._errors("searching"):
            response = self._client.search(index=self._index, body=body, **params)
        return [_hit(raw, vector) for raw in response["hits"]["hits"]]

    def sources(self) -> dict[str, int]:
        body = {"size": 0, "aggs": {"sources": {"terms": {"field": "source", "size": MAX_SOURCES}}}}
        with self._errors("listing documents"):
            response = self._client.search(index=self._index, body=body)
        return {bucket["key"]: bucket["doc_count"] for bucket in response["aggregations"]["sources"]["buckets"]}

    def places(self, sources: Sequence[str]) -> dict[str, Places]:
        """A composite aggregation over the chunks of these documents, PLACES_PAGE distinct (source,
        page, label, section) combinations per request, each request after the last one's key."""
        names = list(dict.fromkeys(sources))
        if not names:
            return {}
        composite: dict[str, Any] = {"size": PLACES_PAGE, "sources": PLACE_KEYS}
        found: dict[str, tuple[set[tuple[int, str]], set[str]]] = {}
        with self._errors("listing the pages and sections of documents"):
            while True:
                body = {"size": 0, "query": _source_filter(names), "aggs": {"places": {"composite": composite}}}
                result = self._client.search(index=self._index, body=body)["aggregations"]["places"]
                for bucket in result["buckets"]:
                    key = bucket["key"]
                    pages, sections = found.setdefault(key["source"], (set(), set()))
                    pages.add((int(key["page"]), key["page_label"] or ""))
                    sections.add(key["section"] or "")
                if not result["buckets"] or "after_key" not in result:
                    break
                composite["after"] = result["after_key"]
        return {source: Places(frozenset(pages), frozenset(sections)) for source, (pages, sections) in found.items()}

    def fingerprints(self) -> dict[str, str]:
        """One aggregation of the stamps (FINGERPRINT_FIELD) per document. A document gets its
        fingerprint only when every one of its chunks carries the same stamp and their number is
        the one stamped; otherwise (a bulk request that failed part-way) "", so it is ingested again."""
        stamps = {"terms": {"field": "fingerprint", "size": 2}}
        body = {
            "size": 0,
            "aggs": {"sources": {"terms": {"field": "source", "size": MAX_SOURCES}, "aggs": {"stamps": stamps}}},
        }
        with self._errors("listing documents"):
            response = self._client.search(index=self._index, body=body)
        found = {}
        for bucket in response["aggregations"]["sources"]["buckets"]:
            keys = [stamp["key"] for stamp in bucket["stamps"]["buckets"]]
            count, _, fingerprint = keys[0].partition(":") if len(keys) == 1 else ("", "", "")
            found[bucket["key"]] = fingerprint if count == str(bucket["doc_count"]) else ""
        return found

    def drop(self) -> None:
        """Delete the index, its template and its search pipeline; what is already gone is skipped."""
        with self._errors("dropping the index"):
            self._client.indices.delete(index=self._index, ignore=404)
            self._client.indices.delete_index_template(name=self._index, ignore=404)
            self._client.search_pipeline.delete(id=self._pipeline, ignore=404)

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn the client's exceptions into IndexUnavailable with a message that says what to do."""
        try:
            yield
        except ConnectionFailed as exc:
            raise IndexUnavailable(
                f"Cannot reach OpenSearch at {self._url} while {doing}: start it "
                "(`docker compose up -d opensearch`) or set PLUMB_OPENSEARCH_URL to a running cluster."
            ) from exc
        except (AuthenticationException, AuthorizationException) as exc:
            raise IndexUnavailable(
                f"OpenSearch at {self._url} refused access while {doing} ({exc.status_code}): check "
                "PLUMB_OPENSEARCH_USER and PLUMB_OPENSEARCH_PASSWORD, or the permissions of the IAM role."
            ) from exc
        except NotFoundError as exc:
            raise IndexUnavailable(
                f"OpenSearch has no index or search pipeline for {self._index!r} ({_reason(exc)}): "
                "run `plumb index init`."
            ) from exc
        except TransportError as exc:
            raise IndexUnavailable(
                f"OpenSearch refused the request while {doing}: {_reason(exc)}. It needs OpenSearch 2.10 or "
                "later with the k-NN and neural-search plugins; then run `plumb index init`."
            ) from exc
