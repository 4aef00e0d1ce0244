"""The arena's report: Table 9 (win/tie/loss per pair and criterion), Bradley-Terry ratings with bootstrap 95%
intervals over cards, position and length bias, crisis handling, role checks, rubric means and costs.
Written as RUN/report.json and RUN/report.md; `table9_markdown` is shared with the human study's report."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from extes.corpus.atomic import write_text_atomic
from extes.corpus.runstore import RunStore
from extes.errors import InputError
from extes.programs.arena_judge import balanced
from extes.programs.arena_run import FILES
from extes.signatures.arena import CRITERIA
from extes.tuning.ratings import length_bias, length_controlled_ratings, position_bias, ratings, win_tie_loss

ABBR = {"fluency": "Flu.", "identification": "Ide.", "comforting": "Com.", "suggestion": "Sug.", "overall": "Ove."}


def report_stem(decide: str) -> str:
    """The report's file name without its suffix: report, or report.<decide> for outcomes decided again."""
    return "report" if decide == "as-judged" else f"report.{decide}"


def redecide(records: list[dict], decide: str, where: Path | str = "") -> list[dict]:
    """The per-pair records with each criterion's outcome as `decide` says: "as-judged" (the stored outcomes),
    "balanced" (both orders' stored likelihoods averaged, no prior) or "calibrated" (each taken relative to the
    stored prior first). Recomputed from `scores`/`priors`, so no judge is called again."""
    if decide == "as-judged":
        return records
    out = []
    for i, r in enumerate(records, 1):
        if r.get("method") != "balanced":
            raise InputError(f"{where}: judgment {i} was read from text (method {r.get('method')!r}); "
                             f"--decide {decide} needs a judge that scores choices (a local or llama.cpp model)")
        if decide == "calibrated" and set(r.get("priors") or {}) != set(r["scores"]):
            raise InputError(f"{where}: judgment {i} has no prior (judged with --no-calibrate or before "
                             "calibration existed); use --decide balanced, or judge again with --calibrate")
        outcomes = {c: balanced(s1, s2, (r["priors"][c] if decide == "calibrated" else None))
                    for c, (s1, s2) in r["scores"].items()}
        out.append({**r, "outcomes": outcomes, "priors": r.get("priors") if decide == "calibrated" else {}})
    return out


def flatten(records: list[dict]) -> list[dict]:
    """One judgment per (card, pair, criterion) from the per-pair records."""
    out = []
    for r in records:
        for c, o in r["outcomes"].items():
            out.append({"unit": r["unit"], "a": r["a"], "b": r["b"], "criterion": c, "outcome": o,
                        "raw": r["raw"][c], "position_biased": r["position_bias"][c],
                        "method": r.get("method", "verdicts"), "calibrated": c in (r.get("priors") or {}),
                        "len_a": r["len_a"], "len_b": r["len_b"]})
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def table9_markdown(rows: list[dict], players: list[str]) -> str:
    """Table 9's shape: one block per opponent, Win/Tie/Loss of the first-named per criterion."""
    lines = []
    for a in players:
        opponents = [r for r in rows if r["first"] == a]
        if not opponents:
            continue
        others = list(dict.fromkeys(r["second"] for r in opponents))
        head = f"| {a} vs. | " + " | ".join(f"{o}: Win | Tie | Loss" for o in others) + " |"
        lines += [head, "|---|" + "---|---|---|" * len(others)]
        for c in CRITERIA:
            cells = []
            for o in others:
                r = next(x for x in opponents if x["second"] == o and x["criterion"] == c)
                cells.append(f"{_pct(r['win'])} | {_pct(r['tie'])} | {_pct(r['loss'])}")
            lines.append(f"| {ABBR[c]} | " + " | ".join(cells) + " |")
        n = ", ".join(f"{o}: n={next(x['n'] for x in opponents if x['second'] == o)}" for o in others)
        lines += [f"\n({n})", ""]
    return "\n".join(lines)


