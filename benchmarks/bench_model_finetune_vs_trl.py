"""Benchmark 1: finetune-mode training throughput and held-out accuracy vs TRL RewardTrainer.

Same backbone (offline all-MiniLM-L6-v2), same HH pairs and split, max_length 256 (left
truncation for both), batch 16, same epochs / learning rate (TRL's default 1e-4, linear
decay, no weight decay, grad clip 1), dropout off, fp32 unless --bf16, no evaluation during
training for either. Prints what it measured as JSON lines.

    python benchmarks/bench_model_finetune_vs_trl.py --system both --epochs 2
    python benchmarks/bench_model_finetune_vs_trl.py --system ours --no-share-prompt   # the gain's split
    python benchmarks/bench_model_finetune_vs_trl.py --system ours --val-fraction 0.1  # with early stopping
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1].parent / "shared/data/hh-rlhf-harmless-base-test.dev.jsonl.gz"


def load_split(path: Path, n_train: int | None, n_test: int | None, seed: int = 0) -> tuple[list, list]:
    from prefloop.model.launch import read_examples

    ex = read_examples(path)
    perm = np.random.default_rng(seed).permutation(len(ex))
    cut = int(0.8 * len(ex))
    train = [ex[i] for i in perm[:cut]][:n_train]
    test = [ex[i] for i in perm[cut:]][:n_test]
    return train, test


def run_ours(train: list, test: list, args: argparse.Namespace) -> dict:
    from prefloop.model import ModelConfig, RewardEnsemble, evaluate_predictions

    cfg = ModelConfig(
        backbone=args.backbone,
        mode="finetune",
        k=1,
        max_length=args.max_length,
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=0.0,
        val_fraction=args.val_fraction,
        bf16=args.bf16,
        share_prompt=not args.no_share_prompt,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    ens, rep = RewardEnsemble.train(train, cfg, progress=False)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    pred = ens.predict([(e.prompt, e.response_a, e.response_b) for e in test])
    score_s = time.perf_counter() - t1
    m = evaluate_predictions(
        pred.p_a,
        [e.choice for e in test],
        p_tie=pred.p_tie,
        p_b=pred.p_b,
        reward_a=pred.reward_a,
        reward_b=pred.reward_b,
        len_a=np.array([len(e.response_a) for e in test]),
        len_b=np.array([len(e.response_b) for e in test]),
    )
    return {
        "system": "prefloop-finetune",
        "share_prompt": rep["share_prompt"],
        "pairs_per_s_train_steps": rep["pairs_per_s"],
        "pairs_per_s_fit": len(train) * args.epochs / rep["fit_seconds"],
        "fit_seconds": rep["fit_seconds"],
        "wall_seconds_incl_load": wall,
        "accuracy": float((pred.p_a > pred.p_b).mean()),
        "score_seconds": score_s,
        "final_train_loss": rep["train_loss"],
        "heldout_metrics": m,
    }


def run_trl(train: list, test: list, args: argparse.Namespace) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from prefloop.model import default_backbone

    torch.manual_seed(args.seed)
    backbone = args.backbone or default_backbone()
    tok = AutoTokenizer.from_pretrained(backbone)
    tok.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)

    def ids(texts: list[str]) -> list[list[int]]:
        return tok(texts, truncation=True, max_length=args.max_length)["input_ids"]

    ds = Dataset.from_dict(
        {
            "chosen_ids": ids([e.prompt + e.response_a for e in train]),
            "rejected_ids": ids([e.prompt + e.response_b for e in train]),
        }
    )
    cuda = torch.cuda.is_available()
    conf = RewardConfig(
        output_dir="/tmp/trl_bench",
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        max_length=args.max_length,
        use_cpu=not cuda,
        bf16=args.bf16,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        disable_dropout=True,
        seed=args.seed,
        dataloader_num_workers=0,
    )
    trainer = RewardTrainer(model=model, args=conf, train_dataset=ds, processing_class=tok)
    out = trainer.train()
    runtime = out.metrics["train_runtime"]
    model.eval()
    dev = next(model.parameters()).device
    correct = []
    with torch.no_grad():
        for s in range(0, len(test), 32):
            chunk = test[s : s + 32]
            rs = []
            for side in ("response_a", "response_b"):
                enc = tok(
                    [e.prompt + getattr(e, side) for e in chunk],
                    truncation=True,
                    max_length=args.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(dev)
                rs.append(model(**enc).logits.squeeze(-1).float().cpu())
            correct += (rs[0] > rs[1]).tolist()
    return {
        "system": "trl-RewardTrainer",
        "pairs_per_s_fit": len(train) * args.epochs / runtime,
        "fit_seconds": runtime,
        "accuracy": float(np.mean(correct)),
        "final_train_loss": out.metrics.get("train_loss"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", choices=["ours", "trl", "both"], default="both")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-share-prompt", action="store_true", help="prefloop: one sequence per response")
    ap.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="prefloop: validation share for early stopping (0 = none, as TRL runs here)",
    )
    ap.add_argument("--backbone", default=None, help="model folder (default: offline MiniLM)")
    args = ap.parse_args()
    train, test = load_split(Path(args.data), args.n_train, args.n_test)
    env = {
        "n_train": len(train),
        "n_test": len(test),
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "loadavg_start": os.getloadavg(),
        "bf16": args.bf16,
    }
    print(json.dumps({"setup": env}), flush=True)
    systems = ["ours", "trl"] if args.system == "both" else [args.system]
    for s in systems:
        res = run_ours(train, test, args) if s == "ours" else run_trl(train, test, args)
        res["loadavg_end"] = os.getloadavg()
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
