"""Histories longer than the context: the system prompt and the most recent turns that fit, said once."""

import json
import logging

from extes.programs.lm import context
from extes.programs.lm.context import fit_messages


def words(ms):
    return sum(len(m["content"].split()) for m in ms)


def history(n, words_per_turn=10):
    return [{"role": "user" if i % 2 == 0 else "assistant", "text": f"turn {i} " + "word " * (words_per_turn - 2)}
            for i in range(n)]


def test_fit_keeps_the_system_prompt_and_the_latest_turns_starting_at_a_user_turn(caplog):
    context._warned.clear()
    msgs = [{"role": "system", "content": "be kind " * 5}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"t{i} " + "w " * 9} for i in range(41)]
    assert fit_messages(msgs, words, 10_000, model="m") is msgs
    with caplog.at_level(logging.WARNING):
        kept = fit_messages(msgs, words, 100, model="m")
        fit_messages(msgs, words, 100, model="m")
    assert kept[0] == msgs[0] and kept[-1] == msgs[-1] and kept[1]["role"] == "user"
    assert words(kept) <= 100 and words([msgs[0]] + msgs[len(msgs) - len(kept) - 1:]) > 100  # the most that fit
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1  # said once
    assert "kept the system prompt and the last 9 of 41 turns" in caplog.records[0].message


def test_reply_with_a_very_long_history_on_the_scripted_lm(cli, tmp_path, caplog):
    from extes.programs.lm.scripted import ScriptedLM

    context._warned.clear()
    path = tmp_path / "long.json"
    path.write_text(json.dumps(history(2001)))  # about 20,000 words, five times the scripted window
    seen = []
    forward = ScriptedLM.forward

    def spy(self, prompt=None, messages=None, **kw):
        out = forward(self, prompt=prompt, messages=messages, **kw)
        seen.append(out.usage["prompt_tokens"])
        return out

    ScriptedLM.forward = spy
    try:
        with caplog.at_level(logging.WARNING):
            code, out, err = cli("reply", "Thanks, that helps", "-m", "scripted", "--history", path, "--json")
    finally:
        ScriptedLM.forward = forward
    assert code == 0, err
    assert json.loads(out)["reply"] and seen and max(seen) <= ScriptedLM.context_window
    assert sum("longer than scripted's context" in r.message for r in caplog.records) == 1
