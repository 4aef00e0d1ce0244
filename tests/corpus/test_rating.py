"""The quality protocol: sheets, Fleiss' kappa (checked against the published worked example), the LM judge."""

import csv
import json

import pytest

from extes.corpus.rating import CRITERIA, fleiss_kappa
from extes.errors import InputError

# Fleiss (1971) worked example as reproduced on Wikipedia ("Fleiss' kappa"): 10 subjects, 14 raters, 5 categories;
# P-bar = 0.378, P-bar-e = 0.213, kappa = 0.210.
WIKIPEDIA = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
             [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_fleiss_kappa_worked_example():
    assert fleiss_kappa(WIKIPEDIA) == pytest.approx(0.20993, abs=1e-4)
    assert fleiss_kappa([[2, 0], [0, 2], [2, 0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 0], [2, 0]])


def fill(sheet, out, scores):
    rows = list(csv.DictReader(open(sheet, encoding="utf-8")))
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for k, row in enumerate(rows):
            row.update({c: str(scores(k, c)) for c in CRITERIA})
            w.writerow(row)


def test_export_import_round(cli, esconv_file, tmp_path):
    from extes.corpus.seeds import seeds_dir

    sheet = tmp_path / "sheet.csv"
    code, out, _ = cli("rate", "export", seeds_dir(), esconv_file, "--n", "10", "--out", sheet, "--json")
    assert code == 0 and json.loads(out)["per_source"] == {"seeds": 5, "FailedESConv": 5}
    text = sheet.read_text()
    assert "FailedESConv" not in text and "seeds" not in text  # blinded
    fill(sheet, tmp_path / "a.csv", lambda k, c: 3)
    fill(sheet, tmp_path / "b.csv", lambda k, c: 3 if k % 2 else 2)
    code, out, err = cli("rate", "import", tmp_path / "a.csv", tmp_path / "b.csv", "--key",
                         tmp_path / "sheet.key.json", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["annotators"] == 2 and r["items_rated_by_all"] == 10
    key = json.loads((tmp_path / "sheet.key.json").read_text())["items"]
    items = [row["item"] for row in csv.DictReader(open(sheet, encoding="utf-8"))]
    odd_seed = sum(1 for k, i in enumerate(items) if key[i]["source"] == "seeds" and k % 2)
    assert r["means"]["seeds"]["coherence"] == pytest.approx((5 * 3 + odd_seed * 3 + (5 - odd_seed) * 2) / 10, abs=1e-3)


def test_bad_sheet(cli, tmp_path):
    from extes.corpus.seeds import seeds_dir

    sheet = tmp_path / "sheet.csv"
    cli("rate", "export", seeds_dir(), "--n", "4", "--out", sheet)
    fill(sheet, tmp_path / "a.csv", lambda k, c: 5 if k == 2 else 1)
    fill(sheet, tmp_path / "b.csv", lambda k, c: 1)
    code, _, err = cli("rate", "import", tmp_path / "a.csv", tmp_path / "b.csv", "--key", tmp_path / "sheet.key.json")
    assert code == 2 and "row 4" in err and "not a score 0-3" in err
    (tmp_path / "c.csv").write_text("item,dialogue,informativeness\nitem-0001,x,1\n")
    with pytest.raises(InputError, match="missing column"):
        from extes.corpus.rating import read_sheet

        read_sheet(tmp_path / "c.csv")


def test_judge_fills_a_sheet(cli, tmp_path):
    from extes.corpus.seeds import seeds_dir

    sheet = tmp_path / "sheet.csv"
    cli("rate", "export", seeds_dir(), "--n", "3", "--out", sheet)
    code, out, err = cli("rate", "judge", sheet, "-m", "scripted", "--out", tmp_path / "j.csv", "--json")
    assert code == 0, err
    assert json.loads(out)["rated"] == 3
    rows = list(csv.DictReader(open(tmp_path / "j.csv", encoding="utf-8")))
    assert all(row[c] in "0123" and row[c] for row in rows for c in CRITERIA)
    # the judge's sheet alone gives the means per source; kappa needs a second rater
    code, out, err = cli("rate", "import", tmp_path / "j.csv", "--key", tmp_path / "sheet.key.json", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["annotators"] == 1 and r["items_per_source"] == {"seeds": 3}
    assert set(r["means"]["seeds"]) == set(CRITERIA) and set(r["fleiss_kappa"].values()) == {None}
    code, out, _ = cli("rate", "import", tmp_path / "j.csv", "--key", tmp_path / "sheet.key.json")
    assert code == 0 and "needs two sheets" in out


@pytest.mark.model
def test_judge_with_the_embedded_model_scores_by_likelihood(cli, tmp_path):
    from extes.corpus.seeds import seeds_dir

    sheet = tmp_path / "sheet.csv"
    cli("rate", "export", seeds_dir(), "--n", "1", "--out", sheet)
    code, _, err = cli("rate", "judge", sheet, "-m", "local/smollm2-135m-instruct", "--out", tmp_path / "j.csv")
    assert code == 0, err
    (row,) = list(csv.DictReader(open(tmp_path / "j.csv", encoding="utf-8")))
    assert all(row[c] in {"0", "1", "2", "3"} for c in CRITERIA)



def test_a_killed_judge_continues_where_it_stopped(cli, tmp_path):
    """The judge dies on its third dialogue; the rerun asks only the dialogues not judged yet, and the sheet it
    writes equals an uninterrupted run's."""
    from extes.corpus.seeds import seeds_dir
    from extes.programs.judge import judge_sheet
    from extes.programs.lm.scripted import ScriptedLM

    class Dies(ScriptedLM):
        def __init__(self, after):
            super().__init__()
            self.after, self.asked = after, 0

        def forward(self, *args, **kwargs):
            self.asked += 1
            if self.asked > self.after:
                raise KeyboardInterrupt
            return super().forward(*args, **kwargs)

    sheet = tmp_path / "sheet.csv"
    cli("rate", "export", seeds_dir(), "--n", "4", "--out", sheet)
    calls = len(CRITERIA)  # one call per criterion
    with pytest.raises(KeyboardInterrupt):
        judge_sheet(sheet, tmp_path / "j.csv", Dies(2 * calls))
    assert not (tmp_path / "j.csv").exists()
    assert len((tmp_path / "j.csv.partial.jsonl").read_text().splitlines()) == 2
    rerun = Dies(10**6)
    assert judge_sheet(sheet, tmp_path / "j.csv", rerun) == 4
    assert rerun.asked == 2 * calls and not (tmp_path / "j.csv.partial.jsonl").exists()
    judge_sheet(sheet, tmp_path / "whole.csv", ScriptedLM())
    assert (tmp_path / "j.csv").read_text() == (tmp_path / "whole.csv").read_text()
