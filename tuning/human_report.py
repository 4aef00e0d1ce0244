"""`extes human-eval report`: Table 9 from a study's answers (win/tie/loss per pair and criterion, participants),
Bradley-Terry ratings over participants, and Fleiss' kappa where several people rated the same pair."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import dspy

from extes.corpus.rating import fleiss_kappa
from extes.errors import InputError
from extes.programs.adapter import SmallChatAdapter
from extes.programs.arena_judge import PairwiseJudge, VerdictJudge
from extes.programs.human_eval.store import StudyStore
from extes.signatures.arena import CRITERIA
from extes.tuning.arena_report import table9_markdown
from extes.tuning.ratings import cohen_kappa, ratings, win_tie_loss

OUTCOME = {"first": "a", "second": "b", "tie": "tie"}
CATEGORIES = ("a", "tie", "b")


def study_report(folder: Path, *, bootstrap: int = 500) -> dict[str, Any]:
    """The study's Table 9, ratings and agreement, with every participant's answers."""
    if not (Path(folder) / "study.sqlite").exists():
        raise InputError(f"{folder}: no study.sqlite; give the --out folder of `extes human-eval serve`")
    store = StudyStore(folder)
    players = store.settings().get("supporters") or []
    answers = store.answers()
    judgments = [{"unit": a["code"], "a": a["first"], "b": a["second"], "criterion": a["criterion"],
                  "outcome": OUTCOME[a["choice"]]} for a in answers]
    rated = {a["code"] for a in answers}
    per_participant = []
    for p in store.participants():
        mine = {f"{a['first']} vs {a['second']}: {a['criterion']}": a["choice"] for a in answers
                if a["code"] == p["code"]}
        per_participant.append({"code": p["code"], "order": p["order"], "stage": p["stage"], "issue": p["issue"],
                                "messages": len(store.messages(p["code"])), "answers": mine})
    return {
        "study": str(folder), "supporters": players, "participants": len(rated),
        "participants_started": len(per_participant),
        "table9": win_tie_loss(judgments, players, list(CRITERIA)),
        "bradley_terry": {c: ratings(judgments, players, criterion=c, bootstrap=bootstrap) for c in CRITERIA},
        "fleiss_kappa": agreement(judgments, players), "per_participant": per_participant,
    }


def agreement(judgments: list[dict], players: list[str]) -> dict[str, Any]:
    """Per pair of supporters rated by >= 2 people: Fleiss' kappa over its five questions (categories: first
    better, no difference, second better), on the people who answered all five."""
    out = {}
    for a, b in combinations(players, 2):
        by_person: dict[str, dict[str, str]] = defaultdict(dict)
        for j in judgments:
            if {j["a"], j["b"]} == {a, b}:
                o = j["outcome"] if j["a"] == a else {"a": "b", "b": "a", "tie": "tie"}[j["outcome"]]
                by_person[j["unit"]][j["criterion"]] = o
        raters = [r for r in by_person.values() if set(r) == set(CRITERIA)]
        key = f"{a} vs {b}"
        if len(raters) < 2:
            out[key] = {"raters": len(raters), "kappa": None}
            continue
        table = [[sum(1 for r in raters if r[c] == k) for k in CATEGORIES] for c in CRITERIA]
        out[key] = {"raters": len(raters), "kappa": round(fleiss_kappa(table), 4)}
    return out


def study_markdown(r: dict[str, Any]) -> str:
    kappa = "; ".join(f"{k}: {v['kappa']} ({v['raters']} raters)" for k, v in r["fleiss_kappa"].items())
    return "\n".join([f"# Human evaluation: {', '.join(r['supporters'])}", "",
                      f"{r['participants']} participants answered ({r['participants_started']} started).", "",
                      table9_markdown(r["table9"], r["supporters"]), f"Fleiss' kappa: {kappa}", ""])


VERDICT = {"first": "A", "second": "B", "tie": "Tie"}


def _render(msgs: list[dict]) -> str:
    return "\n".join(f"{'Seeker' if m['role'] == 'user' else 'Supporter'}: {' '.join(m['text'].split())}"
                      for m in msgs)


def study_examples(folder: Path) -> list[dspy.Example]:
    """People's answers as judge examples: (question, conversation with the first system, with the second) →
    A | B | Tie, for `extes compile judge` and for agreement."""
    if not (Path(folder) / "study.sqlite").exists():
        raise InputError(f"{folder}: no study.sqlite; give the --out folder of `extes human-eval serve`")
    store = StudyStore(folder)
    out = []
    for p in store.participants():
        slots = {name: i for i, name in enumerate(p["order"])}
        for a in (x for x in store.answers() if x["code"] == p["code"]):
            conv_a = _render(store.messages(p["code"], slots[a["first"]]))
            conv_b = _render(store.messages(p["code"], slots[a["second"]]))
            out.append(dspy.Example(question=CRITERIA[a["criterion"]], conversation_a=conv_a, conversation_b=conv_b,
                                    verdict=VERDICT[a["choice"]], criterion=a["criterion"],
                                    id=f"{p['code']}:{a['first']}:{a['second']}:{a['criterion']}")
                       .with_inputs("question", "conversation_a", "conversation_b"))
    if not out:
        raise InputError(f"{folder}: no answers yet; participants answer the questions at the end of the study")
    return out


def judge_agreement(folder: Path, lm, program: str | None = None) -> dict[str, Any]:
    """The judge (both orders, decided as in the arena: `PairwiseJudge.verdict`) against people on the study's
    own pairs: Cohen's kappa overall and per criterion, raw agreement and the judge's position bias."""
    examples = study_examples(folder)
    single = VerdictJudge()
    if program:
        single.load(program)
    judge = PairwiseJudge()
    judge.judge = single.judge
    people, machine, biased = [], [], 0
    by_criterion: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    with dspy.context(lm=lm, adapter=SmallChatAdapter()):
        for ex in examples:
            outcome, bias, *_ = judge.verdict(ex.question, ex.conversation_a, ex.conversation_b)
            got = {"a": "A", "b": "B", "tie": "Tie"}[outcome]
            biased += int(bias)
            people.append(ex.verdict)
            machine.append(got)
            by_criterion[ex.criterion][0].append(ex.verdict)
            by_criterion[ex.criterion][1].append(got)
    kappa = cohen_kappa(people, machine)
    return {"study": str(folder), "items": len(examples), "program": program,
            "agreement": round(sum(x == y for x, y in zip(people, machine, strict=True)) / len(people), 4),
            "cohen_kappa": None if kappa is None else round(kappa, 4),
            "per_criterion": {c: None if (k := cohen_kappa(*v)) is None else round(k, 4)
                              for c, v in by_criterion.items()},
            "position_bias_rate": round(biased / len(examples), 4)}
