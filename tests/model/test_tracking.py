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
