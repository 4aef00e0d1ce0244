"""The OpenAI path over real HTTP: a local OpenAI-compatible server started by the test."""

import json
from http.server import BaseHTTPRequestHandler

import pytest

from helpers import JSONHandlerBase, chat_completion, serve


class Handler(JSONHandlerBase, BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        text = "Suggest Options" if "Answer with exactly one of" in system else "Try a 25-minute study block today."
        self.send_json(200, chat_completion(body["model"], text))


@pytest.fixture
def server():
    Handler.requests = []
    srv, url = serve(Handler)
    yield url
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


def test_max_tokens_reaches_the_server_and_a_foreign_option_is_refused(cli, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    code, out, err = cli("reply", "I keep failing", "-m", "openai/test-model", "--api-base", server,
                         "--strategy", "Suggest Options", "--max-tokens", "7", "--json")
    assert code == 0, err
    body = Handler.requests[-1]["body"]
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 7
    code, out, err = cli("reply", "hi", "-m", "openai/test-model", "--api-base", server, "--adapter", ".")
    assert code == 2 and "--adapter does not apply to openai/test-model" in err and len(err.strip().splitlines()) == 1


def test_json_grammar_reaches_the_server_in_whole_mode(cli, server, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    code, out, err = cli("synthesize", "-m", "openai/test-model", "--api-base", server, "--mode", "whole",
                         "--target", "1", "--retries", "0", "--json-grammar", "--out", tmp_path / "run", "--quiet",
                         "--json")
    assert code == 0, err
    bodies = [r["body"] for r in Handler.requests]
    assert bodies and all(b.get("response_format") == {"type": "json_object"} for b in bodies)
    Handler.requests.clear()
    code, out, err = cli("synthesize", "-m", "openai/test-model", "--api-base", server, "--mode", "whole",
                         "--target", "1", "--retries", "0", "--out", tmp_path / "plain", "--quiet", "--json")
    assert code == 0, err
    assert Handler.requests and not any("response_format" in r["body"] for r in Handler.requests)


@pytest.mark.parametrize("args, needle", [
    (["-m", "scripted", "--mode", "turns"], "use it with --mode whole"),
    (["-m", "local/smollm2-135m-instruct", "--mode", "whole"], "has no JSON grammar"),
])
def test_json_grammar_where_it_cannot_apply_is_a_one_line_error(cli, tmp_path, args, needle):
    code, out, err = cli("synthesize", *args, "--target", "1", "--json-grammar", "--out", tmp_path / "run")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
