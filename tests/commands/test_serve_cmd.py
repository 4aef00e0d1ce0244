"""`extes serve` as a process: `extes reply -m openai/...` against it end to end, SIGTERM drains, bad options."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

EXTES = str(Path(sys.executable).with_name("extes"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str, timeout: float = 120):
    port = _port()
    proc = subprocess.Popen([EXTES, "serve", "--port", str(port), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "EXTES_API_KEY": ""})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"extes serve exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("extes serve did not come up")


def test_extes_reply_against_extes_serve_and_sigterm_drains():
    proc, url = start("-m", "scripted@1.5")
    try:
        out = subprocess.run([EXTES, "reply", "I failed my exam again, what should I do?", "-m", "openai/scripted",
                              "--api-base", url + "/v1", "--json"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert got["strategy"] == "Suggest Options" and "failed my exam again" in got["reply"]

        result = {}

        def slow():  # in flight when SIGTERM arrives: it must still be answered
            body = {"messages": [{"role": "user", "content": "a slow one"}]}
            result["r"] = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"].status_code == 200 and "slow one" in result["r"].json()["choices"][0]["message"]["content"]
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("args, needle", [
    (["--adapter", "nofolder"], "write NAME=DIR"),
    (["--adapter", "a=/no/such/dir"], "no such folder"),
    (["--port", "0"], "--port 0"),
    (["-m", "scripted", "--adapter", "a=."], "needs a local/ base model"),
    (["-m", "scripted", "--no-prefix-reuse"], "--no-prefix-reuse applies to llama.cpp's batcher"),
])
def test_bad_options_are_one_line_errors(cli, args, needle):
    code, _, err = cli("serve", *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


@pytest.mark.model
def test_the_llamacpp_engine_answers_the_openai_client_plain_and_streamed():
    pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed (pip install 'extes[llamacpp]')")
    from openai import OpenAI

    proc, url = start("--engine", "llamacpp", "--max-tokens", "12", timeout=300)
    try:
        health = httpx.get(url + "/health", timeout=10).json()
        assert health["models"] == ["smollm2-135m-instruct"]
        client = OpenAI(base_url=url + "/v1", api_key="unused")
        msgs = [{"role": "user", "content": "I failed my exam again and I feel worthless."}]
        plain = client.chat.completions.create(model="smollm2-135m-instruct", messages=msgs, max_tokens=12)
        text = plain.choices[0].message.content
        assert text and 0 < plain.usage.completion_tokens <= 12 and plain.usage.prompt_tokens > 10
        chunks = list(client.chat.completions.create(model="smollm2-135m-instruct", messages=msgs, max_tokens=12,
                                                     stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == text
        assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
        batch = httpx.get(url + "/health", timeout=10).json()["batch"]["smollm2-135m-instruct"]
        assert batch["steps"] > 0  # it went through llama.cpp's batcher, not the torch loop
        assert batch["prefix_reuse"] is True and batch["prompt_tokens_reused"] > 0  # the stream repeated the prompt
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


@pytest.mark.model
def test_no_prefix_reuse_prefills_every_prompt_whole():
    pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed (pip install 'extes[llamacpp]')")
    proc, url = start("--engine", "llamacpp", "--max-tokens", "8", "--no-prefix-reuse", timeout=300)
    try:
        body = {"model": "smollm2-135m-instruct", "max_tokens": 8,
                "messages": [{"role": "user", "content": "My sister stopped talking to me and I don't know why."}]}
        first, second = (httpx.post(url + "/v1/chat/completions", json=body, timeout=120).json() for _ in range(2))
        assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
        batch = httpx.get(url + "/health", timeout=10).json()["batch"]["smollm2-135m-instruct"]
        assert batch["prefix_reuse"] is False and batch["prompt_tokens_reused"] == 0
        assert batch["prompt_tokens_computed"] == first["usage"]["prompt_tokens"] + second["usage"]["prompt_tokens"]
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


def test_engine_llamacpp_refuses_what_it_cannot_serve(cli):
    code, _, err = cli("serve", "-m", "scripted", "--engine", "llamacpp")
    assert code == 2 and "--engine llamacpp serves an embedded local/ model" in err
