"""MLflow tracing of the chain: on, a turn gives one trace tagged with its turn id with the three
steps and their attributes; off, no trace store is touched; sampling."""

import itertools
from pathlib import Path

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from pipeline.chain import RagChain
from pipeline.records import Turn
from pipeline.retriever import IndexRetriever
from pipeline.settings import Settings, get_settings
from pipeline.tracing import TURN_TAG, ChainTracer, make_tracer
from pipeline.tracking import artifact_location

REWRITE = "What is the basic design wind speed for the roof?"
ANSWER = "The basic design wind speed is 120 mph [1]."


def fake_llm() -> GenericFakeChatModel:
    replies = [AIMessage(content=REWRITE), AIMessage(content=ANSWER)]
    return GenericFakeChatModel(messages=itertools.cycle(replies))


def test_a_traced_turn_gives_one_trace_with_its_steps_tagged_with_the_turn_id(sample_index, embedder):
    import mlflow

    settings = get_settings()
    tracer = ChainTracer(settings.mlflow_uri, artifact_location(settings), sample_rate=1.0)
    retriever = IndexRetriever(index=sample_index, embedder=embedder, k=2)
    chain = RagChain(fake_llm(), retriever, model_id="fake", min_relevance=0.3, tracer=tracer)
    history = [("What is the design wind speed?", "120 mph.")]
    answer = chain.invoke("And for the roof?", history)
    turn = Turn(session_id="s", user="ann", **answer.model_dump())
    assert turn.turn_id == answer.turn_id  # the app stores the turn under the id its trace carries

    traces = mlflow.search_traces(
        locations=[tracer.experiment_id], filter_string=f"tags.`{TURN_TAG}` = '{answer.turn_id}'", return_type="list", flush=True
    )
    assert len(traces) == 1
    assert not (Path.cwd() / "mlruns").exists()  # the traces stay in the data folder's store (its SQLite file)
    spans = {span.name: span for span in traces[0].data.spans}
    assert set(spans) == {"turn", "condense", "retrieve", "generate"}
    assert all(spans[name].parent_id == spans["turn"].span_id for name in ("condense", "retrieve", "generate"))
    condense, retrieve, generate = spans["condense"], spans["retrieve"], spans["generate"]
    assert condense.outputs == {"condensed_question": REWRITE} and condense.attributes["rewritten"] is True
    assert retrieve.inputs == {"query": REWRITE}
    assert [hit["chunk_id"] for hit in retrieve.outputs] == [c.chunk_id for c in answer.citations]
    assert all(hit["score"] == c.score and hit["label"] == c.label() for hit, c in zip(retrieve.outputs, answer.citations))
    assert generate.inputs["messages"][-1]["content"].endswith("Question: And for the roof?")
    assert generate.outputs == {"answer": ANSWER} and generate.attributes["model_id"] == "fake"
    assert {"input_tokens", "output_tokens", "latency_ms", "first_token_ms"} <= set(generate.attributes)
    # the spans follow one another at the times the chain measured
    assert condense.start_time_ns <= condense.end_time_ns <= retrieve.start_time_ns <= retrieve.end_time_ns
    assert retrieve.end_time_ns <= generate.start_time_ns <= generate.end_time_ns <= spans["turn"].end_time_ns
    assert abs(retrieve.attributes["latency_ms"] - answer.timings_ms["retrieve"]) < 5


def test_with_tracing_off_no_trace_store_is_touched(sample_index, embedder):
    settings = get_settings()
    assert settings.trace_sample_rate == 0 and make_tracer(settings) is None
    chain = RagChain(fake_llm(), IndexRetriever(index=sample_index, embedder=embedder, k=2), "fake", 0.3, tracer=make_tracer(settings))
    chain.invoke("What is the basic design wind speed?")
    assert not (settings.data_dir / "mlflow.db").exists() and not (settings.data_dir / "mlruns").exists()


def test_only_the_sampled_share_of_turns_is_traced(tmp_path):
    draws = iter([0.1, 0.7, 0.49])
    settings = Settings(data_dir=tmp_path)
    tracer = ChainTracer(settings.mlflow_uri, None, sample_rate=0.5, draw=lambda: next(draws))
    assert [tracer.sampled() for _ in range(3)] == [True, False, True]
