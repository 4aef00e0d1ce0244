from extes.corpus.formats import read_corpus, write_corpus
from extes.corpus.formats.hf import from_hf_dataset, to_hf_dataset
from helpers import extes_record, good_content, write_json


def test_dataset_round_trip_in_memory_and_on_disk(tmp_path):
    path = write_json(tmp_path / "x.json", [extes_record(good_content()) for _ in range(4)])
    ds = read_corpus(path, "extes").dialogues
    ds[0].meta.parent_ids = ["p1", "p2"]
    hf = to_hf_dataset(ds)
    assert hf.num_rows == 4 and set(hf.column_names) == {"id", "scene", "description", "turns", "meta"}
    assert from_hf_dataset(hf).dialogues == ds
    write_corpus(ds, tmp_path / "hf", "hf")
    assert read_corpus(tmp_path / "hf").dialogues == ds  # format detected from the folder
