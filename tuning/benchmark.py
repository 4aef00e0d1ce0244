"""The pinned ESConv benchmark: Table 6 and strategy proficiency/bias on ESConv's released samples, quotable.

Protocol (written into every report):
- Samples: one per line of the released `*WithStrategy_short.tsv` (corpus/formats/esconv_tsv.py), the history being
  the line's window; or, for an ESConv.json file, every supporter turn after a seeker turn with its full history.
  The test file's sha256 and every sample id are recorded; a run resumed on a file whose sha256 changed is refused.
- Replies: the Supporter with a predicted strategy (`select`: its SelectStrategy, or a compiled program's), or the
  model's own leading `[label]` (`prefix`: a model tuned on the `strategies` variant, reply scored without it).
- Strategies: predictions (ExTES's 16 or ESConv's 8) are mapped onto ESConv's 8 with the documented table in
  assets/esconv_strategies.yaml (`from_extes`); a missing or unreadable prediction counts as Others, as in Kang et
  al.'s code, and is counted in `unparsed`. Metrics: tuning/strategy_metrics.py, overall and per phase.
- Intervals: 95% percentile bootstrap resampling whole dialogues (not turns), `reps` draws, seeded.
Generation and per-sample scores reuse tuning/evaluation.py's run folder (samples.jsonl, resumable).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from extes.corpus.assets import assets_dir, read_yaml
from extes.corpus.atomic import claim_output_dir, write_text_atomic
from extes.corpus.formats import ReadOptions, read_corpus
from extes.corpus.formats.esconv_tsv import read_tsv_samples
from extes.corpus.labels import extes_to_esconv, normalizer
from extes.errors import InputError
from extes.tuning import resample as R
from extes.tuning import strategy_metrics as S
from extes.tuning.benchmark_report import write_report
from extes.tuning.evaluation import evaluate_run, load_samples

PREDICTORS = ("select", "prefix")
STRATEGY_KEYS = ("accuracy", "macro_f1", "weighted_f1", "bias")
TEXT_KEYS = ("ppl", "meteor", "bleu2", "bleu4", "rouge_l", "extrema", "dist1_response", "dist2_response",
             "dist3_response")

METRIC_VARIANTS = {
    "tokens": "NLTK Treebank word tokens (NLTKWordTokenizer), lower-cased, punctuation kept",
    "bleu": "corpus BLEU-2/BLEU-4 (nltk corpus_bleu), one reference, uniform weights, smoothing method1 "
            "(epsilon 0.1 on zero n-gram counts), x100",
    "rouge_l": "sentence ROUGE-L F1 (LCS, beta 1) on the tokens above (not rouge-score's tokenizer, which drops "
               "punctuation), mean over samples, x100",
    "meteor": "nltk meteor_score (alpha 0.9, beta 3, gamma 0.5; WordNet 3.0), mean over samples, x100",
    "extrema": "Vector Extrema cosine over SmolLM2-135M input embeddings (not GloVe), mean over samples, x100",
    "distinct_corpus": "dist-n: distinct n-grams / all n-grams over all responses together (ESConv-line papers)",
    "distinct_response": "dist-n_response: per response distinct/all n-grams, mean over responses",
    "ppl": "perplexity of the reference reply given its history, reply tokens only (local models)",
    "strategy": "Kang et al. 2024: macro-F1 = Q, weighted-F1, Bradley-Terry preferences (20 MM sweeps, sum = 8), "
                "B = population std of the preferences; ESConv's 8 labels",
    "intervals": "95% percentile bootstrap over dialogues",
}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def spread(samples: list[dict[str, Any]], per_dialogue: int) -> list[dict[str, Any]]:
    """At most `per_dialogue` samples of each dialogue, evenly spaced over its turns (the j-th of K taken at
    position floor((j + 0.5) * n / K) of the dialogue's n samples, so openings, middles and endings all count), in
    file order. A benchmark's intervals and paired tests resample dialogues: 200 consecutive samples of ESConv's dev
    split are 13 dialogues, 200 spread 3 a dialogue are 67."""
    by: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by.setdefault(s["dialogue"], []).append(i)
    keep: set[int] = set()
    for idx in by.values():
        k = min(per_dialogue, len(idx))
        keep.update(idx[int((j + 0.5) * len(idx) / k)] for j in range(k))
    return [s for i, s in enumerate(samples) if i in keep]


def load_test(path: Path, limit: int | None = None, per_dialogue: int | None = None) -> list[dict[str, Any]]:
    """Benchmark samples (id, dialogue, history, reference, gold ESConv label, position k and dialogue length n);
    with `per_dialogue`, at most that many of each dialogue (spread()), then the first `limit`."""
    path = Path(path)
    if path.suffix.lower() == ".tsv":
        samples = read_tsv_samples(path)
        length: dict[str, int] = {}
        for s in samples:
            length[s["dialogue"]] = max(length.get(s["dialogue"], 0), s["turn_index"] + 1)
        for s in samples:
            s["k"], s["n"] = s["turn_index"] + 1, length[s["dialogue"]]
    else:
        samples = []
        for d in read_corpus(path, None, ReadOptions(unknown_labels="error")).dialogues:
            if d.meta.label_set != "esconv":
                raise InputError(f"{path}: not in ESConv's label set; the ESConv benchmark reads ESConv files")
            for i, t in enumerate(d.turns):
                if t.role == "assistant" and i > 0 and d.turns[i - 1].role == "user" and t.strategy:
                    samples.append({"id": f"{d.id}#{i}", "dialogue": d.id, "reference": t.text,
                                    "history": [{"role": x.role, "text": x.text} for x in d.turns[:i]],
                                    "gold_strategy": t.strategy, "k": i + 1, "n": len(d.turns)})
    if not samples:
        raise InputError(f"{path}: no labelled supporter turn to benchmark")
    if per_dialogue:
        samples = spread(samples, per_dialogue)
    return samples[:limit] if limit else samples


def to_esconv(label: str | None) -> str | None:
    """A predicted label (ESConv's or ExTES's, any variant) in ESConv's set; None when it is neither."""
    if not label:
        return None
    es = normalizer("esconv").normalize(label)
    if es.known:
        return es.label
    ex = normalizer("extes").normalize(label)
    return extes_to_esconv().get(ex.label) if ex.known else None


def check_resume(out: Path, test: Path, sha: str, per_dialogue: int | None = None) -> None:
    """Refuse to resume a run on a test file that changed since the run started, or with another --per-dialogue
    (other samples), before writing anything."""
    path = out / "benchmark.json"
    if path.exists():
        pinned = json.loads(path.read_text())
        if pinned.get("per_dialogue") != per_dialogue:
            raise InputError(f"--per-dialogue {per_dialogue}: the run in {out} was started with --per-dialogue "
                             f"{pinned.get('per_dialogue')} (other samples); use the same value or a new --out")
        old = pinned.get("test_sha256")
        if old and old != sha:
            raise InputError(f"{test}: changed since the run in {out} started (sha256 {sha[:12]}..., the run has "
                             f"{old[:12]}...); restore the file or use a new --out")


def anchors() -> dict[str, Any]:
    data = read_yaml(assets_dir() / "esconv_anchors.yaml")
    return {"source": data.get("source"), "anchors": data.get("anchors", [])}


def run_benchmark(lm, test: Path, out: Path, *, limit: int | None = None, per_dialogue: int | None = None,
                  predictor: str = "select",
                  program: str | None = None, workers: int = 1, reps: int = 1000, seed: int = 0,
                  manifest: dict | None = None, progress=None) -> dict[str, Any]:
    """Generate (resumably), score and write report.md/report.json/confusion.png into `out`; returns the report."""
    if predictor not in PREDICTORS:
        raise InputError(f"--predictor {predictor!r}: use one of {', '.join(PREDICTORS)}")
    test, out = Path(test), Path(out)
    sha = file_sha256(test)
    if per_dialogue is not None and per_dialogue < 1:
        raise InputError(f"--per-dialogue {per_dialogue}: use 1 or more samples a dialogue (or leave it out)")
    samples = load_test(test, limit, per_dialogue)
    check_resume(out, test, sha, per_dialogue)
    claim_output_dir(out, "evaluate")  # a benchmark folder is an evaluate run with benchmark.json beside it
    pinned = {"test": str(test), "test_sha256": sha, "n": len(samples), "limit": limit,
              "per_dialogue": per_dialogue, "predictor": predictor,
              "sample_ids": [s["id"] for s in samples], "gold": [s["gold_strategy"] for s in samples],
              "metric_variants": METRIC_VARIANTS,
              "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    if not (out / "benchmark.json").exists():
        write_text_atomic(out / "benchmark.json", json.dumps(pinned, indent=1) + "\n")
    # evaluation.py sees no gold label: its strategy accuracy would compare ExTES predictions with ESConv labels.
    eval_samples = [{**s, "gold_strategy": None} for s in samples]
    evaluate_run(lm, [], out, mode="predicted" if predictor == "select" else "none", workers=workers,
                 program=program, manifest={**(manifest or {}), "benchmark": "esconv", "test_sha256": sha},
                 progress=progress, samples=eval_samples, strip_label=predictor == "prefix")
    rows = {r["id"]: r for r in load_samples(out)}
    ordered = [{**rows[s["id"]], "dialogue": s["dialogue"]} for s in samples]
    result = score(samples, ordered, reps=reps, seed=seed)
    result.update({"test": str(test), "test_sha256": sha, "predictor": predictor, "sample_ids": pinned["sample_ids"],
                   "metric_variants": METRIC_VARIANTS, "published": anchors(), "manifest": manifest or {}})
    write_report(out, result)
    return result


def score(samples: list[dict[str, Any]], rows: list[dict[str, Any]], *, reps: int = 1000,
          seed: int = 0) -> dict[str, Any]:
    """Table 6 + strategy metrics with dialogue-bootstrap intervals, overall and per phase."""
    labels = esconv_labels()
    gold = [s["gold_strategy"] for s in samples]
    mapped = [to_esconv(r.get("strategy")) for r in rows]
    pred = [m or "Others" for m in mapped]
    positions = [(s["k"], s["n"]) for s in samples]
    stats = [R.row_stats(r) for r in rows]
    text = R.table6(stats)
    strat = S.strategy_scores(gold, pred, labels)

    def both(idx: list[int]) -> dict[str, Any]:
        sub = S.strategy_scores([gold[i] for i in idx], [pred[i] for i in idx], labels)
        return {**R.table6([stats[i] for i in idx]), **{k: sub[k] for k in STRATEGY_KEYS}}

    cis = R.dialogue_bootstrap(rows, both, TEXT_KEYS + STRATEGY_KEYS, reps=reps, seed=seed)
    return {"n": len(rows), "dialogues": len(R.group_indices(rows)), "table6": text, "strategy": strat,
            "unparsed": sum(m is None for m in mapped), "ci95": {k: list(v) for k, v in cis.items()},
            "phases": S.by_phase(gold, pred, positions, labels), "bootstrap": {"reps": reps, "seed": seed,
                                                                             "unit": "dialogue"}}


def esconv_labels() -> list[str]:
    """ESConv's 8 strategies in the order of assets/esconv_strategies.yaml."""
    return list(normalizer("esconv").canonical)
