"""ExTES JSON → JSONL → Hugging Face dataset → ExTES JSON is lossless on the seed set (through the real CLI)."""

import json

from extes.corpus.formats import read_corpus
from extes.corpus.seeds import seeds_dir


def test_seed_set_round_trip_through_every_format(cli, tmp_path):
    a, b, c, d = (tmp_path / n for n in ("a.json", "b.jsonl", "c_hf", "d.json"))
    assert cli("data", "convert", seeds_dir(), a, "--to", "extes")[0] == 0
    assert cli("data", "convert", a, b, "--from", "extes", "--to", "jsonl")[0] == 0
    assert cli("data", "convert", b, c, "--from", "jsonl", "--to", "hf")[0] == 0
    assert cli("data", "convert", c, d, "--from", "hf", "--to", "extes")[0] == 0
    assert json.loads(a.read_text()) == json.loads(d.read_text())
    assert a.read_text() == d.read_text()
    # JSONL ↔ HF keeps everything, provenance included.
    assert read_corpus(b).dialogues == read_corpus(c).dialogues
    seeds = read_corpus(seeds_dir()).dialogues
    assert [(s.id, s.scene, s.description, s.turns) for s in seeds] == [
        (x.id, x.scene, x.description, x.turns) for x in read_corpus(d).dialogues
    ]
