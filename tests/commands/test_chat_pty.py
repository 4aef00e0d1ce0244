"""`extes chat` driven through a pseudo-terminal, as a person would use it."""

import json
import os
import signal
import sys
import uuid
from pathlib import Path

import pexpect
import pytest

EXTES = str(Path(sys.executable).parent / "extes")


def spawn(*args, timeout=240, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    # A job started in the background by a non-interactive shell (CI's may be one) runs with SIGINT ignored, and a
    # Python started so keeps ignoring it: give the chat the default disposition a terminal user's shell gives it.
    return pexpect.spawn(EXTES, ["chat", *args], env=env, encoding="utf-8", timeout=timeout, dimensions=(50, 200),
                         cwd=cwd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("model", [pytest.param("local/smollm2-135m-instruct", marks=pytest.mark.model), "scripted"])
def test_three_turns_strategy_and_crisis(tmp_path, model):
    out = tmp_path / "session.jsonl"
    child = spawn("-m", model, "--max-tokens", "40", "--save", str(out))
    child.expect("you> ")
    child.sendline("Hi, I had a rough week at work.")
    child.expect(r"bot \[([A-Za-z -]+)\]> ")
    first_strategy = child.match.group(1)
    child.expect("you> ")
    child.sendline("/strategy Suggest Options")
    child.expect(r"\(next strategy: Suggest Options\)")
    child.expect("you> ")
    child.sendline("My manager keeps giving me tasks at 6pm.")
    child.expect(r"bot \[Suggest Options\]> ")
    child.expect("you> ")
    child.sendline("Honestly I won't be a burden to anyone much longer.")
    child.expect(r"bot \[safety\]> .*emergency")
    child.expect("you> ")
    child.sendline("/quit")
    child.expect(r"saved 6 turns")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    (line,) = out.read_text().splitlines()
    d = json.loads(line)
    assert [t["role"] for t in d["turns"]] == ["user", "assistant"] * 3
    assert d["turns"][1]["strategy"] == first_strategy and d["turns"][3]["strategy"] == "Suggest Options"
    assert all(t["text"] for t in d["turns"])
    assert d["meta"]["source"] == "chat" and d["meta"]["model"] == model
    (event,) = d["meta"]["safety_events"]
    assert event["type"] == "crisis" and event["category"] == "suicide" and event["turn"] == 4
    assert "emergency" in d["turns"][5]["text"]


def test_bad_commands_keep_the_session_going():
    child = spawn("-m", "scripted")
    child.expect("you> ")
    child.sendline("/strategy Hugging")
    child.expect("Error: --strategy 'Hugging'")
    child.expect("you> ")
    child.sendline("/save nowhere.jsonl")  # (a 5000-character line would exceed the tty's 4096-byte line buffer)
    child.expect("Error: nothing to save yet")
    child.expect("you> ")
    child.sendline("/quit")
    child.expect(pexpect.EOF)


def test_ctrl_c_stops_a_reply_and_leaving_saves_the_session(tmp_path):
    child = spawn("-m", "scripted@3", cwd=str(tmp_path))  # each LM call takes 3 s: time to interrupt it
    child.expect("you> ")
    # a message no other test sends: DSPy's disk cache (one per test session) would answer a repeated one at once,
    # and the reply would be over before the Ctrl-C (what failed in CI)
    child.sendline(f"I had a rough week at work ({uuid.uuid4().hex[:8]}).")
    child.expect(r"bot \[")
    child.sendintr()  # Ctrl-C while the reply is being written
    child.expect(r"\(reply interrupted\)")
    child.expect("you> ")
    child.sendline("/save " + str(tmp_path))  # a folder: the save fails, says why, and the chat goes on
    child.expect("Error: /save .*is a folder")
    child.expect("you> ")
    child.sendline("My manager keeps giving me tasks at 6pm.")
    child.expect(r"bot \[[A-Za-z -]+\]> \S")
    child.expect("you> ")
    child.sendintr()  # Ctrl-C at the prompt: leave, saving what there is
    child.expect(r"saved 3 turns to (extes-chat-\S+\.jsonl)")
    name = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    d = json.loads((tmp_path / name).read_text())
    assert [t["role"] for t in d["turns"]] == ["user", "user", "assistant"]


def test_ctrl_d_saves_to_the_save_option(tmp_path):
    out = tmp_path / "s.jsonl"
    child = spawn("-m", "scripted", "--save", str(out))
    child.expect("you> ")
    child.sendline("Hi, I had a rough week at work.")
    child.expect("you> ")
    child.sendeof()
    child.expect(r"saved 2 turns to " + str(out))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and len(json.loads(out.read_text())["turns"]) == 2
