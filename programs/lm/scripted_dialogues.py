"""Deterministic, varied, valid dialogues for the scripted LM (a fake for fast tests; real LMs are tested too).

Every utterance is a template plus a clause of random everyday words, so that two generated dialogues share few
word 3-grams and pass the near-duplicate check, as samples from a real model with temperature would.
"""

from __future__ import annotations

import json
import random

NAMES = "Ana Ben Chloe Dev Elif Farid Grace Hugo Iris Jonas Kemi Liam Maya Noor Omar Priya Quinn Rosa Sam Tariq".split()
PLACES = "Leeds Lagos Lyon Denver Pune Osaka Quito Perth Austin Cork Tallinn Accra Bergen Hanoi Tucson".split()
WORDS = ("morning kitchen bus deadline phone sister cousin rent laptop class shift weekend dinner coffee email "
         "doctor garden train rain budget meeting exam project neighbor dog cat letter birthday gym coach "
         "manager landlord message window bridge market song movie book recipe jacket bike ticket lunch "
         "evening hallway office screen bill holiday flight storm teacher friend partner brother father mother "
         "notebook calendar sandwich umbrella painting guitar balcony elevator library pharmacy bakery").split()
USER = [
    "I keep thinking about what happened with {name} in {place}, {detail}.",
    "Honestly it started {n} weeks ago, {detail}.",
    "I don't know, maybe I'm overreacting, but {detail}.",
    "The worst part is that {name} doesn't even know, {detail}.",
    "Yesterday was hard again, {detail}.",
    "I tried talking about it once, {detail}.",
    "That actually makes sense, {detail}.",
    "Thanks, I think I can try that this week, {detail}.",
]
ASSISTANT = {
    "Reflective Statements": "So what I'm hearing is that {detail} has been weighing on you.",
    "Clarification": "Can you tell me a bit more about when {detail} started?",
    "Emotional Validation": "It makes complete sense to feel this way when {detail}.",
    "Empathetic Statements": "I can imagine how draining it is, especially with {detail}.",
    "Affirmation": "You've handled a lot already, and reaching out about {detail} shows real strength.",
    "Offer Hope": "Things can shift, and {detail} won't always feel this heavy.",
    "Avoid Judgment and Criticism": "There's nothing wrong with how you reacted to {detail}.",
    "Suggest Options": "One option might be to set aside a moment for {detail} and see how it feels.",
    "Collaborative Planning": "Let's make a small plan together around {detail}, step by step.",
    "Provide Different Perspectives": "Another way to look at it is that {detail} says more about the situation.",
    "Reframe Negative Thoughts": "Instead of seeing it as failing, maybe {detail} is a sign of how much you care.",
    "Share Information": "Many people find that routines help when {detail} keeps coming up.",
    "Normalize Experiences": "A lot of people go through something similar when {detail}.",
    "Promote Self-Care Practices": "Please make some room for rest too, even with {detail}.",
    "Stress Management": "A short walk or slow breathing can ease the stress of {detail}.",
    "Others": "I'm glad you told me about {detail}.",
}


def _detail(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 9)))


def _fill(template: str, rng: random.Random) -> str:
    return template.format(name=rng.choice(NAMES), place=rng.choice(PLACES), n=rng.randint(2, 9), detail=_detail(rng))


def compose_record(scene: str, seed: int) -> dict:
    """One ExTES-format record for `scene`, determined by `seed`."""
    rng = random.Random(seed)
    strategies = list(ASSISTANT)
    content = []
    for _ in range(rng.randint(6, 9)):
        content.append({"User": _fill(rng.choice(USER), rng)})
        strategy = rng.choice(strategies)
        content.append({"AI Strategy": strategy, "AI": _fill(ASSISTANT[strategy], rng)})
    name, place = rng.choice(NAMES), rng.choice(PLACES)
    description = (f"{name}, {rng.randint(19, 64)}, from {place}, is struggling after "
                   f"{_detail(rng)} and wants someone to talk to.")
    return {"scene": scene, "description": description, "content": content}


def compose_json(scene: str, seed: int) -> str:
    return json.dumps(compose_record(scene, seed))


def compose_description(scene: str, seed: int) -> str:
    rng = random.Random(seed)
    return f"I'm {rng.choice(NAMES)} from {rng.choice(PLACES)} and {_detail(rng)} has turned my week upside down."


def compose_user_message(seed: int) -> str:
    return _fill(random.Random(seed).choice(USER), random.Random(seed + 1))
