"""A UTF-8 BOM is read, not rejected, by every kind of input (JSON, JSONL, YAML, CSV, text lines, TSV)."""

import json
from pathlib import Path

from extes.corpus.formats import read_corpus
from extes.corpus.textio import read_text
from helpers import extes_record, good_content

BOM = b"\xef\xbb\xbf"


def test_bom_inputs_read_like_plain_ones(tmp_path, cli):
    ej = tmp_path / "c.json"
    ej.write_bytes(BOM + json.dumps([extes_record(good_content())]).encode())
    assert len(read_corpus(ej).dialogues) == 1
    jl = tmp_path / "c.jsonl"
    assert cli("data", "convert", ej, jl)[0] == 0
    jl.write_bytes(BOM + jl.read_bytes())
    assert len(read_corpus(jl).dialogues) == 1
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    src = sorted(Path("assets/seeds").glob("*.yaml"))[0]
    (seeds / "a.yaml").write_bytes(BOM + src.read_bytes())
    assert len(read_corpus(seeds, "seeds").dialogues) >= 2
    hyp, ref = tmp_path / "hyp.tsv", tmp_path / "ref.txt"
    hyp.write_bytes(BOM + b"the cat sat\ton the mat\n")
    ref.write_bytes(b"the cat sat\ton the mat\n")
    code, out, err = cli("metrics", hyp, ref, "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads(cli("metrics", ref, ref, "--json")[1])  # the BOM is not a token
    labelled = tmp_path / "s.jsonl"
    labelled.write_bytes(BOM + b'{"text": "I am fine", "crisis": false}\n')
    code, out, err = cli("safety", "eval", labelled, "--rules-only", "--json")
    assert code == 0 and json.loads(out)["n"] == 1, err
    assert read_text(hyp) == "the cat sat\ton the mat\n"


def test_bom_rating_sheet(tmp_path):
    from extes.corpus.rating import CRITERIA, read_sheet

    sheet = tmp_path / "s.csv"
    sheet.write_bytes(BOM + (",".join(["item", *CRITERIA]) + "\nitem-1," + ",".join("1" * 5) + "\n").encode())
    assert read_sheet(sheet) == {"item-1": dict.fromkeys(CRITERIA, 1)}
