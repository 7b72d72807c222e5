"""Training the Fast dual encoder with symmetric InfoNCE on the embedded world.

One loop, small and explicit: AdamW, linear warm-up then cosine decay, one caption per image per
epoch (so a batch holds no false negatives), validation Recall@1 after every epoch, and a history
that the notebook plots. ``extra_loss`` lets distillation (notebook 03) add its term to InfoNCE
without a second loop.

Taught in notebooks/01_fast.ipynb.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from fastslow_lib.data.datasets import RetrievalProtocol, TrainPairs, make_collate
from fastslow_lib.data.world import World
from fastslow_lib.evaluate import fast_scores
from fastslow_lib.losses import info_nce
from fastslow_lib.metrics import text_to_image_metrics
from fastslow_lib.progress import progress
from fastslow_lib.seed import seed_everything
from fastslow_lib.tokenizer import encode

#: ``extra_loss(model, batch, img_emb, txt_emb, scale) -> loss`` is added to InfoNCE.
ExtraLoss = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class FastTrainConfig:
    """The training budget and optimiser settings of the Fast model (stated in notebook 01)."""

    epochs: int = 6
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    #: Validation queries scored against the whole validation gallery after each epoch.
    val_queries: int = 1000
    seed: int = 0
    max_len: int = 48

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "val_queries", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (InfoNCE needs negatives)")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def to_dict(self) -> dict:
        """Plain dict (saved beside checkpoints)."""
        return asdict(self)


def cosine_schedule(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress_ = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress_, 1.0)))

    return factor


def adamw(model: torch.nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms or the temperature).

    Shared by the Fast and Slow training loops.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay},
         {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def validation_recall(
    model: torch.nn.Module, tokenizer, protocol: RetrievalProtocol, *, max_len: int,
    device: torch.device | str,
) -> float:
    """Text-to-image Recall@1 of ``model`` on ``protocol``."""
    scores = fast_scores(model, tokenizer, protocol, max_len=max_len, device=device)
    return text_to_image_metrics(scores, protocol.gt)["R@1"]


def train_fast(
    model: torch.nn.Module,
    world: World,
    tokenizer,
    cfg: FastTrainConfig,
    *,
    device: torch.device | str = "cpu",
    extra_loss: ExtraLoss | None = None,
    batch_sampler=None,
    desc: str = "training Fast",
) -> dict:
    """Train ``model`` (a :class:`~fastslow_lib.models.DualEncoder`) in place; return its history.

    ``batch_sampler`` (an object with ``set_epoch(epoch)`` yielding lists of image indices, such
    as :class:`fastslow_lib.distill.GroupBatchSampler`) replaces the random batches; distillation
    (notebook 03) uses it to put groups of look-alike images in one batch.

    The history holds the loss of every step, validation Recall@1 after every epoch, the
    temperature, the number of steps and the wall-clock seconds.
    """
    seed_everything(cfg.seed)
    model.to(device)
    data = TrainPairs(world.train, seed=cfg.seed)
    collate = make_collate(functools.partial(encode, tokenizer, max_len=cfg.max_len))
    generator = torch.Generator().manual_seed(cfg.seed)
    if batch_sampler is None:
        loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                            collate_fn=collate, generator=generator)
    else:
        loader = DataLoader(data, batch_sampler=batch_sampler, collate_fn=collate)
    total = cfg.epochs * len(loader)
    if total == 0:
        raise ValueError(f"{len(data)} training images make no batch of {cfg.batch_size}")
    optimizer = adamw(model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, int(cfg.warmup_frac * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(total, warmup))
    val = RetrievalProtocol.from_split(world.val)
    val = val.restrict(val.query_subset(min(cfg.val_queries, len(val.queries)), seed=cfg.seed))

    history: dict = {"loss": [], "epoch_end_step": [], "val_R@1": [], "temperature": []}
    start = time.perf_counter()
    bar = progress(total=total, desc=desc)
    for epoch in range(cfg.epochs):
        data.set_epoch(epoch)
        if batch_sampler is not None:
            batch_sampler.set_epoch(epoch)
        model.train()
        for batch in loader:
            images = batch["image"].to(device)
            ids = batch["input_ids"].to(device)
            mask = batch["attention_mask"].to(device)
            img, txt, scale = model(images, ids, mask)
            loss = info_nce(img, txt, scale)
            if extra_loss is not None:
                loss = loss + extra_loss(model, batch, img, txt, scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            history["loss"].append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", refresh=False)
        r1 = validation_recall(model, tokenizer, val, max_len=cfg.max_len, device=device)
        history["epoch_end_step"].append(len(history["loss"]))
        history["val_R@1"].append(r1)
        history["temperature"].append(float(model.temperature))
        bar.set_postfix(val_R1=f"{r1:.1f}", refresh=False)
    bar.close()
    history["seconds"] = time.perf_counter() - start
    history["steps"] = total
    history["images_seen"] = total * cfg.batch_size
    history["final_loss"] = float(np.mean(history["loss"][-len(loader):]))
    model.eval()
    return history


def fast_checkpoint_config(model_config: dict, cfg: FastTrainConfig, world: World) -> dict:
    """Everything a Fast checkpoint depends on: model sizes, training budget, world."""
    return {"model": model_config, "train": cfg.to_dict(), "world": world.config.key()}


def get_fast_model(
    world: World,
    tokenizer,
    model_overrides: dict,
    cfg: FastTrainConfig,
    checkpoint: str | Path,
    *,
    device: torch.device | str = "cpu",
) -> tuple[torch.nn.Module, dict, bool]:
    """The trained Fast model: loaded from ``checkpoint`` if it matches, else trained and saved.

    Returns ``(model, history, loaded)``; ``history`` is the training history saved with the
    checkpoint, so a notebook shows the same curves whether it trained or loaded.
    """
    from fastslow_lib.checkpoint import load_if_present, read_metadata
    from fastslow_lib.models import DualEncoder, FastConfig

    model_config = FastConfig(
        vocab_size=len(tokenizer), max_len=cfg.max_len, **model_overrides
    ).to_dict()
    config = fast_checkpoint_config(model_config, cfg, world)
    history: dict = {}

    def build(saved: dict) -> torch.nn.Module:
        return DualEncoder(FastConfig.from_dict(saved["model"]))

    def train(model: torch.nn.Module) -> dict:
        history.update(train_fast(model, world, tokenizer, cfg, device=device))
        return {"history": history}

    model, loaded = load_if_present(checkpoint, build, train, config)
    if loaded:
        history = read_metadata(checkpoint)["extra"]["history"]
    return model.to(device).eval(), history, loaded
