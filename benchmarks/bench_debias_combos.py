"""Issue #23: the adapted backbone fine-tuned on length-balanced labels (a negative result).

    PREFLOOP_SHARED_DATA=../shared/data python benchmarks/bench_debias_combos.py backbone --json bb.jsonl
    python benchmarks/bench_length_robust.py --table-from bb.jsonl

``backbone`` (adapted mode): the backbone is fine-tuned on length-balanced label weights
(``debias.length_balanced``, what ``balanced`` does to the labels) before its K linear heads are
trained with ``project`` on the plain labels. The shipped methods fine-tune the backbone on the
plain labels (``project_balanced`` reweights only the heads' labels); compare these rows with
the adapted ``project`` / ``project_balanced`` rows of ``bench_length_robust.py`` (same seeds,
same splits), which measure the shipped code.

Settings and metrics as in ``bench_length_robust.py`` (``--settings``, ``--seeds``; helpful
training capped at ``--max-train`` pairs). One JSON line per run, appended to ``--json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_length_robust as bench

import prefloop.model.adapted as adapted
from prefloop.model.debias import length_balanced

_FINETUNE_FIT = adapted.FinetuneModel.fit.__func__  # type: ignore[attr-defined]


def _fit_on_balanced_labels(cls: Any, train: Any, val: Any, config: Any, *args: Any, **kwargs: Any) -> Any:
    return _FINETUNE_FIT(cls, length_balanced(train), val, config, *args, **kwargs)  # the heads keep the plain labels


adapted.FinetuneModel.fit = classmethod(_fit_on_balanced_labels)  # type: ignore[method-assign, assignment]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["backbone"])
    bench.variant_options(ap)
    bench.run_variant(ap.parse_args(), "adapted", "project", "project, backbone on balanced labels")


if __name__ == "__main__":
    main()
