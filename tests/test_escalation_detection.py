"""Detection before answering: negative mood or a request for a person escalates; technical words
that VADER reads as negative ("failure", "fatal error", "critical load") do not."""

import json
from pathlib import Path

import pytest

from pipeline.chain import HELD, RagChain
from pipeline.escalation.detection import Detector
from pipeline.retriever import IndexRetriever

LABELLED = Path(__file__).resolve().parents[1] / "bench" / "eval" / "escalation-messages.jsonl"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(threshold=-0.5)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("What is the failure mode of the anchor bolts under critical load?", ""),
        ("How do I kill the process that holds the port?", ""),
        ("The log shows a fatal error at startup: what does code 137 mean?", ""),
        ("What are the dead load and live load values for the roof?", ""),
        ("Which clause covers the risk of progressive collapse?", ""),
        ("What severity level is a broken seal on the pressure vessel?", ""),
        ("This bot is garbage. Third time I ask and still nothing.", "negative"),
        ("Worst tool ever. I hate this.", "negative"),
        ("Stop wasting my time, this answer is terrible.", "negative"),
        ("I want to talk to a human.", "person"),
        ("Connect me to someone who actually knows the spec.", "person"),
        ("Human please.", "person"),
    ],
)
def test_negative_or_person_escalates_technical_does_not(detector: Detector, message: str, reason: str):
    assert detector.check(message).reason == reason


def test_the_stock_lexicon_would_have_escalated_technical_phrasing(detector: Detector):
    """Guards the tuning: without it, these technical questions read as strongly negative."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    stock = SentimentIntensityAnalyzer()
    message = "The job failed with a fatal error and we had to kill the process after the crash."
    assert stock.polarity_scores(message)["compound"] <= -0.5
    assert not detector.check(message).escalate


def test_threshold_is_the_setting():
    message = "The answer is a bit disappointing."
    score = Detector(-0.5).sentiment(message)
    assert -0.5 < score < 0
    assert not Detector(-0.5).check(message).escalate
    assert Detector(score).check(message).reason == "negative"


def test_labelled_set_precision_and_recall():
    """At least 60 technical-support messages of both kinds; bench/bench_escalation.py reports the figures."""
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 60 and {r["escalate"] for r in rows} == {True, False}
    detector = Detector(-0.5)
    hits = [(detector.check(r["text"]).escalate, r["escalate"]) for r in rows]
    true_pos = sum(p and t for p, t in hits)
    precision = true_pos / sum(p for p, _ in hits)
    recall = true_pos / sum(t for _, t in hits)
    assert precision >= 0.95 and recall >= 0.8


@pytest.mark.slow
def test_chain_stores_the_decision_and_holds_when_asked(sample_index, embedder, local_llm):
    retriever = IndexRetriever(index=sample_index, embedder=embedder, k=4)
    chain = RagChain(local_llm, retriever, "test-model", 0.3, detector=Detector(-0.5), hold_escalated=True)
    calm = chain.invoke("What is the basic design wind speed?")
    assert (calm.escalation, calm.generated) == ("", True)
    assert "detect" in calm.timings_ms
    angry = chain.invoke("This bot is garbage, I hate it. What is the basic design wind speed?")
    assert angry.escalation == "negative" and angry.sentiment <= -0.5
    assert angry.answer == HELD and not angry.generated
    assert angry.citations, "the passages are still retrieved for the expert"


@pytest.mark.slow
def test_the_expert_is_called_in_before_the_answer_is_generated(sample_index, embedder, local_llm):
    """The hook runs after retrieval and before the first piece of the answer, with the turn id the
    answer then has and the passages; a calm question never calls it."""
    retriever = IndexRetriever(index=sample_index, embedder=embedder, k=4)
    chain = RagChain(local_llm, retriever, "test-model", 0.3, detector=Detector(-0.5))
    events: list = []
    hook = lambda turn_id, reason, citations: events.append((turn_id, reason, len(citations)))  # noqa: E731
    stream = chain.stream("This bot is garbage, I hate it. What is the basic design wind speed?", on_escalate=hook)
    for _ in stream:
        events.append("piece")
    assert events[0] == (stream.answer.turn_id, "negative", 4) and events[1:] and set(events[1:]) == {"piece"}
    assert "escalate" in stream.answer.timings_ms and stream.answer.generated, "the bot still answers"
    calm = chain.stream("What is the basic design wind speed?", on_escalate=hook)
    assert list(calm) and len(events) == events.count("piece") + 1


@pytest.mark.slow
def test_llm_check_asks_for_a_structured_verdict_only_when_the_offline_checks_say_no(local_llm):
    """The packaged model answers under the verdict's JSON schema (xgrammar), so its reply always parses."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Calls(BaseCallbackHandler):
        def __init__(self) -> None:
            self.formats: list[dict] = []

        def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
            self.formats.append(kwargs["invocation_params"].get("response_format"))

    calls = Calls()
    detector = Detector(-0.5, llm=local_llm.with_config(callbacks=[calls]))
    assert detector.check("I want to talk to a human.").reason == "person"
    assert calls.formats == [], "a message the offline checks escalate costs no model call"
    decision = detector.check("How long must liquid-containing structures be wet cured?")
    assert decision.reason in ("", "llm")
    [sent] = calls.formats
    assert sent["json_schema"]["name"] == "EscalationVerdict"
    assert sent["json_schema"]["schema"]["properties"] == {"escalate": {"title": "Escalate", "type": "boolean"}}
