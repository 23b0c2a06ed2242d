import importlib.util
import json
from pathlib import Path

import pytest

from prefloop.model import ModelConfig
from prefloop.model.tracking import MetricsLog


def test_metrics_json_without_wandb(tmp_path: Path) -> None:
    log = MetricsLog(ModelConfig(metrics_path=str(tmp_path / "m.json")))
    log.log({"epoch": 0, "val_loss": 0.5})
    log.finish({"train_loss": 0.4})
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["history"] == [{"epoch": 0, "val_loss": 0.5}] and data["summary"]["train_loss"] == 0.4


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="needs wandb")
@pytest.mark.slow  # starts an offline W&B run (~9 s)
def test_wandb_offline_without_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = MetricsLog(ModelConfig(wandb_project="prefloop-test"))
    log.log({"epoch": 0, "val_loss": 0.5})
    log.finish({"train_loss": 0.4})
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_config_round_trip_and_help() -> None:
    cfg = ModelConfig(mode="finetune", k=2, lora_r=4)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert ModelConfig.from_dict({**cfg.to_dict(), "unknown_future_field": 1}) == cfg
    helps = ModelConfig.help()
    assert all(helps[name] for name in cfg.to_dict())  # every field documented


def test_training_logs_held_out_metrics_by_length_group(tmp_path: Path, heads_config: ModelConfig) -> None:
    import dataclasses

    from model_toydata import make_examples

    from prefloop.model import RewardEnsemble
    from prefloop.model.length_groups import GROUPS, MIN_GROUP

    path = tmp_path / "metrics.json"
    cfg = dataclasses.replace(heads_config, head_validation="split", val_fraction=0.5, metrics_path=str(path))
    _, report = RewardEnsemble.train(make_examples(80), cfg, progress=False)
    data = json.loads(path.read_text())
    summary = data["summary"]
    assert summary["n_val_pairs"] == 40 and 0.0 <= summary["val_accuracy"] <= 1.0
    assert sum(summary.get(f"length_groups/{g}/n", 0) for g in GROUPS) == 40
    eligible = [
        summary[f"length_groups/{g}/accuracy"] for g in GROUPS if summary.get(f"length_groups/{g}/n", 0) >= MIN_GROUP
    ]
    assert eligible and summary["worst_group_accuracy"] == min(eligible)
    assert summary["length_bias_flag"] == float(summary["worst_group_accuracy"] < 0.5)
    assert any("worst_group_accuracy" in row for row in data["history"]), "logged as a row too (W&B)"
    assert report["worst_group_accuracy"] == summary["worst_group_accuracy"], "and kept in the train report"
    # nothing logged: the report (what the store keeps with the version) still holds them, the same numbers
    _, quiet = RewardEnsemble.train(make_examples(80), dataclasses.replace(cfg, metrics_path=None), progress=False)
    for key in ("val_accuracy", "val_log_loss", "val_length_corr", "worst_group_accuracy"):
        assert quiet[key] == report[key], key
