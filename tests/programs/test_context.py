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


def test_a_5000_turn_history_is_trimmed_from_the_newest_turn_and_said_once(cli, tmp_path, caplog, monkeypatch):
    """The trimming counts tails from the newest turn backwards and stops once full: it never counts the whole
    history, and the turns it counts in all are bounded by those that fit."""
    context._warned.clear()
    path = tmp_path / "h5000.json"
    path.write_text(json.dumps(history(5000)))  # 50,000 words, twelve times the scripted window
    counted = []
    real = context.fit_messages

    def spy(messages, count, budget, **kw):
        def counting(ms):
            counted.append(len(ms))
            return count(ms)
        kept = real(messages, counting, budget, **kw)
        spy.kept = len(kept)
        return kept

    monkeypatch.setattr("extes.programs.lm.scripted.fit_messages", spy)
    with caplog.at_level(logging.WARNING):
        code, out, err = cli("reply", "Thanks, that helps", "-m", "scripted", "--history", path, "--json")
    assert code == 0, err
    assert json.loads(out)["reply"]
    assert sum("longer than scripted's context" in r.message for r in caplog.records) == 1
    assert "of 5001 turns" in next(r.message for r in caplog.records if "longer than" in r.message)
    assert counted and max(counted) <= 2 * spy.kept + 2  # no call read the whole history
    # Stopped early: less than two readings of the history in all (the binary search over it read about seven).
    assert sum(counted) < 2 * 5000


def test_fit_counts_only_tails_near_what_fits():
    msgs = [{"role": "system", "content": "sys"}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "w " * 10} for i in range(10_001)]
    sizes = []
    kept = fit_messages(msgs, lambda ms: sizes.append(len(ms)) or words(ms), 1000, model="t")
    assert words(kept) <= 1000 and len(kept) > 90
    assert max(sizes) <= 2 * len(kept) and len(sizes) < 20
