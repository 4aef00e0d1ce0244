"""ESConv as released: the baseline TSV (samples as released, rebuilt dialogues), ESConv.json, label mappings."""

import json
from collections import Counter

import pytest

from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.formats.esconv_tsv import read_tsv_samples
from extes.corpus.labels import esconv_to_extes, extes_to_esconv, leading_label
from extes.errors import InputError

DEV = "devWithStrategy_short.tsv"

LINES = [
    "1.0 0 0 Hi, I feel low.  EOS 1.0 1 1 [Questions] Why is that?",
    "0.0 0 0 Hi, I feel low.  EOS 0.0 1 1 [Questions] Why is that? EOS 0.0 0 2 My job.  EOS "
    "1.0 1 3 [Reflection of feelings] That sounds hard.",
    "1.0 0 0 Hello there.  EOS 1.0 1 1 [Other] Hello ",
]


@pytest.fixture
def dev_file(esconv_file):
    path = esconv_file.parent / DEV
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def write_tsv(tmp_path, lines, name="tiny.tsv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_samples_exactly_as_released(tmp_path):
    samples = read_tsv_samples(write_tsv(tmp_path, LINES))
    assert [s["id"] for s in samples] == ["tiny-0000#1", "tiny-0000#3", "tiny-0001#1"]
    assert [s["line"] for s in samples] == [1, 2, 3]
    second = samples[1]
    assert second["history"] == [{"role": "user", "text": "Hi, I feel low."},
                                 {"role": "assistant", "text": "Why is that?"}, {"role": "user", "text": "My job."}]
    assert second["reference"] == "That sounds hard." and second["gold_strategy"] == "Reflection of feelings"
    assert samples[2]["gold_strategy"] == "Others" and samples[2]["reference"] == "Hello"


def test_rebuilt_dialogues(tmp_path):
    res = read_corpus(write_tsv(tmp_path, LINES))  # .tsv is guessed as esconv-tsv
    assert [d.id for d in res.dialogues] == ["tiny-0000", "tiny-0001"]
    d = res.dialogues[0]
    assert [(t.role, t.strategy, t.text) for t in d.turns] == [
        ("user", None, "Hi, I feel low."), ("assistant", "Question", "Why is that?"), ("user", None, "My job."),
        ("assistant", "Reflection of feelings", "That sounds hard.")]
    assert d.meta.label_set == "esconv" and d.meta.esconv["lines"] == [1, 2]
    mapped = read_corpus(tmp_path / "tiny.tsv", "esconv-tsv", ReadOptions(map_esconv=True)).dialogues[0]
    assert mapped.turns[1].strategy == "Clarification" and mapped.meta.label_set == "extes"


def test_released_dev_file(dev_file):
    samples = read_tsv_samples(dev_file)
    assert len(samples) == 2985 and len({s["id"] for s in samples}) == 2985
    assert Counter(s["gold_strategy"] for s in samples) == {
        "Question": 595, "Others": 510, "Affirmation and Reassurance": 494, "Providing Suggestions": 477,
        "Self-disclosure": 283, "Reflection of feelings": 249, "Information": 200, "Restatement or Paraphrasing": 177}
    dialogues = read_corpus(dev_file, "esconv-tsv").dialogues
    assert len(dialogues) == 211 == len({s["dialogue"] for s in samples})
    # every sample's reference is the rebuilt dialogue's turn at that index
    by_id = {d.id: d for d in dialogues}
    for s in samples[::97]:
        assert by_id[s["dialogue"]].turns[s["turn_index"]].text == s["reference"]


def test_bad_prefix_names_file_and_line(tmp_path, cli):
    path = write_tsv(tmp_path, [LINES[0], "hello there EOS 1.0 1 1 [Questions] Why?"])
    with pytest.raises(InputError, match=r"tiny.tsv: line 2: turn 0 .*<float> <speaker 0/1> <turn index>"):
        read_tsv_samples(path)
    out = tmp_path / "out.jsonl"
    code, _, err = cli("data", "convert", path, out, "--to", "jsonl")
    assert code == 2 and "line 2" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    code, _, err = cli("data", "convert", path, out, "--to", "jsonl", "--skip-invalid")
    assert code == 0 and len(out.read_text().splitlines()) == 1


def test_strategy_outside_label_set(tmp_path, cli):
    path = write_tsv(tmp_path, [LINES[0].replace("[Questions]", "[Direct Guidance]")])
    with pytest.raises(InputError, match=r"tiny.tsv: line 1: unknown strategy 'Direct Guidance'"):
        read_tsv_samples(path)
    code, _, err = cli("data", "convert", path, tmp_path / "o.jsonl", "--to", "jsonl")
    assert code == 2 and "Direct Guidance" in err and not (tmp_path / "o.jsonl").exists()
    kept = read_tsv_samples(path, ReadOptions(unknown_labels="keep"))
    assert kept[0]["gold_strategy"] == "Direct Guidance"


def test_esconv_json_as_released_seeker_supporter(tmp_path):
    session = {"emotion_type": "anxiety", "problem_type": "job crisis", "situation": "Lost my job.",
               "dialog": [{"speaker": "seeker", "annotation": {}, "content": "I lost my job.\n"},
                          {"speaker": "supporter", "annotation": {"strategy": "Question"},
                           "content": "How long ago?"}]}
    (tmp_path / "ESConv.json").write_text(json.dumps([session]))
    d = read_corpus(tmp_path / "ESConv.json").dialogues[0]
    assert [(t.role, t.strategy) for t in d.turns] == [("user", None), ("assistant", "Question")]
    assert d.turns[0].text == "I lost my job." and d.meta.esconv["emotion_type"] == "anxiety"


def test_mapping_both_directions():
    to_extes, to_esconv = esconv_to_extes(), extes_to_esconv()
    assert len(to_extes) == 8 and len(to_esconv) == 16
    for es, ex in to_extes.items():  # ESConv -> ExTES -> ESConv is the identity except Self-disclosure
        assert to_esconv[ex] == (es if es != "Self-disclosure" else "Others")
    assert set(to_esconv.values()) == set(to_extes) - {"Self-disclosure"}


def test_bad_reverse_mapping_is_an_asset_error(tmp_path, monkeypatch):
    import shutil

    from extes.corpus import assets
    from extes.errors import AssetError

    folder = tmp_path / "assets"
    shutil.copytree(assets.assets_dir(), folder)
    path = folder / "esconv_strategies.yaml"
    path.write_text(path.read_text().replace("  Stress Management: Providing Suggestions\n", ""))
    monkeypatch.setenv("EXTES_ASSETS", str(folder))
    with pytest.raises(AssetError, match="from_extes lacks Stress Management"):
        assets.load_extes_to_esconv()


def test_leading_label():
    assert leading_label("[Question] How are you?") == ("Question", "How are you?")
    assert leading_label("How are you? [x]") == (None, "How are you? [x]")
