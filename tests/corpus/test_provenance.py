"""Credentials inside URLs never reach a manifest, a log or a message: one helper, used wherever a URL is recorded."""

import json
import socket
import threading

from extes.corpus.provenance import recorded_argv, redact


def test_redact_userinfo_and_secret_query_parameters():
    assert redact("http://user:secret@host:8000/v1") == "http://***@host:8000/v1"
    assert redact("https://token@host/v1") == "https://***@host/v1"
    assert redact("http://h/v1?api_key=sk-123&x=1&token=t0k") == "http://h/v1?api_key=***&x=1&token=***"
    assert redact("--api-base=http://a:b@h/v1") == "--api-base=http://***@h/v1"
    assert redact("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"  # nothing secret: unchanged
    assert redact("me@example.com wrote") == "me@example.com wrote"  # not a URL
    assert redact({"a": ["http://u:p@h"], "n": 3}) == {"a": ["http://***@h"], "n": 3}


def test_recorded_argv_drops_key_arguments_and_redacts_urls():
    argv = ["extes", "synthesize", "--api-key=sk-x", "--api-base", "http://u:pw@h/v1?key=abc"]
    assert recorded_argv(argv) == ["extes", "synthesize", "--api-base", "http://***@h/v1?key=***"]


def test_synthesis_manifest_has_no_password(cli, tmp_path):
    # A server that accepts and hangs up: the run starts (manifest written), then stops in one line, resumable.
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        threading.Thread(target=lambda: [server.accept()[0].close() for _ in range(50)], daemon=True).start()
        run = tmp_path / "run"
        code, _, err = cli("synthesize", "-m", "openai/gpt-4o-mini", "--target", "1", "--out", run, "--retries", "0",
                           "--api-base", f"http://me:hunter2@127.0.0.1:{port}/v1?api_key=sk-abc")
    assert code == 2 and "hunter2" not in err and "sk-abc" not in err
    text = (run / "manifest.json").read_text()
    assert "hunter2" not in text and "sk-abc" not in text
    assert json.loads(text)["config"]["api_base"] == f"http://***@127.0.0.1:{port}/v1?api_key=***"
