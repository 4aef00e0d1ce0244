"""The OpenAI path over real HTTP: a local OpenAI-compatible server started by the test."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Handler(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        text = "Suggest Options" if "Answer with exactly one of" in system else "Try a 25-minute study block today."
        payload = {
            "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Handler.requests = []
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()


def test_reply_over_http(cli, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    code, out, err = cli("reply", "I keep failing my exams", "-m", "openai/test-model", "--api-base", server, "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["strategy"] == "Suggest Options" and obj["reply"] == "Try a 25-minute study block today."
    assert len(Handler.requests) == 2 and all(r["path"].endswith("/chat/completions") for r in Handler.requests)
    assert Handler.requests[0]["body"]["model"] == "test-model"
    assert Handler.requests[0]["auth"] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in out + err


def test_missing_key_is_a_one_line_error(cli, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out, err = cli("reply", "hi", "-m", "openai/gpt-4o-mini")
    assert code == 2 and "OPENAI_API_KEY" in err and len(err.strip().splitlines()) == 1