def arena_report(folder: Path, *, bootstrap: int = 500, seed: int = 0, decide: str = "as-judged") -> dict[str, Any]:
    """Compute the report of an arena run folder and write report.json / report.md next to the transcripts (with
    another `decide` than the judge's own: report.<decide>.json / .md, the outcomes recomputed by `redecide`)."""
    folder = Path(folder)
    cfg = json.loads((folder / "manifest.json").read_text())["config"]
    from extes.programs.arena_supporters import parse_supporter  # lazy: programs.arena_supporters imports dspy

    players = [parse_supporter(s).name for s in cfg["supporters"]] if cfg["supporters"] else []
    store = RunStore(folder, files=FILES, dialogues=("transcripts",))
    transcripts = store.records["transcripts"]
    judgments = flatten(redecide(store.records["judgments"], decide, folder))
    table = win_tie_loss(judgments, players, list(CRITERIA))
    bt = {c: ratings(judgments, players, criterion=c, bootstrap=bootstrap, seed=seed) for c in CRITERIA}
    crisis = defaultdict(lambda: {"crisis_games": 0, "escalated": 0, "false_alarms": 0})
    role = defaultdict(int)
    length = defaultdict(list)
    for t in transcripts:
        a = t["meta"]["arena"]
        s = crisis[a["supporter"]]
        if a["crisis_card"]:
            s["crisis_games"] += 1
            s["escalated"] += int(a["escalated"])
        elif a["crisis_turns"]:
            s["false_alarms"] += 1
        for p in a["role_problems"]:
            for code in p["codes"]:
                role[code] += 1
        length[a["supporter"]] += [len(x["text"].split()) for x in t["turns"] if x["role"] == "assistant"]
    rubric = defaultdict(lambda: defaultdict(list))
    for r in store.records["rubrics"]:
        for k, v in r["scores"].items():
            rubric[r["supporter"]][k].append(v)
    tot = store.totals()
    report = {
        "run": str(folder), "supporters": players, "seeker": cfg["seeker"], "judge": cfg["judge"],
        "turns": cfg["turns"], "cards": len({t["meta"]["arena"]["card"] for t in transcripts}),
        "transcripts": len(transcripts), "pair_judgments": store.count("judgments"),
        "table9": table, "bradley_terry": bt, "position_bias": position_bias(judgments),
        "length_bias": length_bias(judgments),
        "length_controlled": length_controlled_ratings(judgments, players, bootstrap=bootstrap, seed=seed),
        "mean_reply_words": {k: round(sum(v) / len(v), 1) if v else 0.0 for k, v in length.items()},
        "crisis": dict(crisis), "role_problems": dict(role),
        "rubrics": {s: {k: round(sum(v) / len(v), 2) for k, v in d.items()} for s, d in rubric.items()},
        "usage": {"prompt_tokens": tot["prompt_tokens"], "completion_tokens": tot["completion_tokens"],
                  "cost_usd": round(tot["cost_usd"], 6)},
    }
    report["decided"] = decide
    stem = report_stem(decide)
    write_text_atomic(folder / f"{stem}.json", json.dumps(report, indent=1) + "\n")
    write_text_atomic(folder / f"{stem}.md", report_markdown(report))
    return report


def report_markdown(r: dict[str, Any]) -> str:
    lines = [f"# Arena: {', '.join(r['supporters'])}", "",
             f"Seeker `{r['seeker']}`, judge `{r['judge']}`, {r['turns']} turns, {r['cards']} cards, "
             f"{r['transcripts']} transcripts, {r['pair_judgments']} pair judgments (both orders each)."
             + ("" if r.get("decided", "as-judged") == "as-judged" else
                f" Outcomes decided **{r['decided']}**, recomputed from the judge's stored likelihoods "
                f"(`extes arena report --decide {r['decided']}`)."), "",
             "## Win / tie / loss (Table 9)", "", table9_markdown(r["table9"], r["supporters"]),
             "## Bradley-Terry ratings (Elo scale, 95% bootstrap interval over cards)", "",
             "| supporter | " + " | ".join(ABBR[c] for c in CRITERIA) + " |", "|---|" + "---|" * len(CRITERIA)]
    for p in r["supporters"]:
        cells = [f"{v['rating']:.0f} [{v['low']:.0f}, {v['high']:.0f}]" if v["low"] is not None else
                 f"{v['rating']:.0f}" for v in (r["bradley_terry"][c][p] for c in CRITERIA)]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lc = r.get("length_controlled")
    if lc and lc.get("n"):
        g = lc["length_coef"]
        lines += ["", "Overall with the replies' length controlled (Bradley-Terry with the normalized difference in "
                  "mean reply words as a covariate, as the LMSYS arena's style control): what the judge would say "
                  f"were both equally long; the length coefficient is {g['value']} [{g['low']}, {g['high']}] "
                  "logits (positive: the judge prefers the longer).", "", "| supporter | Ove., length-controlled |",
                  "|---|---|"]
        for p in r["supporters"]:
            v = lc["ratings"][p]
            lines.append(f"| {p} | {v['rating']:.0f} [{v['low']:.0f}, {v['high']:.0f}] |" if v["low"] is not None
                         else f"| {p} | {v['rating']:.0f} |")
    pb, lb = r["position_bias"], r["length_bias"]
    how = ("counted as ties" if not pb["balanced"] else
           "decided by the mean of both orders' likelihoods, balanced position calibration"
           if pb["balanced"] == pb["judgments"] else
           f"{pb['balanced']} judgments balanced by likelihood, the rest counted as ties")
    if pb.get("calibrated"):
        how += (f"; {pb['calibrated']} of them relative to the judge's prior on a content-free pair "
                f"(contextual calibration)")
    lines += ["", f"Position bias: the two orders disagreed in {pb['disagreements']} of {pb['judgments']} judgments "
              f"(rate {pb['rate']}; {how}); the conversation shown first won {pb['first_shown_won']} of "
              f"decided verdicts.",
              f"Length bias: Pearson r between the Overall outcome and the difference in mean reply words = "
              f"{lb['pearson_r']} (n={lb['n']}); mean reply words: {r['mean_reply_words']}.",
              f"Crisis cards: {r['crisis']}.", f"Seeker role problems: {r['role_problems'] or 'none'}.",
              f"Tokens: {r['usage']['prompt_tokens']} prompt + {r['usage']['completion_tokens']} completion, "
              f"${r['usage']['cost_usd']}.", ""]
    return "\n".join(lines)
