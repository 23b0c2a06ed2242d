"""Train from a JSONL file of labels; the entry point for ``accelerate launch``.

    accelerate launch --num_processes 2 --cpu -m prefloop.model.launch \\
        --data labels.jsonl --config config.json --out model_dir

Each JSONL line: {"prompt", "response_a", "response_b", "choice" ('a'|'b'|'tie'|'skip'),
optional "strength", "weight"}. HH-style {"chosen", "rejected"} lines are accepted too
(prompt = common prefix). The main process saves the model and ``report.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

from prefloop.config import ModelConfig
from prefloop.model.data import PreferenceExample
from prefloop.model.ensemble import RewardEnsemble
from prefloop.types import Choice

__all__ = ["hh_example", "main", "read_examples"]


def hh_example(chosen: str, rejected: str) -> PreferenceExample:
    """An HH-RLHF {"chosen", "rejected"} line as a pair: prompt = the shared dialogue prefix."""
    marker = "\n\nAssistant:"
    cut = chosen.rfind(marker)
    n = cut + len(marker) if cut >= 0 else 0
    if n == 0 or not rejected.startswith(chosen[:n]):
        n = 0  # fall back to the longest common prefix
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
    return PreferenceExample(chosen[:n], chosen[n:], rejected[n:], Choice.A)


def read_examples(path: str | Path) -> list[PreferenceExample]:
    """Examples from a .jsonl or .jsonl.gz file (prefloop or HH format)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            if "chosen" in row:
                out.append(hh_example(row["chosen"], row["rejected"]))
            else:
                out.append(
                    PreferenceExample(
                        row["prompt"],
                        row["response_a"],
                        row["response_b"],
                        Choice(row["choice"]),
                        row.get("strength"),
                        row.get("weight", 1.0),
                    )
                )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="labels (.jsonl / .jsonl.gz)")
    ap.add_argument("--config", help="ModelConfig JSON (defaults: mode=finetune, k=1)")
    ap.add_argument("--out", required=True, help="folder for the saved model and report.json")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N examples")
    args = ap.parse_args(argv)
    cfg = {"mode": "finetune", "k": 1}
    if args.config:
        cfg.update(json.loads(Path(args.config).read_text()))
    config = ModelConfig.from_dict(cfg)
    examples = read_examples(args.data)[: args.limit]
    ens, report = RewardEnsemble.train(examples, config, progress=False)
    if os.environ.get("RANK", "0") == "0":
        out = Path(args.out)
        ens.save(out)
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
