"""Escalations: created once per triggering turn through the never-lost path, and notifications to a
real local webhook receiver and to SNS on moto's server, retried until delivered, never doubled."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from pipeline.errors import ConfigError
from pipeline.escalation.notify import (
    Notifier,
    make_notifier,
    message_text,
    post_webhook,
    publish_sns,
    sns_body,
    webhook_body,
)
from pipeline.escalation.records import Escalation, escalation_for
from pipeline.escalation.storage import EscalationConflict
from pipeline.escalation.workflow import answer, escalate
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.feedback.local_dynamo import free_port
from pipeline.feedback.outbox import Outbox
from pipeline.feedback.resilient import ResilientStore, make_store
from pipeline.records import Citation, Turn
from pipeline.settings import Settings


def make_turn(i: int, question: str = "What is the frost depth?", session: str = "s1") -> Turn:
    return Turn(
        session_id=session, turn_id=f"t{i}", user="ann", question=question, condensed_question=question,
        answer=f"answer {i}", model_id="m", prompt_version="p",
        citations=[Citation(source="design-criteria.pdf", page=5, passage="Frost depth is 42 inches.", score=0.9)],
    )


class Receiver:
    """A real HTTP server on `port` that records every JSON body POSTed to it."""

    def __init__(self, port: int) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def webhook_notifier(tmp_path, port):
    notifier = Notifier(tmp_path / "notifications.sqlite3", {"webhook": (post_webhook(f"http://127.0.0.1:{port}/hook"), webhook_body)})
    yield notifier
    notifier.close()


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_negative_turn_escalates_once_after_retry_and_double_submit(dynamo_settings, dynamo_items, webhook_notifier, port):
    receiver = Receiver(port)
    store = make_store(dynamo_settings)
    earlier, turn = make_turn(1), make_turn(2, "This is garbage, I want a human.")
    for _ in range(3):  # the first call, a retry, a double submit
        escalate(store, webhook_notifier, turn, [earlier, turn], "person")
    webhook_notifier.deliver_due()
    webhook_notifier.deliver_due()
    items = dynamo_items("escalations")
    assert len(items) == 1
    assert items[0]["turn_id"]["S"] == "t2" and items[0]["status"]["S"] == "open"
    assert [t["M"]["question"]["S"] for t in items[0]["transcript"]["L"]] == ["What is the frost depth?", turn.question]
    assert len(receiver.bodies) == 1
    text = receiver.bodies[0]["text"]
    assert "Expert wanted: ann (person)" in text and "User: This is garbage, I want a human." in text
    assert "Sources: design-criteria.pdf – page 5" in text and "Bot: answer 1" in text
    receiver.stop()
    store.close()


def test_escalation_waits_in_the_outbox_while_dynamo_is_down_and_is_stored_once(tmp_path, dynamo_settings, dynamo_items):
    down = Settings(dynamodb_endpoint=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path / "data")
    outbox_file = tmp_path / "data" / "outbox.sqlite3"
    offline = ResilientStore(DynamoFeedbackStore(down), Outbox(outbox_file), retry_seconds=3600)
    escalation_turn = make_turn(1, "I hate this, terrible answers.")
    saved = offline.save_escalation(Escalation(session_id="s1", turn_id="t1", user="ann", reason="negative",
                                               question=escalation_turn.question, transcript=[]))
    assert saved.queued
    offline.save_escalation(saved.record)  # a second submit while down: queued again, still stored once
    offline.close()
    online = ResilientStore(DynamoFeedbackStore(dynamo_settings), Outbox(outbox_file))
    online.drain()
    online.drain()
    assert len(dynamo_items("escalations")) == 1
    assert online.pending() == 0
    online.close()


def test_receiver_down_then_back_gets_each_notification_once(webhook_notifier, port):
    escalations = [Escalation(session_id="s", turn_id=f"t{i}", user="ann", reason="negative", question=f"q{i}",
                              transcript=[]) for i in range(3)]
    for escalation in escalations:
        webhook_notifier.enqueue(escalation)
    assert webhook_notifier.deliver_due() == 0  # nothing listens yet
    pending = webhook_notifier.pending()
    assert [(p.attempts, p.channel) for p in pending] == [(1, "webhook")] * 3
    assert "Connection refused" in pending[0].last_error or "URLError" in pending[0].last_error
    assert webhook_notifier.deliver_due() == 0, "not due again before the back-off"
    receiver = Receiver(port)
    started = time.monotonic()
    webhook_notifier.start()
    wait_for(lambda: not webhook_notifier.pending())
    assert time.monotonic() - started < 10
    webhook_notifier.enqueue(escalations[0])  # already delivered: not sent again
    time.sleep(0.3)
    assert sorted(body["text"].split(",")[1].split()[-1] for body in receiver.bodies) == ["t0.", "t1.", "t2."]
    assert len(receiver.bodies) == 3
    receiver.stop()


def test_a_failing_receiver_is_retried_with_backoff_and_listed(tmp_path):
    calls: list[float] = []

    def refuse(body: str) -> None:
        calls.append(time.monotonic())
        raise OSError("HTTP 503 from the receiver")

    notifier = Notifier(tmp_path / "n.sqlite3", {"webhook": (refuse, webhook_body)})
    notifier.enqueue(Escalation(session_id="s", turn_id="t", user="ann", reason="negative", question="q", transcript=[]))
    notifier.start()
    wait_for(lambda: len(calls) >= 3, timeout=15)
    notifier.close()
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert 1.9 < gaps[0] < 3 and 3.9 < gaps[1] < 5.5  # 2 s, then 4 s
    reopened = Notifier(tmp_path / "n.sqlite3", {})
    [pending] = reopened.pending()
    assert pending.attempts >= 3 and pending.last_error == "OSError: HTTP 503 from the receiver"
    reopened.close()


@pytest.mark.parametrize("url", ["hooks.slack.com/services/T0/B0/x", "ftp://example.org/hook", "https://"])
def test_a_webhook_url_that_cannot_be_sent_to_is_refused_at_start(url, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, escalation_webhook_url=url)
    with pytest.raises(ConfigError, match="PLUMB_ESCALATION_WEBHOOK_URL .* is not an http\\(s\\) address"):
        make_notifier(settings)
    make_notifier(settings.model_copy(update={"escalation_webhook_url": "http://127.0.0.1:9/hook"})).close()


def test_sns_publishes_the_transcript_on_moto(s3_server, monkeypatch, tmp_path):
    for name, value in {"AWS_ENDPOINT_URL_SNS": s3_server, "AWS_ENDPOINT_URL_SQS": s3_server,
                        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="plumb-experts")["TopicArn"]
    queue = sqs.create_queue(QueueName="experts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    escalation = Escalation(session_id="s", turn_id="t9", user="ann", reason="negative",
                            question="Why is this so bad?", transcript=[])
    notifier = Notifier(tmp_path / "n.sqlite3", {"sns": (publish_sns(topic, "us-east-1"), sns_body)})
    notifier.enqueue(escalation)
    assert notifier.deliver_due() == 1
    notifier.close()
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["TopicArn"] == topic
    assert envelope["Subject"] == "Plumbline: expert wanted (negative)"
    assert envelope["Message"] == message_text(escalation)
    assert envelope["Message"] == "Expert wanted: ann (negative) in conversation s, turn t9."


def test_expert_claims_and_answers_into_the_conversation(dynamo_settings):
    store = make_store(dynamo_settings)
    turn = make_turn(1, "Useless. I need an engineer.")
    store.save_turn(turn)
    escalation = store.save_escalation(escalation_for(turn, [turn], "person")).record
    with pytest.raises(EscalationConflict, match="only the expert who claimed it"):
        answer(store, escalation, "dana", "Frost depth is 42 inches.")
    claimed = store.escalations.claim("s1", "t1", "dana")
    assert (claimed.status, claimed.claimed_by) == ("claimed", "dana") and claimed.claimed_at
    with pytest.raises(EscalationConflict, match="not open any more"):
        store.escalations.claim("s1", "t1", "erik")
    with pytest.raises(EscalationConflict, match="only the expert who claimed it"):
        answer(store, escalation, "erik", "Something else.")
    answered = answer(store, escalation, "dana", "  Frost depth is 42 inches (design criteria, page 5).  ")
    assert answered.status == "answered" and answered.answer == "Frost depth is 42 inches (design criteria, page 5)."
    turns = store.session_turns("s1")
    assert [t.expert for t in turns] == ["", "dana"]
    assert turns[1].turn_id == answered.answer_turn_id and turns[1].user == "ann"
    assert turns[1].answer == answered.answer and turns[1].citations == turn.citations
    store.close()


def test_two_experts_claiming_at_once_leave_one_claim(dynamo_settings):
    store = make_store(dynamo_settings)
    turn = make_turn(2, "This is useless, get me a person.")
    store.save_escalation(escalation_for(turn, [], "person"))
    start, outcomes = threading.Barrier(2), {}

    def claim(expert: str) -> None:
        start.wait()
        try:
            outcomes[expert] = store.escalations.claim(turn.session_id, turn.turn_id, expert).claimed_by
        except EscalationConflict as exc:
            outcomes[expert] = str(exc)

    threads = [threading.Thread(target=claim, args=(name,)) for name in ("dana", "erik")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [winner] = [name for name, outcome in outcomes.items() if outcome == name]
    [loser] = [outcome for name, outcome in outcomes.items() if name != winner]
    assert "not open any more: another expert may have claimed it" in loser
    assert store.escalations.get(turn.session_id, turn.turn_id).claimed_by == winner
    store.close()
