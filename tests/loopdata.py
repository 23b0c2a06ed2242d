"""Small generated preference data with a learnable signal, shared by loop tests and the demo fallback."""

from __future__ import annotations

import json
import random
from pathlib import Path

from prefloop.types import Choice, PairRecord, content_hash, pair_key

TOPICS = ["tea", "bikes", "python", "gardening", "taxes", "sleep", "running", "chess", "bread", "rain"]
GOOD = ["clear", "kind", "accurate", "helpful", "careful", "honest"]
BAD = ["rude", "wrong", "careless", "dismissive", "misleading", "lazy"]


def make_records(n: int, seed: int = 0) -> list[tuple[PairRecord, Choice]]:
    """``n`` unlabeled pairs and the answer a careful annotator gives (the 'good' response wins)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Question {i}: what should I know about {topic}?"
        good = f"A {rng.choice(GOOD)} and {rng.choice(GOOD)} answer about {topic}, number {i}."
        bad = f"A {rng.choice(BAD)} and {rng.choice(BAD)} answer about {topic}, number {i}."
        a, b, truth = (good, bad, Choice.A) if rng.random() < 0.5 else (bad, good, Choice.B)
        out.append((PairRecord(prompt=prompt, response_a=a, response_b=b), truth))
    return out


def write_oracle(records: list[tuple[PairRecord, Choice]], path: Path) -> Path:
    """Oracle JSONL in canonical orientation (responses ordered by content hash)."""
    with path.open("w") as handle:
        for record, truth in records:
            ha, hb = content_hash(record.response_a), content_hash(record.response_b)
            key = pair_key(content_hash(record.prompt), ha, hb)
            choice = truth if ha < hb else truth.flipped()
            handle.write(json.dumps({"pair_key": key, "choice": choice.value}) + "\n")
    return path
