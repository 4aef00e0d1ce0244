import random
from pathlib import Path

import pytest

DEV_TSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "esconv" / "devWithStrategy_short.tsv"


@pytest.fixture(scope="session")
def esconv_pairs():
    """(hypotheses, references): 300 real ESConv supporter replies, each paired with another dev reply (seeded)."""
    from extes.corpus.formats.esconv_tsv import read_tsv_samples

    if not DEV_TSV.exists():
        pytest.skip(f"ESConv dev file not found at {DEV_TSV} (shared/ lies beside the checkout)")
    replies = [s["reference"] for s in read_tsv_samples(DEV_TSV) if s["reference"].strip()]
    rng = random.Random(7)
    refs = replies[:300]
    hyps = [replies[rng.randrange(len(replies))] for _ in refs]
    return hyps, refs
