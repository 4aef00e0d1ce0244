"""`extes evaluate matrix`: 2 models x 2 test sets, matrix + PNG, finished cells reused."""

import json

from extes.corpus.formats import read_corpus, write_corpus
from extes.corpus.seeds import seeds_dir

TSV = ("1.0 0 0 I lost my job.  EOS 1.0 1 1 [Questions] How are you coping?\n"
       "1.0 0 0 Exams scare me.  EOS 1.0 1 1 [Providing Suggestions] Try a study plan.\n")


def test_two_models_by_two_test_sets(cli, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    write_corpus(read_corpus(seeds_dir()).dialogues[:2], seeds, "jsonl")
    tsv = tmp_path / "esconv.tsv"
    tsv.write_text(TSV)
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps(["I am sorry, that sounds hard. How are you coping?"]))
    models = f"scripted,scripted:{replies}"
    out = tmp_path / "m"
    args = ("evaluate", "matrix", "--models", models, "--tests", f"{seeds},{tsv}", "--limit", "3", "--reps", "30",
            "--out", out)
    code, stdout, err = cli(*args, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert len(res["cells"]) == 4 and not any(c["reused"] for c in res["cells"].values())
    for c in res["cells"].values():
        assert c["n"] in (2, 3) and c["ci95"][0] - 1e-9 <= c["value"] <= c["ci95"][1] + 1e-9
    # the two models differ on the ESConv cell (the fixed reply matches the first reference better)
    a, b = res["cells"][f"scripted|{tsv}"], res["cells"][f"scripted:{replies}|{tsv}"]
    assert a["value"] != b["value"]
    md = (out / "matrix.md").read_text()
    assert "| scripted |" in md and "esconv.tsv" in md and "![matrix](matrix.png)" in md
    assert (out / "matrix.png").read_bytes()[:4] == b"\x89PNG"
    code, stdout, err = cli(*args, "--json")
    assert code == 0 and all(c["reused"] for c in json.loads(stdout)["cells"].values())
