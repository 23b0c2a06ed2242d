"""Learnable toy preference data: the response with a 'good' word wins."""

from __future__ import annotations

import random

from prefloop.model import PreferenceExample
from prefloop.types import Choice

GOOD = ["good", "great", "helpful", "kind", "excellent", "clear"]
BAD = ["bad", "awful", "rude", "terrible", "useless", "wrong"]


def make_examples(n: int, seed: int = 0, offset: int = 0) -> list[PreferenceExample]:
    """n pairs; the response with a 'good' word wins; orientation alternates."""
    rng = random.Random(seed)
    out = []
    for i in range(offset, offset + n):
        topic = rng.choice(["cats", "tax", "soup", "trains", "chess", "rain"])
        good = f"A {rng.choice(GOOD)} reply about {topic}, number {i}."
        bad = f"A {rng.choice(BAD)} reply about {topic}, number {i}."
        prompt = f"Tell me about {topic} ({i})."
        if i % 2:
            out.append(PreferenceExample(prompt, good, bad, Choice.A))
        else:
            out.append(PreferenceExample(prompt, bad, good, Choice.B))
    return out


def pairs_of(examples: list[PreferenceExample]) -> list[tuple[str, str, str]]:
    return [(e.prompt, e.response_a, e.response_b) for e in examples]
