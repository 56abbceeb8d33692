"""MLflow tracing of the chain's steps: one trace per sampled turn, tagged with its turn id, with a
span for each step (condense, retrieve with its hits and scores, generate with its prompt, tokens
and latency) at the times the chain measured.

The trace is written once the answer is complete, from the timings the chain keeps anyway, so no
span is open while the answer streams (the stream may be read from another thread or context than
the one that started it) and the answer never waits on the tracking store mid-way. With
`PLUMB_TRACE_SAMPLE_RATE` 0 (the default) the chain has no tracer: MLflow is not imported and no
trace store is touched.
"""

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.prompts import Message
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.chain import Answer

log = logging.getLogger(__name__)

EXPERIMENT = "plumb-traces"
TURN_TAG = "plumb.turn_id"


class ChainTracer:
    """Records sampled turns as MLflow traces in the experiment `plumb-traces`."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_location: str | None,
        sample_rate: float,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """`artifact_location`: where a new `plumb-traces` experiment keeps the traces' payloads
        (None: the tracking server decides)."""
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        experiment = mlflow.get_experiment_by_name(EXPERIMENT)
        self.experiment_id = (
            experiment.experiment_id if experiment else mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location)
        )
        self.sample_rate = sample_rate
        self.draw = draw

    def sampled(self) -> bool:
        """Whether this turn is traced: a share `sample_rate` of turns, drawn at random."""
        return self.draw() < self.sample_rate

    def record(self, answer: "Answer", marks: dict[str, int], prompt: list[Message] | None, usage: dict[str, dict]) -> str | None:
        """Write one turn's trace; returns its trace id, None when the tracking store refused it
        (logged: a lost trace must never cost the user the answer). `marks` are the wall-clock
        nanoseconds at the start and at the end of each step (`_Clock.marks`); `prompt` is None when
        no model was asked (the "not covered" answer); `usage` holds each step's token usage."""
        try:
            return self._record(answer, marks, prompt, usage)
        except Exception:  # the tracking store is a side channel: whatever fails there, the answer stands
            log.warning("The trace of turn %s could not be recorded.", answer.turn_id, exc_info=True)
            return None

    def _record(self, answer: "Answer", marks: dict[str, int], prompt: list[Message] | None, usage: dict[str, dict]) -> str:
        import mlflow

        root = mlflow.start_span_no_context(
            "turn",
            span_type="CHAIN",
            inputs={"question": answer.question, "history": answer.history},
            attributes={"turn_id": answer.turn_id, "model_id": answer.model_id, "prompt_version": answer.prompt_version},
            tags={TURN_TAG: answer.turn_id},
            experiment_id=self.experiment_id,
            start_time_ns=marks["start"],
        )
        condense = usage.get("condense", {})
        self._step(root, "condense", "CHAIN", marks["start"], marks["condense"],
                   {"question": answer.question, "history": answer.history}, {"condensed_question": answer.condensed_question},
                   {"rewritten": answer.condensed_question != answer.question,
                    "input_tokens": condense.get("input_tokens", 0), "output_tokens": condense.get("output_tokens", 0)})
        hits = [{"label": c.label(), "chunk_id": c.chunk_id, "score": c.score} for c in answer.citations]
        self._step(root, "retrieve", "RETRIEVER", marks["condense"], marks["retrieve"],
                   {"query": answer.condensed_question}, hits, {"hits": len(hits)})
        if prompt is not None:
            generate = usage.get("generate", {})
            first_token = marks.get("first_token", marks["generate"])
            self._step(root, "generate", "CHAT_MODEL", marks["retrieve"], marks["generate"],
                       {"messages": prompt}, {"answer": answer.answer},
                       {"model_id": answer.model_id, "input_tokens": generate.get("input_tokens", 0),
                        "output_tokens": generate.get("output_tokens", 0),
                        "first_token_ms": round((first_token - marks["retrieve"]) / 1e6, 2)})
        root.end(outputs={"answer": answer.answer, "not_covered": answer.not_covered}, end_time_ns=marks["end"])
        return root.trace_id

    @staticmethod
    def _step(root, name: str, kind: str, start: int, end: int, inputs, outputs, attributes: dict) -> None:
        import mlflow

        span = mlflow.start_span_no_context(name, span_type=kind, parent_span=root, inputs=inputs, start_time_ns=start)
        span.end(outputs=outputs, attributes={**attributes, "latency_ms": round((end - start) / 1e6, 2)}, end_time_ns=end)


def make_tracer(settings: Settings) -> ChainTracer | None:
    """The tracer when PLUMB_TRACE_SAMPLE_RATE is above 0, else None (tracing off, MLflow never imported)."""
    if settings.trace_sample_rate <= 0:
        return None
    from pipeline.tracking import artifact_location

    return ChainTracer(settings.mlflow_uri, artifact_location(settings), settings.trace_sample_rate)
