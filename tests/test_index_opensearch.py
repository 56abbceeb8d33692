"""The OpenSearch index, pinned by the exact requests it sends.

OpenSearch cannot run on this machine, so the real opensearch-py client talks to a small HTTP
server on 127.0.0.1 that records every request and answers with OpenSearch-shaped responses.
The tests pin the wire protocol (mappings, pipeline, bulk lines, query DSL) and how responses and
failures are read back; the behaviour against a real cluster is covered by
tests/test_index_contract.py when OPENSEARCH_URL is set.
"""

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from opensearchpy import OpenSearch

from pipeline.errors import ConfigError, IndexUnavailable
from pipeline.index.base import Chunk, Hit, Places
from pipeline.index.opensearch import OpenSearchIndex, _http_auth
from pipeline.settings import Settings

DIM = 4
INDEX = "plumb-chunks"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


Reply = tuple[int, Any]


class RecordingServer:
    """An HTTP server that records requests and answers from canned replies per (method, path).

    A list of replies is consumed one per request, the last one repeating; bulk requests without
    a canned reply succeed item by item, as OpenSearch answers them.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)] = list(replies)

    def of(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Request) -> Reply:
        canned = self.replies.get((request.method, request.path))
        if canned:
            return canned.pop(0) if len(canned) > 1 else canned[0]
        if request.path == "/_bulk":
            actions = request.body[0::2]
            items = [{"index": {**a["index"], "status": 201, "result": "created"}} for a in actions]
            return 200, {"took": 1, "errors": False, "items": items}
        return 200, {"acknowledged": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if url.path.endswith("/_bulk"):
                    body: Any = [json.loads(line) for line in raw.splitlines() if line]
                else:
                    body = json.loads(raw) if raw else None
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Request(self.command, url.path, dict(parse_qsl(url.query)), body, headers)
                server.requests.append(request)
                status, payload = server._answer(request)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def error_reply(status: int, kind: str, reason: str) -> Reply:
    cause = {"type": kind, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause}, "status": status}


MAPPING = {
    "dynamic": "strict",
    "properties": {
        "chunk_id": {"type": "keyword"},
        "source": {"type": "keyword"},
        "fingerprint": {"type": "keyword"},
        "page": {"type": "integer"},
        "page_label": {"type": "keyword"},
        "section": {"type": "keyword"},
        "text": {"type": "text", "analyzer": "english", "similarity": "BM25"},
        "vector": {
            "type": "knn_vector",
            "dimension": DIM,
            "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"},
        },
    },
}
FIELDS = ["chunk_id", "source", "page", "page_label", "section", "text", "vector"]
QUERY_VECTOR = np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32)
WIRE_VECTOR = QUERY_VECTOR.tolist()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    recording.reply("GET", "/plumb-chunks/_mapping", (200, {INDEX: {"mappings": MAPPING}}))
    yield recording
    recording.stop()


def open_index(server: RecordingServer, **settings: Any) -> OpenSearchIndex:
    return OpenSearchIndex.from_settings(Settings(opensearch_url=server.url, **settings), DIM)


def create_index(server: RecordingServer, **settings: Any) -> OpenSearchIndex:
    return OpenSearchIndex.create(Settings(opensearch_url=server.url, **settings), DIM)


@pytest.fixture
def index(server: RecordingServer) -> Iterator[OpenSearchIndex]:
    opened = open_index(server)
    server.requests.clear()
    yield opened
    opened.close()


def chunk(
    chunk_id: str,
    source: str = "spec.pdf",
    page: int = 1,
    vector: list[float] | None = None,
    page_label: str = "",
    section: str = "",
) -> Chunk:
    values = vector or [1.0, 0.0, 0.0, 0.0]
    return Chunk(chunk_id, source, page, f"text of {chunk_id}", np.array(values, dtype=np.float32), page_label, section)


def search_reply(*hits: dict[str, Any]) -> Reply:
    return 200, {"took": 3, "timed_out": False, "hits": {"total": {"value": len(hits)}, "hits": list(hits)}}


def raw_hit(
    chunk_id: str, score: float, vector: list[float], source: str = "spec.pdf", page: int = 2, **labels: str
) -> dict:
    """A hit as OpenSearch returns it; `labels` (page_label, section) are left out unless given, as
    in chunks indexed before they were kept."""
    doc = {"chunk_id": chunk_id, "source": source, "page": page, "text": f"text of {chunk_id}", "vector": vector}
    return {"_index": INDEX, "_id": chunk_id, "_score": score, "_source": {**doc, **labels}}


# --- creating and opening the index ---------------------------------------------------------


def test_create_puts_the_template_and_pipeline_then_creates_the_index(server):
    create_index(server).close()

    sent = [(r.method, r.path, r.body) for r in server.requests]
    assert sent == [
        (
            "PUT",
            "/_index_template/plumb-chunks",
            {
                "index_patterns": ["plumb-chunks"],
                "template": {"settings": {"index": {"knn": True, "refresh_interval": "-1"}}, "mappings": MAPPING},
            },
        ),
        (
            "PUT",
            "/_search/pipeline/plumb-chunks-hybrid",
            {
                "description": "Plumbline hybrid search: min-max normalised BM25 and k-NN scores, weighted mean.",
                "phase_results_processors": [
                    {
                        "normalization-processor": {
                            "normalization": {"technique": "min_max"},
                            "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}},
                        }
                    }
                ],
            },
        ),
        ("PUT", "/plumb-chunks", None),
    ]


def test_the_index_name_setting_names_template_pipeline_and_index(server):
    create_index(server, opensearch_index="team-docs").close()

    assert [r.path for r in server.requests] == [
        "/_index_template/team-docs",
        "/_search/pipeline/team-docs-hybrid",
        "/team-docs",
    ]
    assert server.requests[0].body["index_patterns"] == ["team-docs"]


def test_create_reuses_an_existing_index_of_the_same_dimension_adding_the_fingerprint_field(server):
    server.reply("PUT", "/plumb-chunks", error_reply(400, "resource_already_exists_exception", "exists"))

    create_index(server).close()

    assert [(r.method, r.path) for r in server.requests][-3:] == [
        ("PUT", "/plumb-chunks"),
        ("GET", "/plumb-chunks/_mapping"),
        ("PUT", "/plumb-chunks/_mapping"),
    ]
    # An index made by an older version gains the fields it lacks (page_label, section).
    assert server.requests[-1].body == MAPPING


def test_create_reports_other_refusals(server):
    server.reply("PUT", "/plumb-chunks", error_reply(400, "illegal_argument_exception", "knn is not enabled"))

    with pytest.raises(IndexUnavailable, match="creating the index: illegal_argument_exception: knn is not enabled"):
        create_index(server)


def wider_mapping() -> dict[str, Any]:
    wider = json.loads(json.dumps(MAPPING))
    wider["properties"]["vector"]["dimension"] = 768
    return {INDEX: {"mappings": wider}}


def test_create_refuses_an_existing_index_of_another_dimension(server):
    server.reply("PUT", "/plumb-chunks", error_reply(400, "resource_already_exists_exception", "exists"))
    server.reply("GET", "/plumb-chunks/_mapping", (200, wider_mapping()))

    with pytest.raises(ConfigError, match="dimension 768.*makes 4.*PLUMB_OPENSEARCH_INDEX"):
        create_index(server)


def test_a_cluster_without_the_neural_plugin_is_reported(server):
    server.reply(
        "PUT",
        "/_search/pipeline/plumb-chunks-hybrid",
        error_reply(400, "parse_exception", "Invalid processor type normalization-processor"),
    )

    with pytest.raises(IndexUnavailable, match="normalization-processor.*neural-search"):
        create_index(server)


def test_opening_only_reads_the_mapping(server):
    open_index(server).close()

    assert [(r.method, r.path) for r in server.requests] == [("GET", "/plumb-chunks/_mapping")]


def test_opening_a_missing_index_says_to_run_index_init(server):
    server.reply("GET", "/plumb-chunks/_mapping", error_reply(404, "index_not_found_exception", "no such index"))

    with pytest.raises(IndexUnavailable, match="no index.*'plumb-chunks'.*run `plumb index init`"):
        open_index(server)


def test_opening_an_index_of_another_dimension_is_refused(server):
    server.reply("GET", "/plumb-chunks/_mapping", (200, wider_mapping()))

    with pytest.raises(ConfigError, match="dimension 768.*makes 4"):
        open_index(server)


def test_opening_without_a_dimension_takes_the_mapped_one(server):
    """What `plumb index sources` and `plumb ingest --delete` do, so that they load no model."""
    server.reply("GET", "/plumb-chunks/_mapping", (200, wider_mapping()))
    index = OpenSearchIndex.from_settings(Settings(opensearch_url=server.url))

    with pytest.raises(ValueError, match="768-wide"):
        index.replace_source("spec.pdf", [chunk("c1")])
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/plumb-chunks/_mapping")]


# --- writing ----------------------------------------------------------------------------------


def test_replace_source_deletes_by_query_bulk_indexes_then_refreshes_once(server, index):
    index.replace_source(
        "spec.pdf",
        [chunk("c1", page=3, page_label="i"), chunk("c2", page=4, vector=[0.0, 0.5, 0.5, 0.0], section="Loads")],
        "f00d",
    )

    assert [(r.method, r.path, r.query) for r in server.requests] == [
        ("POST", "/plumb-chunks/_delete_by_query", {}),
        ("POST", "/_bulk", {}),
        ("POST", "/plumb-chunks/_refresh", {}),
    ]
    assert server.requests[0].body == {"query": {"term": {"source": "spec.pdf"}}}
    half = float(np.float32(0.5) / np.linalg.norm(np.array([0.5, 0.5], dtype=np.float32)))
    assert server.requests[1].body == [
        {"index": {"_index": INDEX, "_id": "c1"}},
        {
            "chunk_id": "c1",
            "source": "spec.pdf",
            "fingerprint": "2:f00d",
            "page": 3,
            "page_label": "i",
            "section": "",
            "text": "text of c1",
            "vector": [1.0, 0.0, 0.0, 0.0],
        },
        {"index": {"_index": INDEX, "_id": "c2"}},
        {
            "chunk_id": "c2",
            "source": "spec.pdf",
            "fingerprint": "2:f00d",
            "page": 4,
            "page_label": "",
            "section": "Loads",
            "text": "text of c2",
            "vector": [0.0, half, half, 0.0],
        },
    ]


def test_stored_vectors_are_unit_length(server, index):
    index.replace_source("spec.pdf", [chunk("c1", vector=[3.0, 0.0, 4.0, 0.0])])

    (_, doc) = server.of("POST", "/_bulk")[0].body
    assert doc["vector"] == pytest.approx([0.6, 0.0, 0.8, 0.0])


def test_replacing_with_no_chunks_deletes_and_refreshes(server, index):
    index.replace_source("spec.pdf", [])

    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/plumb-chunks/_delete_by_query"),
        ("POST", "/plumb-chunks/_refresh"),
    ]


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([chunk("c1"), chunk("c2", source="other.pdf")], "'c2' belongs to 'other.pdf'"),
        ([chunk("c1"), chunk("c1")], "'c1' appears twice"),
        ([chunk("c1", vector=[1.0, 0.0, 0.0])], "shape \\(3,\\).*4-wide"),
        ([chunk("c1", vector=[0.0, 0.0, 0.0, 0.0])], "zero or not finite"),
        ([chunk("c1", vector=[float("nan"), 0.0, 0.0, 0.0])], "zero or not finite"),
    ],
)
def test_bad_chunks_are_refused_before_anything_is_sent(server, index, chunks, message):
    with pytest.raises(ValueError, match=message):
        index.replace_source("spec.pdf", chunks)

    assert server.requests == []


def test_a_source_is_required(server, index):
    with pytest.raises(ValueError, match="source"):
        index.replace_source("", [])
    assert server.requests == []


def test_bulk_retries_only_the_rejected_chunk_after_a_429(server, index):
    server.reply(
        "POST",
        "/_bulk",
        (
            200,
            {
                "took": 1,
                "errors": True,
                "items": [
                    {"index": {"_index": INDEX, "_id": "c1", "status": 201}},
                    {
                        "index": {
                            "_index": INDEX,
                            "_id": "c2",
                            "status": 429,
                            "error": {"type": "es_rejected_execution_exception"},
                        }
                    },
                ],
            },
        ),
        (200, {"took": 1, "errors": False, "items": [{"index": {"_index": INDEX, "_id": "c2", "status": 201}}]}),
    )

    index.replace_source("spec.pdf", [chunk("c1"), chunk("c2")])

    bulks = server.of("POST", "/_bulk")
    assert [[line["index"]["_id"] for line in b.body[0::2]] for b in bulks] == [["c1", "c2"], ["c2"]]


def test_a_rejected_chunk_becomes_index_unavailable_and_nothing_is_refreshed(server, index):
    failure = {"type": "mapper_parsing_exception", "reason": "vector dimension mismatch"}
    server.reply(
        "POST",
        "/_bulk",
        (
            200,
            {
                "took": 1,
                "errors": True,
                "items": [{"index": {"_index": INDEX, "_id": "c1", "status": 400, "error": failure}}],
            },
        ),
    )

    with pytest.raises(
        IndexUnavailable, match="rejected 1 chunk.*spec.pdf.*mapper_parsing_exception: vector dimension mismatch"
    ):
        index.replace_source("spec.pdf", [chunk("c1")])

    assert server.of("POST", "/plumb-chunks/_refresh") == []


def test_delete_source_returns_how_many_were_deleted(server, index):
    server.reply("POST", "/plumb-chunks/_delete_by_query", (200, {"deleted": 7, "failures": []}))

    assert index.delete_source("spec.pdf") == 7
    assert server.requests[0].body == {"query": {"term": {"source": "spec.pdf"}}}
    assert server.requests[0].query == {"refresh": "true"}


# --- searching --------------------------------------------------------------------------------

SOURCE_FILTER = {"term": {"source": "spec.pdf"}}
KEYWORD = {"bool": {"must": [{"match": {"text": "fire rating"}}], "filter": []}}
KEYWORD_FILTERED = {"bool": {"must": [{"match": {"text": "fire rating"}}], "filter": [SOURCE_FILTER]}}
KNN = {"knn": {"vector": {"vector": WIRE_VECTOR, "k": 3}}}
KNN_FILTERED = {"knn": {"vector": {"vector": WIRE_VECTOR, "k": 3, "filter": SOURCE_FILTER}}}


def test_several_sources_are_one_terms_filter(server, index):
    server.reply("POST", "/plumb-chunks/_search", search_reply())
    index.search("fire rating", QUERY_VECTOR, 3, mode="dense", source=["spec.pdf", "specs/b.md"])
    (sent,) = server.requests
    assert sent.body["query"]["knn"]["vector"]["filter"] == {"terms": {"source": ["spec.pdf", "specs/b.md"]}}


def test_an_empty_set_of_sources_sends_nothing(server, index):
    assert index.search("fire rating", QUERY_VECTOR, 3, mode="hybrid", source=[]) == []
    assert server.requests == []


@pytest.mark.parametrize(
    ("mode", "source", "query", "params"),
    [
        ("dense", None, KNN, {}),
        ("dense", "spec.pdf", KNN_FILTERED, {}),
        ("keyword", None, KEYWORD, {}),
        ("keyword", "spec.pdf", KEYWORD_FILTERED, {}),
        ("hybrid", None, {"hybrid": {"queries": [KEYWORD, KNN]}}, {"search_pipeline": "plumb-chunks-hybrid"}),
        (
            "hybrid",
            "spec.pdf",
            {"hybrid": {"queries": [KEYWORD_FILTERED, KNN_FILTERED]}},
            {"search_pipeline": "plumb-chunks-hybrid"},
        ),
    ],
)
def test_each_mode_sends_its_query_dsl(server, index, mode, source, query, params):
    server.reply("POST", "/plumb-chunks/_search", search_reply())

    assert index.search("fire rating", QUERY_VECTOR, 3, mode=mode, source=source) == []

    (sent,) = server.requests
    assert (sent.method, sent.path, sent.query) == ("POST", "/plumb-chunks/_search", params)
    assert sent.body == {"size": 3, "_source": FIELDS, "query": query}


def test_hybrid_is_the_default_mode(server, index):
    server.reply("POST", "/plumb-chunks/_search", search_reply())

    index.search("fire rating", QUERY_VECTOR, 3)

    assert "hybrid" in server.requests[0].body["query"]


def test_hits_keep_the_order_and_score_and_carry_the_cosine_similarity(server, index):
    server.reply(
        "POST",
        "/plumb-chunks/_search",
        search_reply(
            raw_hit("c1", 0.92, [1.0, 0.0, 0.0, 0.0], page=7, page_label="v", section=""),
            raw_hit("c2", 0.41, [0.0, 0.0, 2.0, 0.0]),
        ),
    )

    hits = index.search("fire rating", QUERY_VECTOR, 2)

    assert [(h.chunk_id, h.source, h.page, h.page_label, h.section, h.text) for h in hits] == [
        ("c1", "spec.pdf", 7, "v", "", "text of c1"),
        ("c2", "spec.pdf", 2, "", "", "text of c2"),  # indexed before labels were kept
    ]
    assert all(isinstance(h, Hit) for h in hits)
    assert [h.score for h in hits] == pytest.approx([0.92, 0.41])
    assert [h.similarity for h in hits] == pytest.approx([0.6, 0.0])


def test_similarity_is_cosine_even_for_vectors_that_are_not_unit_length(server, index):
    server.reply("POST", "/plumb-chunks/_search", search_reply(raw_hit("c1", 12.5, [4.0, 3.0, 0.0, 0.0])))

    (hit,) = index.search("fire rating", QUERY_VECTOR * 10, 1, mode="keyword")

    assert hit.similarity == pytest.approx(0.96)


@pytest.mark.parametrize(
    ("k", "mode", "vector", "message"),
    [
        (0, "hybrid", QUERY_VECTOR, "k is 0"),
        (3, "semantic", QUERY_VECTOR, "'semantic'.*'dense', 'keyword' or 'hybrid'"),
        (3, "dense", np.ones(8, np.float32), "shape \\(8,\\).*4-wide"),
        (3, "dense", np.zeros(4, np.float32), "zero or not finite"),
    ],
)
def test_bad_search_arguments_are_refused_before_anything_is_sent(server, index, k, mode, vector, message):
    with pytest.raises(ValueError, match=message):
        index.search("q", vector, k, mode=mode)
    assert server.requests == []


def test_get_sends_one_multi_get_of_the_last_refresh_and_keeps_what_was_found(server, index):
    found = {**raw_hit("c2", 1.0, [0.0, 1.0, 0.0, 0.0], page=7, page_label="", section="Design › Loads"), "found": True}
    del found["_score"]
    server.reply("POST", "/plumb-chunks/_mget", (200, {"docs": [found, {"_index": INDEX, "_id": "gone", "found": False}]}))

    (got,) = index.get(["c2", "gone"])

    (sent,) = server.requests
    assert (sent.method, sent.path, sent.query, sent.body) == (
        "POST",
        "/plumb-chunks/_mget",
        {"realtime": "false"},
        {"ids": ["c2", "gone"]},
    )
    assert (got.chunk_id, got.source, got.page, got.section, got.text) == ("c2", "spec.pdf", 7, "Design › Loads", "text of c2")
    assert got.vector.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_get_of_no_ids_sends_nothing(server, index):
    assert index.get([]) == []
    assert server.requests == []


def test_sources_counts_chunks_per_document_with_a_terms_aggregation(server, index):
    buckets = [{"key": "a.pdf", "doc_count": 12}, {"key": "b.html", "doc_count": 3}]
    server.reply(
        "POST",
        "/plumb-chunks/_search",
        (200, {"hits": {"hits": []}, "aggregations": {"sources": {"buckets": buckets}}}),
    )

    assert index.sources() == {"a.pdf": 12, "b.html": 3}
    assert server.requests[0].body == {"size": 0, "aggs": {"sources": {"terms": {"field": "source", "size": 10000}}}}


def test_fingerprints_are_read_in_one_aggregation_and_kept_only_for_whole_documents(server, index):
    """A document's chunks carry "count:fingerprint"; one left part-written or mixed by a failed
    bulk request, or written without a fingerprint, has none, so the next ingest writes it again."""
    def bucket(source: str, count: int, *stamps: tuple[str, int]) -> dict:
        inner = [{"key": key, "doc_count": n} for key, n in stamps]
        return {"key": source, "doc_count": count, "stamps": {"buckets": inner}}

    buckets = [
        bucket("whole.pdf", 3, ("3:aa", 3)),
        bucket("part.pdf", 2, ("3:bb", 2)),
        bucket("mixed.pdf", 4, ("2:cc", 2), ("2:dd", 2)),
        bucket("some-unstamped.pdf", 3, ("2:ee", 2)),
        bucket("none.pdf", 3, ("3:", 3)),
        bucket("old.pdf", 2),
    ]
    server.reply(
        "POST",
        "/plumb-chunks/_search",
        (200, {"hits": {"hits": []}, "aggregations": {"sources": {"buckets": buckets}}}),
    )

    assert index.fingerprints() == {
        "whole.pdf": "aa",
        "part.pdf": "",
        "mixed.pdf": "",
        "some-unstamped.pdf": "",
        "none.pdf": "",
        "old.pdf": "",
    }
    assert server.requests[0].body == {
        "size": 0,
        "aggs": {
            "sources": {
                "terms": {"field": "source", "size": 10000},
                "aggs": {"stamps": {"terms": {"field": "fingerprint", "size": 2}}},
            }
        },
    }


def test_places_page_through_a_composite_aggregation_of_the_documents_named(server, index):
    """Chunks indexed before labels and sections were kept have neither: their place is ("", "")."""
    def places_reply(*keys: tuple, after: dict | None = None) -> Reply:
        fields = ("source", "page", "page_label", "section")
        buckets = [{"key": dict(zip(fields, key)), "doc_count": 1} for key in keys]
        result = {"buckets": buckets, **({"after_key": after} if after else {})}
        return 200, {"hits": {"hits": []}, "aggregations": {"places": result}}

    first_after = {"source": "a.pdf", "page": 2, "page_label": "ii", "section": ""}
    server.reply(
        "POST",
        "/plumb-chunks/_search",
        places_reply(("a.pdf", 1, "i", ""), ("a.pdf", 2, "ii", ""), after=first_after),
        places_reply(("b.md", 1, None, None), ("b.md", 1, "", "Design › Loads"), after={"source": "b.md"}),
        places_reply(),
    )

    assert index.places(["a.pdf", "b.md", "a.pdf"]) == {
        "a.pdf": Places(frozenset({(1, "i"), (2, "ii")}), frozenset({""})),
        "b.md": Places(frozenset({(1, "")}), frozenset({"", "Design › Loads"})),
    }
    keys = [
        {"source": {"terms": {"field": "source"}}},
        {"page": {"terms": {"field": "page"}}},
        {"page_label": {"terms": {"field": "page_label", "missing_bucket": True}}},
        {"section": {"terms": {"field": "section", "missing_bucket": True}}},
    ]
    query = {"terms": {"source": ["a.pdf", "b.md"]}}
    assert [r.body for r in server.requests] == [
        {"size": 0, "query": query, "aggs": {"places": {"composite": {"size": 1000, "sources": keys, **after}}}}
        for after in ({}, {"after": first_after}, {"after": {"source": "b.md"}})
    ]
    server.requests.clear()
    assert index.places([]) == {} and server.requests == []


def test_drop_deletes_index_template_and_pipeline_skipping_what_is_gone(server, index):
    server.reply("DELETE", "/plumb-chunks", error_reply(404, "index_not_found_exception", "no such index"))

    index.drop()

    assert [(r.method, r.path) for r in server.requests] == [
        ("DELETE", "/plumb-chunks"),
        ("DELETE", "/_index_template/plumb-chunks"),
        ("DELETE", "/_search/pipeline/plumb-chunks-hybrid"),
    ]


# --- failures and credentials ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_cluster_is_index_unavailable_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(IndexUnavailable, match=f"Cannot reach OpenSearch at {url}.*PLUMB_OPENSEARCH_URL"):
        OpenSearchIndex.from_settings(Settings(opensearch_url=url), DIM)


@pytest.mark.parametrize(
    ("operation", "doing"),
    [
        (lambda index: index.search("q", QUERY_VECTOR, 3), "searching"),
        (lambda index: index.replace_source("spec.pdf", [chunk("c1")]), "indexing 'spec.pdf'"),
        (lambda index: index.delete_source("spec.pdf"), "deleting 'spec.pdf'"),
        (lambda index: index.sources(), "listing documents"),
        (lambda index: index.fingerprints(), "listing documents"),
        (lambda index: index.get(["c1"]), "fetching chunks"),
    ],
)
def test_every_operation_on_a_cluster_that_went_away_fails_clearly(operation, doing):
    url = f"http://127.0.0.1:{free_port()}"
    index = OpenSearchIndex(OpenSearch(hosts=[url]), INDEX, DIM, url)

    with pytest.raises(IndexUnavailable, match=f"Cannot reach OpenSearch at {url} while {doing}"):
        operation(index)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (error_reply(401, "security_exception", "missing authentication"), "refused access.*PLUMB_OPENSEARCH_USER"),
        (error_reply(403, "security_exception", "no permissions"), "refused access.*IAM role"),
        (error_reply(404, "index_not_found_exception", "no such index [plumb-chunks]"), "plumb index init"),
        (error_reply(400, "parsing_exception", "unknown query [hybrid]"), "unknown query \\[hybrid\\]"),
    ],
)
def test_refusals_become_index_unavailable_saying_what_to_do(server, index, reply, message):
    server.reply("POST", "/plumb-chunks/_search", reply)

    with pytest.raises(IndexUnavailable, match=message):
        index.search("q", QUERY_VECTOR, 3)


def test_basic_auth_is_sent_when_a_user_is_set(server):
    create_index(server, opensearch_user="plumb", opensearch_password="s3cret").close()

    assert {r.headers.get("authorization") for r in server.requests} == {"Basic cGx1bWI6czNjcmV0"}


def test_no_credentials_are_sent_without_a_user(server):
    create_index(server).close()

    assert all("authorization" not in r.headers for r in server.requests)


AWS_DOMAIN = "https://vpc-plumb-abc123.eu-west-1.es.amazonaws.com"


def test_an_aws_domain_without_a_user_gets_sigv4_signed_requests(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    sign: Callable[..., dict[str, str]] = _http_auth(Settings(opensearch_url=AWS_DOMAIN, aws_region="eu-west-1"))

    headers = sign("POST", f"{AWS_DOMAIN}/plumb-chunks/_search", b"{}", {})

    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in headers["Authorization"]


def test_an_aws_domain_without_any_credentials_is_a_config_error(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(ConfigError, match="No AWS credentials.*PLUMB_OPENSEARCH_USER"):
        _http_auth(Settings(opensearch_url=AWS_DOMAIN))
