"""`extes stats` shows a bar of utterances on stderr on a terminal; stdout (and --json) stay the same."""

import json

import pytest

from extes.commands import common, stats_cmd
from extes.corpus import analytics
from extes.corpus.analytics import analyse, token_stats
from extes.corpus.formats import read_corpus
from extes.corpus.seeds import seeds_dir


@pytest.fixture
def terminal(monkeypatch):
    """stderr reads as a terminal and the bar is drawn at once (no delay), in small steps."""
    monkeypatch.setattr(common, "stderr_is_tty", lambda: True)
    monkeypatch.setattr(stats_cmd, "BAR_DELAY_S", 0.0)
    monkeypatch.setattr(analytics, "_PROGRESS_CHUNK", 100)


def test_the_bar_goes_to_stderr_with_its_total_and_stdout_is_unchanged(cli, terminal, monkeypatch):
    n = sum(len(d.turns) for d in read_corpus(seeds_dir()).dialogues)
    code, with_bar, err = cli("stats", seeds_dir(), "--json")
    assert code == 0, err
    assert f"{n}/{n}" in err and "utt" in err  # the bar, with its total, finished
    monkeypatch.setattr(common, "stderr_is_tty", lambda: False)
    code, plain, plain_err = cli("stats", seeds_dir(), "--json")
    assert code == 0 and with_bar == plain and "utt" not in plain_err  # no terminal: no bar, same stdout
    assert json.loads(plain)["utterances"] == n


def test_quiet_draws_no_bar_and_markdown_stays_on_stdout(cli, terminal):
    code, out, err = cli("stats", seeds_dir(), "-q")
    assert code == 0 and "utt" not in err and "dialogues" in out
    code, out2, err2 = cli("stats", seeds_dir())
    assert code == 0 and out2 == out and "utt" in err2


def test_progress_counts_every_utterance_and_leaves_the_numbers_alone():
    texts = [f"I can't sleep, night {i}." for i in range(950)]
    steps = []
    assert token_stats(texts, chunk=100, progress=steps.append) == token_stats(texts)
    assert sum(steps) == 950 and len(steps) == 10
    dialogues = read_corpus(seeds_dir()).dialogues
    seen = []
    assert analyse(dialogues, name="s", progress=seen.append) == analyse(dialogues, name="s")
    assert sum(seen) == sum(len(d.turns) for d in dialogues)
