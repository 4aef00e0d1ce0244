"""Validation of generated dialogues: pure checks, each with a reason code, each tested alone.

Hard failures reject a dialogue; soft ones send it to human review. Safe fixes (label normalization, whitespace,
merging consecutive turns of one role) are applied and recorded in `meta.fixes`.

| code | severity | check |
|---|---|---|
| parse | hard | the output is one JSON object in the ExTES release format |
| schema | hard | it makes a Dialogue (scene, description, non-empty turns) |
| alternation | hard | after merging consecutive same-role turns, user first and strictly alternating |
| unknown_strategy | hard | every label is one of the 16 after normalization |
| unlabelled | soft | every assistant turn but an opening greeting and a closing goodbye has a strategy |
| length | hard | 8-40 utterances |
| utterance_length | hard | every utterance 2-1200 characters |
| wrong_scene | hard | the scene is the one asked for |
| vague_description | soft | the description has at least 8 words |
| ai_description | hard | the description is not in an AI's voice ("as an AI language model, I don't have ...") |
| repeated_turn | hard | no turn of 6+ words repeats an earlier turn of the same role (3-gram Jaccard <= 0.8) |
| seeker_role | hard | no user turn speaks as the supporter (the `ROLE_FLIP` phrases the arena's role checks use) |
| demo_copy | hard | 3-gram Jaccard with any of its demos <= 0.5 |
| near_duplicate | hard | 3-gram Jaccard with any accepted dialogue <= `dup_threshold` (default 0.5) |
| unsafe | soft | no assistant turn trips the crisis rules or a slur/profanity screen |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from extes.corpus.dedup import DedupIndex, jaccard, shingles
from extes.corpus.labels import normalizer
from extes.corpus.safety_rules import default_rules
from extes.signatures.dialogue import Dialogue, Turn

MIN_UTT, MAX_UTT = 8, 40
MIN_CHARS, MAX_CHARS = 2, 1200
MIN_DESCRIPTION_WORDS = 8
DEMO_COPY = 0.5
REPEAT = 0.8
HARMFUL = re.compile(r"\b(kill|hurt|harm|cut|starve) (yourself|themselves)\b|\byou should (just )?die\b|\bkys\b"
                     r"|\bnobody (would|will) miss you\b", re.I)
# A help-seeker that talks like the supporter (synthesis with a small teacher did; the arena's seeker checks too).
ROLE_FLIP = re.compile(
    r"\bhow (can|may) i (help|support|assist) you\b|\bit sounds like you\b|\bi'?m here (for|to support) you\b"
    r"|\bas an ai\b|\bi'?m an? (ai|assistant|language model|chatbot)\b|\bi understand how you feel\b"
    r"|\bwhat'?s on your mind\b|\bhow are you feeling (today|now)\b|\byou (should|could) try\b"
    r"|\bis there anything (else )?i can (do|help) (for|to help) you\b|\bthank you for sharing\b"
    r"|^\s*(supporter|assistant|therapist)\s*:"
    r"|\bremember,? (that )?it'?s (important|okay|ok)\b|\bdon'?t hesitate to reach out\b"
    r"|\bif you (ever )?need (anything|someone to talk to|support|further support)\b|^\s*it'?s (okay|ok) to feel\b"
    r"|\bi (can'?t|cannot) assist\b|\bcould you (please )?provide more (information|context|details)\b"
    r"|^\s*i'?m sorry to hear (that|about)\b",
    re.I,
)
AI_VOICE = re.compile(r"\bas an ai\b|\blanguage model\b|\bi (can'?t|cannot) (assist|help) with (that|this)\b"
                      r"|\bi (don'?t|do not) have (access to )?(personal|feelings|emotions)", re.I)
PROFANITY = re.compile(r"\b(fuck\w*|shit\w*|bitch\w*|cunt\w*|retard\w*|fag\w*|nigg\w*|whore\w*|slut\w*)\b", re.I)


@dataclass(frozen=True)
class Problem:
    code: str
    severity: str  # "hard" | "soft"
    message: str


@dataclass
class Outcome:
    """A checked dialogue: the fixed dialogue (if it could be read), its problems and the fixes applied."""

    dialogue: Dialogue | None
    problems: list[Problem] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(p.severity == "hard" for p in self.problems):
            return "rejected"
        return "queued" if self.problems else "accepted"

    def reasons(self) -> list[str]:
        return [p.code for p in self.problems]


def merge_consecutive(turns: list[Turn]) -> tuple[list[Turn], int]:
    """Merge runs of one role into one turn (texts joined by a space; the first label of the run is kept)."""
    out: list[Turn] = []
    merged = 0
    for t in turns:
        if out and out[-1].role == t.role:
            prev = out[-1]
            out[-1] = Turn(role=t.role, text=f"{prev.text} {t.text}", strategy=prev.strategy or t.strategy,
                           strategy_raw=prev.strategy_raw or t.strategy_raw)
            merged += 1
        else:
            out.append(t)
    return out, merged


def normalize_labels(turns: list[Turn]) -> tuple[list[Turn], list[str], int]:
    """Canonical labels and stripped text; returns (turns, unknown labels, number changed)."""
    norm = normalizer("extes")
    out, unknown, changed = [], [], 0
    for t in turns:
        text = " ".join(t.text.split())
        changed += text != t.text
        if t.role == "assistant":
            n = norm.normalize(t.strategy)
            if not n.known:
                unknown.append(str(t.strategy))
            if n.changed and n.known:
                changed += 1
                raw = t.strategy_raw or t.strategy
                out.append(Turn(role="assistant", text=text, strategy=n.label, strategy_raw=raw))
                continue
        out.append(Turn(role=t.role, text=text, strategy=t.strategy, strategy_raw=t.strategy_raw))
    return out, unknown, changed


def check_alternation(turns: list[Turn]) -> Problem | None:
    if not turns or turns[0].role != "user":
        return Problem("alternation", "hard", "the dialogue must start with the user")
    return None


def check_labels(turns: list[Turn]) -> Problem | None:
    assistant = [i for i, t in enumerate(turns) if t.role == "assistant"]
    missing = [i for k, i in enumerate(assistant) if turns[i].strategy is None and k not in (0, len(assistant) - 1)]
    if missing:
        return Problem("unlabelled", "soft", f"assistant turns {missing} have no strategy")
    return None


def check_length(turns: list[Turn]) -> list[Problem]:
    out = []
    if not MIN_UTT <= len(turns) <= MAX_UTT:
        out.append(Problem("length", "hard", f"{len(turns)} utterances; expected {MIN_UTT}-{MAX_UTT}"))
    bad = [i for i, t in enumerate(turns) if not MIN_CHARS <= len(t.text) <= MAX_CHARS]
    if bad:
        out.append(Problem("utterance_length", "hard", f"utterances {bad} are outside {MIN_CHARS}-{MAX_CHARS} chars"))
    return out


def check_scene(d: Dialogue, scene: str) -> Problem | None:
    if d.scene.strip().lower() != scene.strip().lower():
        return Problem("wrong_scene", "hard", f"scene {d.scene!r} is not the requested {scene!r}")
    return None


def check_description(d: Dialogue) -> Problem | None:
    if len(d.description.split()) < MIN_DESCRIPTION_WORDS:
        return Problem("vague_description", "soft", f"description has under {MIN_DESCRIPTION_WORDS} words")
    return None


def check_ai_description(d: Dialogue) -> Problem | None:
    m = AI_VOICE.search(d.description or "")
    if m:
        return Problem("ai_description", "hard", f"the description is in an AI's voice ({m.group(0)!r})")
    return None


def check_repeats(turns: list[Turn]) -> Problem | None:
    seen: list[tuple[str, set]] = []
    for i, t in enumerate(turns):
        mine = shingles(t.text) if len(t.text.split()) >= 6 else set()  # "Thank you." twice is a conversation
        if mine and any(role == t.role and jaccard(mine, other) > REPEAT for role, other in seen):
            return Problem("repeated_turn", "hard", f"turn {i} repeats an earlier {t.role} turn")
        seen.append((t.role, mine))
    return None


def check_seeker_role(turns: list[Turn]) -> Problem | None:
    for i, t in enumerate(turns):
        m = ROLE_FLIP.search(t.text) if t.role == "user" else None
        if m:
            return Problem("seeker_role", "hard", f"user turn {i} speaks as the supporter ({m.group(0)!r})")
    return None


def dialogue_text(d: Dialogue) -> str:
    return " ".join(t.text for t in d.turns)


def check_demo_copy(d: Dialogue, demos: list[Dialogue]) -> Problem | None:
    sh = shingles(dialogue_text(d))
    for demo in demos:
        sim = jaccard(sh, shingles(dialogue_text(demo)))
        if sim > DEMO_COPY:
            return Problem("demo_copy", "hard", f"3-gram Jaccard {sim:.2f} with its demo {demo.id}")
    return None


def check_duplicate(d: Dialogue, index: DedupIndex, threshold: float) -> Problem | None:
    other, sim = index.nearest(dialogue_text(d))
    if other is not None and sim > threshold:
        return Problem("near_duplicate", "hard", f"3-gram Jaccard {sim:.2f} with accepted {other}")
    return None


def check_unsafe(d: Dialogue) -> Problem | None:
    rules = default_rules()
    for i, t in enumerate(d.turns):
        if t.role != "assistant":
            continue
        if PROFANITY.search(t.text) or HARMFUL.search(t.text) or rules.match(t.text):
            return Problem("unsafe", "soft", f"assistant turn {i} needs a look (profanity or crisis language)")
    return None


def validate(d: Dialogue, *, scene: str, demos: list[Dialogue], index: DedupIndex | None = None,
             dup_threshold: float = 0.5) -> Outcome:
    """Apply the safe fixes, then every check; the outcome says accepted, queued (soft) or rejected (hard)."""
    fixes = []
    turns, merged = merge_consecutive(d.turns)
    if merged:
        fixes.append(f"merged {merged} consecutive same-role turns")
    turns, unknown, changed = normalize_labels(turns)
    if changed:
        fixes.append(f"normalized {changed} labels or whitespace")
    fixed = d.model_copy(update={"turns": turns}, deep=True)
    fixed.meta.fixes = fixes
    problems: list[Problem] = []
    if unknown:
        problems.append(Problem("unknown_strategy", "hard", f"labels not among the 16: {sorted(set(unknown))}"))
    for p in [check_alternation(turns), check_labels(turns), *check_length(turns), check_scene(fixed, scene),
              check_description(fixed), check_ai_description(fixed), check_seeker_role(turns), check_repeats(turns),
              check_demo_copy(fixed, demos),
              check_duplicate(fixed, index, dup_threshold) if index is not None else None, check_unsafe(fixed)]:
        if p is not None:
            problems.append(p)
    return Outcome(fixed, problems, fixes)
