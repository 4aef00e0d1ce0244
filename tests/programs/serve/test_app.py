"""The HTTP API of `extes serve` (programs/serve/app.py) over a real loopback server, with the scripted LM."""

import json

import dspy
import httpx
import pytest

from extes.programs.lm.scripted import ScriptedLM
from extes.programs.safety import SafetyChecker, escalation_message
from extes.programs.serve.app import create_app
from extes.programs.serve.engine import Engine

CRISIS = "I have a plan to kill myself tonight and I picked the place."


@pytest.fixture
def lm():
    return ScriptedLM()


@pytest.fixture
def server(serve, lm):
    engine = Engine({"scripted": lm, "other": ScriptedLM(["A fixed reply."])}, checker=SafetyChecker(rules_only=True))
    return serve(create_app(engine))


def test_models_health_and_page(server):
    models = httpx.get(server.url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["scripted", "other"]
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "<title>extes chat</title>" in page.text
    assert len(httpx.get(server.url + "/v1/strategies").json()["data"]) == 16


def test_openai_client_plain_and_streamed(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    msgs = [{"role": "user", "content": "I failed my exam again"}]
    out = client.chat.completions.create(model="scripted", messages=msgs, max_tokens=40)
    text = out.choices[0].message.content
    assert "failed my exam again" in text and out.usage.completion_tokens > 0 and out.choices[0].finish_reason
    pieces = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(model="scripted", messages=msgs, stream=True) if c.choices]
    assert "".join(pieces) == text
    other = client.chat.completions.create(model="other", messages=msgs)
    assert other.choices[0].message.content == "A fixed reply."
    several = client.chat.completions.create(model="other", messages=msgs, n=2)
    assert len(several.choices) == 2


def test_dspy_lm_client_talks_to_the_server(server):
    lm = dspy.LM("openai/scripted", api_base=server.url + "/v1", api_key="unused", cache=False)
    out = lm(messages=[{"role": "user", "content": "My dog died last week"}])
    assert "dog died last week" in out[0]


def test_supporter_mode_returns_the_strategy(server):
    body = {"model": "scripted", "messages": [{"role": "user", "content": "What should I do about my boss?"}],
            "extes": {"supporter": True}}
    out = httpx.post(server.url + "/v1/chat/completions", json=body).json()
    assert out["extes"]["strategy"] == "Suggest Options" and out["choices"][0]["message"]["content"]
    body["extes"] = {"strategy": "RS"}
    forced = httpx.post(server.url + "/v1/chat/completions", json=body).json()
    assert forced["extes"]["strategy"] == "Reflective Statements" and forced["extes"]["strategy_forced"]
    body["stream"] = True
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body) as r:
        events = [json.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]
    assert events[0]["extes"]["strategy"] == "Reflective Statements"
    assert events[-1]["choices"][0]["finish_reason"] == "stop" and events[-1]["usage"]["completion_tokens"] > 0


def test_a_crisis_gets_the_escalation_message_and_no_model_call(server, lm, caplog):
    calls = lm.calls
    for stream in (False, True):
        body = {"model": "scripted", "stream": stream, "extes": {"supporter": True},
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."},
                             {"role": "user", "content": CRISIS}]}
        r = httpx.post(server.url + "/v1/chat/completions", json=body)
        if stream:
            events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
            text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
            assert events[0]["extes"]["crisis"] is True
        else:
            text = r.json()["choices"][0]["message"]["content"]
            assert r.json()["extes"]["crisis"] is True and r.json()["extes"]["category"] == "suicide"
        assert text == escalation_message()
    assert lm.calls == calls
    assert "crisis event" in caplog.text and "picked the place" not in caplog.text  # logged, without the message text


def test_the_crisis_layer_reads_the_conversation(server, lm):
    """A yes to the supporter's risk question is a crisis only in its conversation (the context rules, as in
    `extes chat`): the server hands the turns before the last user message to the checker."""
    calls = lm.calls
    asked = [{"role": "user", "content": "everything feels pointless lately"},
             {"role": "assistant", "content": "I'm sorry. Are you thinking of ending your life?"}]
    body = {"model": "scripted", "messages": [*asked, {"role": "user", "content": "yes, most nights"}]}
    r = httpx.post(server.url + "/v1/chat/completions", json=body)
    assert r.json()["extes"]["crisis"] is True and r.json()["extes"]["source"] == "context"
    assert r.json()["choices"][0]["message"]["content"] == escalation_message()
    assert lm.calls == calls
    alone = httpx.post(server.url + "/v1/chat/completions",
                       json={"model": "scripted", "messages": [{"role": "user", "content": "yes, most nights"}]})
    assert alone.json()["extes"]["crisis"] is False


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "invalid_json"),
    (b'{"messages": []}', 400, "invalid_value"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "model": "nope"}', 404, "model_not_found"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 7}', 400, "invalid_value"),
    (json.dumps({"messages": [{"role": "user", "content": "x" * 100_000}]}).encode(), 400, "invalid_value"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "extes": {"strategy": "Shouting"}}', 400, "invalid_value"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "stream": true, "n": 2}', 400, "invalid_value"),
    (b"[" + b"1," * 600_000 + b"1]", 413, "body_too_large"),
])
def test_bad_requests_get_a_4xx_json_error(server, body, status, code):
    r = httpx.post(server.url + "/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status and r.json()["error"]["code"] == code and r.json()["error"]["message"]


def test_api_key_is_required_when_set(serve, lm):
    server = serve(create_app(Engine({"scripted": lm}, checker=SafetyChecker(rules_only=True)), api_key="s3cret"))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(server.url + "/v1/chat/completions", json=body).status_code == 401
    bad = httpx.post(server.url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "s3cret" not in bad.text
    ok = httpx.post(server.url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert httpx.get(server.url + "/health").status_code == 200  # the page and health stay open
