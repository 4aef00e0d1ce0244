"""A local OpenAI-compatible server returning realistic whole dialogues plus injected faults: every fault ends with
the right reason code and the run completes."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from extes.corpus.formats.extes_json import dialogue_to_record
from extes.corpus.seeds import read_seed_folder
from extes.programs.lm.scripted_dialogues import compose_record
from helpers import JSONHandlerBase, chat_completion, serve

FAULTS = {
    "Academic Stress": "ok",
    "Anxiety and Panic": "malformed",
    "Caregiver Support": "wrong_scene",
    "Career Transitions": "duplicate",
    "Spirituality and Faith": "429",
    "Managing Bipolar Disorder": "500",
    "LGBTQ+ Identity": "timeout",
    "Healing from Abuse": "demo_copy",
}


class Handler(JSONHandlerBase, BaseHTTPRequestHandler):
    counter = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
        asked = body["messages"][0]["content"] + "\n" + body["messages"][-1]["content"]
        scene = next(s for s in FAULTS if f"Scene: {s}\n" in asked)
        fault = FAULTS[scene]
        with Handler.lock:
            Handler.counter += 1
            n = Handler.counter
        if fault == "429":
            return self.send_json(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}})
        if fault == "500":
            return self.send_json(500, {"error": {"message": "internal error", "type": "server_error"}})
        if fault == "timeout":  # far past the client's --timeout, so a slow (busy) machine cannot blur the two
            time.sleep(8)
            return self.send_json(200, chat_completion(body["model"], "{}", 1200, 700))
        if fault == "malformed":
            content = '{"scene": "Anxiety and Panic", "description": "cut off'
        elif fault == "wrong_scene":
            content = json.dumps(compose_record("Breakups or Divorce", n))
        elif fault == "duplicate":
            content = json.dumps(compose_record("Career Transitions", 7))  # the same dialogue every time
        elif fault == "demo_copy":
            seeds = read_seed_folder()
            seed = next(d for d in seeds if d.scene == "Healing from Abuse" and d.description in text)
            content = json.dumps(dialogue_to_record(seed, with_id=False))
        else:
            content = json.dumps(compose_record(scene, 1000 + n))
        self.send_json(200, chat_completion(body["model"], "Here is the dialogue:\n" + content, 1200, 700))


@pytest.fixture
def server():
    srv, url = serve(Handler)
    yield url
    srv.shutdown()


def test_every_fault_gets_its_reason_code(cli, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    run = tmp_path / "run"
    code, out, err = cli("synthesize", "-m", "openai/gpt-4o-mini", "--api-base", server, "--target", "4",
                         "--workers", "8", "--retries", "1", "--backoff", "0.05", "--timeout", "3",
                         "--scenes", ";".join(FAULTS),
                         "--out", run, "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["accepted"] == 4 and s["cost_usd"] > 0
    reasons = {}
    for name in ("rejected", "failed"):
        for line in (run / f"{name}.jsonl").read_text().splitlines():
            r = json.loads(line)
            reasons.setdefault(r["scene"], set()).update(r["reasons"])
    assert "parse" in reasons["Anxiety and Panic"]
    assert "wrong_scene" in reasons["Caregiver Support"]
    assert "rate_limit" in reasons["Spirituality and Faith"]
    assert "server_error" in reasons["Managing Bipolar Disorder"]
    assert "timeout" in reasons["LGBTQ+ Identity"]
    assert "demo_copy" in reasons["Healing from Abuse"]
    accepted_scenes = [json.loads(x)["scene"] for x in (run / "accepted.jsonl").read_text().splitlines()]
    assert set(accepted_scenes) <= {"Academic Stress", "Career Transitions"}
    assert accepted_scenes.count("Career Transitions") <= 1  # the rest are near-duplicates of it
    if "Career Transitions" in reasons:
        assert reasons["Career Transitions"] <= {"near_duplicate", "demo_copy", "surplus"}
    manifest = (run / "manifest.json").read_text()
    assert "sk-test" not in manifest and "sk-test" not in out + err


class RedrawHandler(JSONHandlerBase, BaseHTTPRequestHandler):
    """Writes the seed demo out again unless asked hotter than 1.0 (Healing from Abuse); a dialogue of another scene
    than asked (Caregiver Support) whatever the temperature."""
    temperatures: dict = {}
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
        asked = body["messages"][0]["content"] + "\n" + body["messages"][-1]["content"]
        scene = next(s for s in ("Healing from Abuse", "Caregiver Support") if f"Scene: {s}\n" in asked)
        temperature = float(body.get("temperature", 1.0))
        with RedrawHandler.lock:
            RedrawHandler.temperatures.setdefault(scene, []).append(temperature)
        if scene == "Caregiver Support":
            content = json.dumps(compose_record("Breakups or Divorce", 3))
        elif temperature <= 1.0:
            seed = next(d for d in read_seed_folder() if d.scene == scene and d.description in text)
            content = json.dumps(dialogue_to_record(seed, with_id=False))
        else:
            content = json.dumps(compose_record(scene, 11 + len(RedrawHandler.temperatures[scene])))
        self.send_json(200, chat_completion(body["model"], content, 1200, 700))


def test_redraws_draw_a_copied_dialogue_again_hotter(cli, tmp_path, monkeypatch):
    """--redraws: a dialogue rejected only as a copy of its demo (or too short) is drawn again at a higher
    temperature, its tokens counted and the earlier draws' reasons kept; other rejections are not drawn again."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    RedrawHandler.temperatures = {}
    srv, url = serve(RedrawHandler)
    try:
        run = tmp_path / "run"
        code, out, err = cli("synthesize", "-m", "openai/gpt-4o-mini", "--api-base", url, "--target", "2",
                             "--redraws", "2", "--retries", "0", "--uniform",
                             "--scenes", "Healing from Abuse;Caregiver Support", "--out", run, "--json")
    finally:
        srv.shutdown()
    assert code == 0, err
    temps = RedrawHandler.temperatures
    assert temps["Healing from Abuse"] == [1.0, 1.2] * 2  # each task: the run's 1.0, then a redraw 0.2 hotter
    assert temps["Caregiver Support"] and set(temps["Caregiver Support"]) == {1.0}  # wrong_scene: not drawn again
    accepted = [json.loads(x) for x in (run / "accepted.jsonl").read_text().splitlines()]
    assert [d["scene"] for d in accepted] == ["Healing from Abuse"] * 2
    for d in accepted:
        assert d["meta"]["validation"]["redrawn"] == [["demo_copy"]]
        assert d["meta"]["usage"]["completion_tokens"] == 1400  # both draws' tokens
    rejected = [json.loads(x) for x in (run / "rejected.jsonl").read_text().splitlines()]
    assert rejected and all(r["reasons"] == ["wrong_scene"] and "redrawn" not in r for r in rejected)

    code, _, err = cli("synthesize", "-m", "scripted", "--redraws", "-1", "--out", tmp_path / "bad")
    assert code == 2 and "--redraws" in err and len(err.strip().splitlines()) == 1
