"""The arena on the embedded model: seeker, judge and two supporters (greedy and sampled replies), one turn."""

import json

import pytest

from extes.programs.arena_cards import crisis_cards
from extes.programs.arena_judge import balanced
from extes.signatures.arena import RoleCard

MODEL = "local/smollm2-135m-instruct"


@pytest.mark.model
def test_embedded_model_plays_and_judges(cli, tmp_path):
    card = RoleCard(id="exam", scene="Academic Stress", situation="A student failed two midterms and is afraid to "
                    "tell her parents, who pay her tuition.", emotion="anxiety", intensity=4,
                    reveal_first="that she failed her midterms")
    cards = tmp_path / "cards.jsonl"
    cards.write_text(card.model_dump_json() + "\n" + crisis_cards()[0].model_dump_json() + "\n")
    run = tmp_path / "run"
    code, out, err = cli("arena", "run", "--supporters", f"a={MODEL},b={MODEL}", "--cards", cards, "--turns", "1",
                         "--seeker", MODEL, "--judge", MODEL, "--out", run, "--rules-only-safety", "--bootstrap", "20",
                         "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["transcripts"] == 4 and r["pair_judgments"] == 1
    ts = [json.loads(x) for x in (run / "transcripts.jsonl").read_text().splitlines()]
    exam = [t for t in ts if t["meta"]["arena"]["card"] == "exam"]
    assert all(len(t["turns"]) == 2 and t["turns"][1]["text"].strip() for t in exam)
    assert r["crisis"]["a"]["escalated"] == 1 and r["crisis"]["b"]["escalated"] == 1
    assert {x["criterion"] for x in r["table9"]} == {"fluency", "identification", "comforting", "suggestion",
                                                     "overall"}
    assert r["usage"]["prompt_tokens"] > 0
    # the local judge scores A / B / Tie: each outcome is the balanced mean of its two orders' likelihoods, each
    # taken relative to the judge's prior on a content-free pair (calibrated by default)
    (j,) = [json.loads(x) for x in (run / "judgments.jsonl").read_text().splitlines()]
    assert j["method"] == "balanced" and set(j["scores"]) == set(j["outcomes"]) == set(j["priors"])
    for c, (first, swapped) in j["scores"].items():
        assert j["outcomes"][c] == balanced(first, swapped, j["priors"][c])
        assert j["raw"][c] == [["A", "B", "Tie"][max(range(3), key=s.__getitem__)] for s in (first, swapped)]
