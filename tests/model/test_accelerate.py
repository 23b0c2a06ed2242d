"""The finetune loop, unchanged, under ``accelerate launch`` with 2 CPU processes.

accelerate 1.15 sends ``--cpu --num_processes 2`` to its simple launcher, which starts ONE
process unless MPI is set up; ``--multi_gpu`` on a machine without GPUs goes through torchrun
and gives two processes of distributed type MULTI_CPU (gloo all-reduce), which is what we
want to test. (With CUDA present, the same command would use the GPUs.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from model_toydata import make_examples, pairs_of

from prefloop.model import RewardEnsemble

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="needs accelerate")
def test_two_process_data_parallel(tmp_path: Path) -> None:
    data = tmp_path / "labels.jsonl"
    with data.open("w") as fh:
        for e in make_examples(24):
            row = {"prompt": e.prompt, "response_a": e.response_a, "response_b": e.response_b}
            fh.write(json.dumps({**row, "choice": e.choice.value}) + "\n")
    cfg = {"mode": "finetune", "k": 1, "max_length": 24, "epochs": 1, "batch_size": 4, "val_fraction": 0.2}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "model"
    cmd = [
        "accelerate",
        "launch",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--multi_gpu",  # see the module docstring: on a GPU-less machine this is MULTI_CPU (gloo)
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "prefloop.model.launch",
        "--data",
        str(data),
        "--config",
        str(tmp_path / "config.json"),
        "--out",
        str(out),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["num_processes"] == 2
    assert report["train_loss"] < report["train_loss_start"] + 0.5  # it trained and stayed finite
    ens = RewardEnsemble.load(out)
    pred = ens.predict(pairs_of(make_examples(4, offset=100)))
    assert pred.p_a_members.shape == (4, 1)
