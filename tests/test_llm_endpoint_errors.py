"""Each way an OpenAI-compatible endpoint fails reaches the user as one sentence (a real local HTTP
server answering as vLLM does when it fails)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import HumanMessage

from pipeline.errors import ModelUnavailable
from pipeline.llm import make_llm
from tests.test_llm_openai import openai_settings

CONTEXT = "This model's maximum context length is 2048 tokens. However, you requested 3100 tokens."
REPLIES = {
    "/busy/v1/chat/completions": (429, {"error": {"message": "Too many requests", "type": "rate_limit"}}),
    "/broken/v1/chat/completions": (500, {"error": {"message": "CUDA out of memory", "type": "internal"}}),
    "/long/v1/chat/completions": (400, {"error": {"message": CONTEXT, "type": "BadRequestError"}}),
}


class Endpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.startswith("/slow/"):
            time.sleep(2)
        status, body = REPLIES.get(self.path, (200, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:  # the slow reply's client has given up
            pass

    def do_GET(self) -> None:
        """The model list, as `check_llm` asks for it."""
        data = json.dumps({"object": "list", "data": [{"id": "served-model", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("busy", "is busy (too many requests): wait a moment and ask again."),
        ("broken", "failed on its side (HTTP 500): ask again"),
        ("long", "longer than the model reads: start a new conversation or ask a shorter question."),
        ("slow", "took longer than PLUMB_LLM_TIMEOUT to answer"),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
def test_a_failing_endpoint_is_one_clear_sentence(endpoint, path, message, streaming):
    llm = make_llm(openai_settings(llm_base_url=f"{endpoint}/{path}/v1", llm_timeout=0.5))
    with pytest.raises(ModelUnavailable) as raised:
        if streaming:
            list(llm.stream([HumanMessage("Wind speed?")]))
        else:
            llm.invoke([HumanMessage("Wind speed?")])
    assert message in str(raised.value) and "\n" not in str(raised.value)
