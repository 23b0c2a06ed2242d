"""Finetune mode: the backbone itself learns the reward (full for k=1, K LoRA adapters for k>1).

The loop is written against ``accelerate``: run as is, it uses one process; under
``accelerate launch --num_processes N`` it is data-parallel (each process takes every N-th
length-sorted batch; gradients are all-reduced). Validation is computed identically on
every process, so early stopping decides the same everywhere.
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prefloop.config import ModelConfig
from prefloop.errors import ModelError
from prefloop.model.backbone import autocast, is_decoder, load_backbone, load_tokenizer
from prefloop.model.batching import EncodedPairs, count_groups
from prefloop.model.data import PairTargets, bootstrap_indices
from prefloop.model.debias_finetune import BackboneLengthTerm, check_finetune_debias
from prefloop.model.losses import pair_nll, tie_param_init, tie_share
from prefloop.model.packed import PackedResponses
from prefloop.model.shared_prompt import PairLayout, SharedPairs, check_support, shared_features, shared_rewards
from prefloop.model.tracking import MetricsLog

__all__ = ["FinetuneModel", "RewardNet"]


class RewardNet(nn.Module):
    """Sequence-classification backbone (one logit = reward) + one tie parameter per member."""

    model: Any  # a transformers (or PEFT-wrapped) model: methods beyond nn.Module's

    def __init__(self, model: nn.Module, k: int, tie_model: str) -> None:
        super().__init__()
        self.model = model
        self.theta = nn.ParameterList([nn.Parameter(torch.tensor(tie_param_init(tie_model))) for _ in range(k)])

    def forward(self, inputs: dict[str, torch.Tensor], member: int) -> tuple[torch.Tensor, torch.Tensor]:
        if "pool_index" in inputs:  # shared-prompt pairs: one sequence, two rewards
            return shared_rewards(self.model, inputs), self.theta[member]
        return self.model(**inputs).logits.squeeze(-1), self.theta[member]


def _lora(model: nn.Module, config: ModelConfig) -> nn.Module:
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0)
    peft_model = get_peft_model(model, cfg, adapter_name="m0")
    for i in range(1, config.k):
        peft_model.add_adapter(f"m{i}", cfg)
    return peft_model


def _adamw(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """Fused AdamW (one kernel for all tensors; much faster than the per-tensor loop on CPU)."""
    try:
        return torch.optim.AdamW(groups, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch / unsupported device
        return torch.optim.AdamW(groups)


def _accelerator(config: ModelConfig) -> Any:
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


class FinetuneModel:
    """One backbone (+ K LoRA adapters) trained as a Bradley-Terry reward model.

    ``shared`` says whether pairs are encoded as shared-prompt sequences (see
    ``shared_prompt``). A fresh model falls back to one sequence per response, with a warning,
    when the architecture cannot take that layout; a loaded one (``fallback=False``) must be
    read the way it was trained, so it raises instead.
    """

    def __init__(self, config: ModelConfig, tokenizer: Any, net: RewardNet, fallback: bool = True) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.net = net
        self.saved_at: Path | None = None  # the folder this model was last saved to or loaded from
        self.decoder = is_decoder(self._base_config())
        self.layout = PairLayout.probe(tokenizer, config.template, self.decoder)
        self.shared = False
        if config.share_prompt:
            why = check_support(net.model, tokenizer, self.layout)
            if why is not None and not fallback:
                raise ModelError(
                    f"this model was trained on shared-prompt pairs, but here {why}; "
                    "load it with the transformers version it was trained with"
                )
            if why is not None:
                warnings.warn(
                    f"share_prompt: {why}; encoding each response separately (slower, same model family)",
                    stacklevel=2,
                )
            self.shared = why is None

    def _base_config(self) -> Any:
        m = self.net.model
        return m.get_base_model().config if hasattr(m, "get_base_model") else m.config

    @property
    def lora(self) -> bool:
        return self.config.k > 1

    def _use(self, member: int) -> None:
        if self.lora:
            self.net.model.set_adapter(f"m{member}")  # only this adapter is trainable

    # ---- training -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        train: PairTargets,
        val: PairTargets | None,
        config: ModelConfig,
        parent: Any,
        log: MetricsLog,
        bar: Any,
        adapted_step: bool = False,
    ) -> tuple[FinetuneModel, np.ndarray, dict[str, Any]]:
        check_finetune_debias(config, adapted_step=adapted_step)
        torch.manual_seed(config.seed)
        if parent is not None:  # warm start: the parent's backbone/adapters and tie parameters
            tok, net = parent._impl.tokenizer, copy.deepcopy(parent._impl.net)
        else:
            tok, model = load_backbone(config)
            net = RewardNet(_lora(model, config) if config.k > 1 else model, config.k, config.tie_model)
            theta0 = tie_param_init(config.tie_model, tie_share(train.wins))  # the labels' tie share, not 1/3
            with torch.no_grad():
                for theta in net.theta:
                    theta.fill_(theta0)
        self = cls(config, tok, net)
        acc = _accelerator(config)
        enc_val = self._encode(val.pairs) if val is not None else None
        t0 = time.perf_counter()
        reports = []
        for member in range(config.k):
            sub = train
            if config.k > 1 and config.bootstrap:
                sub = train.subset(bootstrap_indices(len(train), config.seed + member))
            reports.append(self._train_member(member, sub, val, enc_val, acc, log, bar))
        seconds = time.perf_counter() - t0
        self.net = acc.unwrap_model(self.net).cpu().eval() if acc.num_processes > 1 else self.net.eval()
        thetas = np.array([p.item() for p in self.net.theta])
        step_s = sum(r["step_seconds"] for r in reports)
        pairs_seen = sum(r["pairs_seen"] for r in reports)
        stats: dict[str, Any] = {
            "train_loss": float(np.mean([r["epoch_losses"][-1] for r in reports])),
            "train_loss_start": float(np.mean([r["first_loss"] for r in reports])),
            "val_loss": None if val is None else float(np.mean([r["best_val"] for r in reports])),
            "epochs": [r["epochs"] for r in reports],
            "members": reports,
            "fit_seconds": seconds,
            "pairs_per_s": pairs_seen / max(step_s, 1e-9),
            "num_processes": acc.num_processes,
            "share_prompt": self.shared,
        }
        return self, thetas, stats

    def _encode(self, pairs: list[tuple[str, str, str]]) -> EncodedPairs | SharedPairs:
        c = self.config
        if self.shared:
            return SharedPairs(pairs, self.tokenizer, c.template, c.max_length, self.layout)
        return EncodedPairs(pairs, self.tokenizer, c.template, c.max_length, self.decoder)

    def _train_member(
        self,
        member: int,
        train: PairTargets,
        val: PairTargets | None,
        enc_val: EncodedPairs | SharedPairs | None,
        acc: Any,
        log: MetricsLog,
        bar: Any,
    ) -> dict[str, Any]:
        c = self.config
        self._use(member)
        for i, p in enumerate(self.net.theta):
            p.requires_grad_(i == member)
        enc = self._encode(train.pairs)
        wins = torch.from_numpy(train.wins).float()
        margin = torch.from_numpy(train.margin).float()
        params = [p for p in self.net.parameters() if p.requires_grad]
        body = [p for p in params if all(p is not t for t in self.net.theta)]
        groups = [
            {"params": body, "lr": c.resolved_lr(), "weight_decay": c.weight_decay},
            # the tie parameter is one scalar: at a backbone's lr it would barely move
            {"params": [self.net.theta[member]], "lr": c.tie_lr, "weight_decay": 0.0},
        ]
        length_term = BackboneLengthTerm.make(c, train, acc.device)  # the length expert, dropped at inference
        opt = _adamw(groups)
        net, opt = acc.prepare(self.net, opt)
        dev = acc.device
        rank, world = acc.process_index, acc.num_processes
        n_batches = count_groups(len(enc), c.batch_size, world)
        total = max(1, c.epochs * n_batches)
        decay = (lambda s: max(0.0, 1 - s / total)) if c.lr_schedule == "linear" else (lambda s: 1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, decay)
        best, best_state, bad = float("inf"), None, 0
        epoch_losses: list[float] = []
        step_s, pairs_seen, first_loss = 0.0, 0, None
        task = bar.add_task(f"member {member}", total=c.epochs * n_batches)
        for epoch in range(c.epochs):
            net.train()
            losses = []
            seed = c.seed + 1000 * member + epoch
            for b in enc.pair_batches(c.batch_size, seed, rank, world):
                t = time.perf_counter()
                inputs = {k: v.to(dev) for k, v in b.inputs.items()}
                with autocast(c.bf16, dev):
                    rewards, theta = net(inputs, member)
                rewards = rewards.float()
                d = rewards[b.ia.to(dev)] - rewards[b.ib.to(dev)]
                rows = torch.from_numpy(b.rows)
                if length_term is not None:
                    d = length_term.gap(d, b.rows)
                loss = pair_nll(d, wins[rows].to(dev), theta, c.tie_model, margin[rows].to(dev))
                opt.zero_grad()
                acc.backward(loss)
                if c.grad_clip > 0:
                    acc.clip_grad_norm_(params, c.grad_clip)
                opt.step()
                sched.step()
                step_s += time.perf_counter() - t
                pairs_seen += len(b.rows) * world
                losses.append(loss.item())
                first_loss = losses[0] if first_loss is None else first_loss
                bar.update(task, advance=1, info=f"ep {epoch + 1} loss {np.mean(losses[-20:]):.3f}")
            epoch_losses.append(float(np.mean(losses)) if losses else float("nan"))
            row: dict[str, Any] = {"member": member, "epoch": epoch, "train_loss": epoch_losses[-1]}
            if val is not None and enc_val is not None:
                score = self._val_loss(member, val, enc_val, dev)
                row["val_loss"] = score
                if score < best - 1e-5:
                    best, bad = score, 0
                    best_state = copy.deepcopy(acc.unwrap_model(net).state_dict())
                else:
                    bad += 1
            log.log(row)
            if val is not None and bad >= c.patience:
                break
        if best_state is not None and bad > 0:
            acc.unwrap_model(net).load_state_dict(best_state)
        self.net = net
        return {
            "epochs": len(epoch_losses),
            "epoch_losses": epoch_losses,
            "first_loss": first_loss if first_loss is not None else float("nan"),
            "best_val": best if val is not None else None,
            "step_seconds": step_s,
            "pairs_seen": pairs_seen,
        }

    @torch.no_grad()
    def _val_loss(self, member: int, val: PairTargets, enc: EncodedPairs | SharedPairs, dev: torch.device) -> float:
        ra, rb = self._pair_rewards(enc, [member], dev)
        d = torch.from_numpy(ra[:, 0] - rb[:, 0])
        theta = self._unwrapped().theta[member].detach().double().cpu()
        wins, margin = torch.from_numpy(val.wins), torch.from_numpy(val.margin)
        return float(pair_nll(d, wins, theta, self.config.tie_model, margin))

    def _unwrapped(self) -> RewardNet:
        net = self.net
        return net.module if hasattr(net, "module") else net  # type: ignore[return-value]

    # ---- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def _pair_rewards(
        self, enc: EncodedPairs | SharedPairs, members: list[int], dev: torch.device | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rewards of a and b, [n, len(members)] each.

        Scoring stays fp32: bf16 rounds nearby rewards to equal values (measured: ~5 % of HH
        pairs tied exactly), which breaks rankings and accuracy.
        """
        net = self._unwrapped()
        was_training = net.training
        net.eval()
        dev = dev or next(net.parameters()).device
        out = np.zeros((enc.n_scored, len(members)))
        batches = enc.score_batches(self.config.embed_batch_size)
        for j, m in enumerate(members):
            self._use(m)
            for slots, inputs in batches:
                out[slots, j] = net({k: v.to(dev) for k, v in inputs.items()}, m)[0].float().cpu().numpy()
        if was_training:
            net.train()
        return out[enc.index[:, 0]], out[enc.index[:, 1]]

    def member_rewards(self, pairs: list[tuple[str, str, str]], bar: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._pair_rewards(self._encode(pairs), list(range(self.config.k)))

    @torch.no_grad()
    def features(self, pairs: list[tuple[str, str, str]], bar: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The head's input features of a and b, [n, H] each (member 0; shared-prompt layout only)."""
        if not self.shared:
            raise NotImplementedError("features need the shared-prompt layout, which this model could not take")
        net = self._unwrapped().eval()
        self._use(0)
        dev = next(net.parameters()).device
        enc = self._encode(pairs)
        out: np.ndarray | None = None
        task = bar.add_task("features", total=len(pairs)) if bar is not None and pairs else None
        for slots, inputs in enc.score_batches(self.config.embed_batch_size):
            feats = shared_features(net.model, {k: v.to(dev) for k, v in inputs.items()}).float().cpu().numpy()
            if out is None:
                out = np.zeros((enc.n_scored, feats.shape[1]), dtype=np.float32)
            out[slots] = feats
            if task is not None:
                bar.update(task, advance=len(slots) // 2)
        if out is None:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        return out[enc.index[:, 0]], out[enc.index[:, 1]]

    def _packed(self, items: list[tuple[str, str]]) -> PackedResponses:
        c = self.config
        return PackedResponses(items, self.tokenizer, c.template, c.max_length, self.layout, 2 * c.max_length)

    def _packed_batches(self, packed: PackedResponses) -> list[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        return packed.score_batches(self.config.embed_batch_size * self.config.max_length)

    @torch.no_grad()
    def response_rewards(self, items: list[tuple[str, str]], bar: Any = None) -> np.ndarray:
        """Each ``(prompt, response)``'s reward alone, per member [n, K]: what the pair
        ``(prompt, response, response)`` gives it, with the responses of one prompt packed
        into one sequence (see ``packed``) when the shared-prompt layout is in use."""
        members = list(range(self.config.k))
        if not self.shared:  # one text per item: EncodedPairs encodes (p, r, r)'s two sides once
            return self._pair_rewards(self._encode([(p, r, r) for p, r in items]), members)[0]
        net = self._unwrapped()
        was_training = net.training
        net.eval()
        dev = next(net.parameters()).device
        packed = self._packed(items)
        out = np.zeros((len(items), len(members)))
        batches = self._packed_batches(packed)
        for j, m in enumerate(members):
            self._use(m)
            for slots, inputs in batches:
                out[slots, j] = net({k: v.to(dev) for k, v in inputs.items()}, m)[0].float().cpu().numpy()
        net.train(was_training)
        return out

    @torch.no_grad()
    def response_features(self, items: list[tuple[str, str]], bar: Any = None) -> np.ndarray:
        """The head's input features of each ``(prompt, response)`` alone [n, H] (member 0;
        shared-prompt layout only), responses of one prompt packed into one sequence."""
        if not self.shared:
            raise NotImplementedError("features need the shared-prompt layout, which this model could not take")
        net = self._unwrapped().eval()
        self._use(0)
        dev = next(net.parameters()).device
        out: np.ndarray | None = None
        task = bar.add_task("features", total=len(items)) if bar is not None and items else None
        for slots, inputs in self._packed_batches(self._packed(items)):
            feats = shared_features(net.model, {k: v.to(dev) for k, v in inputs.items()}).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(items), feats.shape[1]), dtype=np.float32)
            out[slots] = feats
            if task is not None:
                bar.update(task, advance=len(slots))
        return out if out is not None else np.zeros((0, 0), np.float32)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self._unwrapped().state_dict().items()}

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        model = self._unwrapped().model
        model.save_pretrained(str(path / ("adapters" if self.lora else "backbone")), safe_serialization=True)
        self.tokenizer.save_pretrained(str(path / "tokenizer"))
        from safetensors.torch import save_file

        thetas = torch.stack([t.detach().float().cpu() for t in self._unwrapped().theta])
        save_file({"theta": thetas}, str(path / "tie.safetensors"))

    @classmethod
    def load(cls, path: Path, config: ModelConfig) -> FinetuneModel:
        torch.manual_seed(config.seed)
        if config.k == 1:
            tok, model = load_backbone(config, path=str(path / "backbone"))
            tok = load_tokenizer(config, str(path / "tokenizer"))
            if is_decoder(model.config):
                tok.padding_side = "left"
        else:
            from peft import PeftModel

            tok, base = load_backbone(config)
            model = PeftModel.from_pretrained(base, str(path / "adapters" / "m0"), adapter_name="m0")
            for i in range(1, config.k):
                model.load_adapter(str(path / "adapters" / f"m{i}"), adapter_name=f"m{i}")
        net = RewardNet(model, config.k, config.tie_model)
        from safetensors.torch import load_file

        with torch.no_grad():
            for p, v in zip(net.theta, load_file(str(path / "tie.safetensors"))["theta"], strict=True):
                p.copy_(v)
        return cls(config, tok, net.eval(), fallback=False)
