"""The one training loop of the course: every model (Fast, Slow, ITM, the distilled student, the
video models, and Fast on several processes) trains through :func:`fit`.

What differs between models is passed in, not copied:

* ``batches(epoch)``: the batches of one epoch (a DataLoader, or a generator of dicts);
* ``step(batch)``: one batch's loss, as a tensor (the forward pass and the loss);
* ``after_step()``: optional work after each optimiser step (DDP averages BatchNorm statistics);
* ``end_of_epoch(epoch)``: optional numbers to record after each epoch (validation Recall@1).

The loop owns the rest, the same for every model: AdamW with weight decay on matrices only,
a linear warm-up then cosine decay, the progress bar, and the history. It never reads a tensor
back to the host inside an epoch: each step's loss is kept on the device and the epoch's losses
are read once, at its end (one synchronisation per epoch instead of one per step).

Taught in notebooks/01_fast.ipynb (and used unchanged by 02, 03 and 05).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import numpy as np
import torch
from timm.optim import param_groups_weight_decay
from torch import nn
from transformers.optimization import _get_cosine_schedule_with_warmup_lr_lambda

from fastslow_lib.config.training import TrainConfig
from fastslow_lib.core.progress import progress
from fastslow_lib.core.seed import seed_everything

__all__ = ["adamw", "cosine_schedule", "fit"]


def cosine_schedule(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at ``total_steps``.

    The factor is transformers' (``get_cosine_schedule_with_warmup``, whose lambda this calls)
    with two differences kept from the course's own schedule, so that training is unchanged:

    * the warm-up counts the step being taken: step ``s < warmup_steps`` gets
      ``(s + 1) / warmup_steps``, so the first step already trains (transformers gives it 0);
    * after ``total_steps`` the factor stays at 0 (transformers' cosine would rise again).
    """
    cosine = partial(_get_cosine_schedule_with_warmup_lr_lambda, num_warmup_steps=warmup_steps,
                     num_training_steps=total_steps, num_cycles=0.5)
    last = warmup_steps + max(total_steps - warmup_steps, 1)  # where the cosine reaches 0

    def factor(step: int) -> float:
        if step < warmup_steps:
            return cosine(step + 1) if step + 1 < warmup_steps else 1.0
        return cosine(min(step, last))

    return factor


def adamw(model: nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms or the temperature).

    The groups are timm's (``param_groups_weight_decay``): parameters with fewer than two
    dimensions, biases and anything named ``logit_scale`` are not decayed; frozen parameters
    (``requires_grad=False``) are left out, as AdamW would never move them.
    """
    groups = param_groups_weight_decay(model, weight_decay,
                                       no_weight_decay_list=("*logit_scale*",))
    return torch.optim.AdamW(groups, lr=lr)


def fit(
    model: nn.Module,
    batches: Callable[[int], Iterable[Any]],
    step: Callable[[Any], torch.Tensor],
    cfg: TrainConfig,
    *,
    steps_per_epoch: int,
    after_step: Callable[[], None] | None = None,
    end_of_epoch: Callable[[int], dict[str, float]] | None = None,
    desc: str = "training",
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place for ``cfg.epochs`` epochs; return its history.

    ``model`` is the module whose parameters AdamW updates (a DDP wrapper's ``.module``, say);
    ``step(batch)`` returns the batch's loss and may call any wrapper of it. ``batches(epoch)``
    is called once per epoch, in order, and must yield ``steps_per_epoch`` batches.

    The history: ``loss`` (every step), ``epoch_loss`` (each epoch's mean),
    ``epoch_end_step``, one list per key that ``end_of_epoch`` returns (and ``before``: what it
    returns before the first step, called with epoch ``-1``: the untrained reference a one-epoch
    demonstration is compared with), ``steps``, ``seconds`` (wall clock, the epochs' validation
    included) and ``final_loss`` (the last epoch's mean).
    The model is left in eval mode.
    """
    total = cfg.epochs * steps_per_epoch
    if total < 1:
        raise ValueError(f"no training step: {cfg.epochs} epochs of {steps_per_epoch} batches "
                         f"(too few training items for a batch of {cfg.batch_size}?)")
    seed_everything(cfg.seed)
    optimizer = adamw(model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, int(cfg.warmup_frac * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(total, warmup))
    history: dict[str, Any] = {"loss": [], "epoch_loss": [], "epoch_end_step": []}
    if end_of_epoch is not None:  # the same figures before the first step: where training starts
        history["before"] = end_of_epoch(-1)
    start = time.perf_counter()
    bar = progress(total=total, desc=desc, disable=None if show_progress is None
                   else not show_progress)
    for epoch in range(cfg.epochs):
        model.train()
        losses: list[torch.Tensor] = []
        for batch in batches(epoch):
            loss = step(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if after_step is not None:
                after_step()
            losses.append(loss.detach())
            bar.update(1)
        if len(losses) != steps_per_epoch:
            raise RuntimeError(f"epoch {epoch} gave {len(losses)} batches, expected "
                               f"{steps_per_epoch}")
        epoch_losses = torch.stack(losses).float().cpu().tolist()  # one read per epoch
        history["loss"].extend(epoch_losses)
        history["epoch_loss"].append(float(np.mean(epoch_losses)))
        history["epoch_end_step"].append(len(history["loss"]))
        shown = {"loss": f"{history['epoch_loss'][-1]:.3f}"}
        if end_of_epoch is not None:
            for key, value in end_of_epoch(epoch).items():
                history.setdefault(key, []).append(value)
                shown[key] = f"{value:.3g}"
        bar.set_postfix(shown, refresh=False)
    bar.close()
    history["seconds"] = time.perf_counter() - start
    history["steps"] = total
    history["final_loss"] = history["epoch_loss"][-1]
    model.eval()
    return history
