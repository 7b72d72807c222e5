"""Training the Fast dual encoder with symmetric InfoNCE on the embedded world.

The loop is the library's one loop (:func:`fastslow_lib.core.loop.fit`); this module supplies
Fast's batches and step:

* :func:`fast_batches`: one caption per image per epoch (so a batch holds no false negatives),
  random batches, or those of a ``batch_sampler`` (distillation's groups of look-alikes, a DDP
  rank's slice of each global batch);
* :func:`fast_step`: the forward pass and InfoNCE, plus an optional ``extra_loss`` (the
  distillation term of notebook 03) computed from the same forward pass;
* validation Recall@1 after every epoch, recorded in the history beside the temperature.

:func:`fast_recipe` is how a Fast model is made (its key, build and training), for the registry's
one load-or-train (:func:`fastslow_lib.registry.create_model`).

Taught in notebooks/01_fast.ipynb.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils.data import DataLoader

from fastslow_lib.config.training import FastTrainConfig
from fastslow_lib.core.cache import Recipe, training_key
from fastslow_lib.core.loop import fit
from fastslow_lib.core.metrics import text_to_image_metrics
from fastslow_lib.data.datasets import RetrievalProtocol, TrainPairs, make_collate
from fastslow_lib.data.tokenizer import encode
from fastslow_lib.data.world import Split, World
from fastslow_lib.fast.evaluate import fast_scores
from fastslow_lib.fast.input_checks import check_vocabulary
from fastslow_lib.fast.losses import info_nce
from fastslow_lib.fast.model import DualEncoder, FastConfig

__all__ = ["ExtraLoss", "build_dual_encoder", "fast_batches", "fast_recipe", "fast_step",
           "train_fast", "validation_protocol", "validation_recall"]

#: ``extra_loss(model, batch, img_emb, txt_emb, scale) -> loss`` is added to InfoNCE.
ExtraLoss = Callable[..., torch.Tensor]


def validation_recall(
    model: torch.nn.Module, tokenizer, protocol: RetrievalProtocol, *, max_len: int,
    device: torch.device | str,
) -> float:
    """Text-to-image Recall@1 of ``model`` on ``protocol``."""
    scores = fast_scores(model, tokenizer, protocol, max_len=max_len, device=device)
    return text_to_image_metrics(scores, protocol.gt)["R@1"]


def validation_protocol(split: Split, cfg: FastTrainConfig) -> RetrievalProtocol:
    """The validation queries scored after each epoch: ``cfg.val_queries`` of ``split``."""
    val = RetrievalProtocol.from_split(split)
    return val.restrict(val.query_subset(min(cfg.val_queries, len(val.queries)), seed=cfg.seed))


def fast_batches(
    split: Split, tokenizer, cfg: FastTrainConfig, *, batch_sampler=None,
    generator: torch.Generator | None = None,
) -> tuple[Callable[[int], Iterable[dict[str, Any]]], int]:
    """``(batches, steps_per_epoch)`` for :func:`~fastslow_lib.core.loop.fit`.

    Each batch is a dict: ``image``, ``input_ids``, ``attention_mask``, ``caption_index``, ...
    Without ``batch_sampler``, random batches of ``cfg.batch_size`` (the last partial one
    dropped), drawn from a generator seeded with ``cfg.seed``. A ``batch_sampler`` (an object
    with ``set_epoch(epoch)`` that yields lists of image indices) replaces them; ``generator``
    then seeds the loader's base seed (``None``: the global generator).
    """
    data = TrainPairs(split, seed=cfg.seed)
    collate = make_collate(functools.partial(encode, tokenizer, max_len=cfg.max_len))
    if batch_sampler is None:
        loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                            collate_fn=collate,
                            generator=torch.Generator().manual_seed(cfg.seed))
    else:
        loader = DataLoader(data, batch_sampler=batch_sampler, collate_fn=collate,
                            generator=generator)

    def batches(epoch: int) -> Iterable[dict[str, Any]]:
        data.set_epoch(epoch)
        set_epoch = getattr(batch_sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        return loader

    return batches, len(loader)


def fast_step(
    model: torch.nn.Module, device: torch.device | str, *, extra_loss: ExtraLoss | None = None,
    loss_fn: Callable[..., torch.Tensor] = info_nce, forward: torch.nn.Module | None = None,
) -> Callable[[dict[str, Any]], torch.Tensor]:
    """The loss of one batch: ``loss_fn`` (InfoNCE) of the embeddings, plus ``extra_loss``.

    ``forward`` is the module to call (a DDP wrapper of ``model``; default ``model``).
    """
    call = model if forward is None else forward

    def step(batch: dict[str, Any]) -> torch.Tensor:
        images = batch["image"].to(device)
        ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device)
        img, txt, scale = call(images, ids, mask)
        loss = loss_fn(img, txt, scale)
        if extra_loss is not None:
            loss = loss + extra_loss(model, batch, img, txt, scale)
        return loss

    return step


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
    """Train ``model`` (a :class:`~fastslow_lib.fast.model.DualEncoder`) in place; its history.

    ``batch_sampler`` (e.g. :class:`fastslow_lib.distill.GroupBatchSampler`) replaces the random
    batches; ``extra_loss`` is added to InfoNCE (notebook 03). The history is
    :func:`~fastslow_lib.core.loop.fit`'s plus validation Recall@1 (``val_R@1``) and the
    temperature after every epoch, and ``images_seen``.
    """
    check_vocabulary(model, tokenizer)
    model.to(device)
    batches, per_epoch = fast_batches(world.train, tokenizer, cfg, batch_sampler=batch_sampler)
    val = validation_protocol(world.val, cfg)

    def end_of_epoch(epoch: int) -> dict[str, float]:
        r1 = validation_recall(model, tokenizer, val, max_len=cfg.max_len, device=device)
        return {"val_R@1": r1, "temperature": float(model.temperature)}

    history = fit(model, batches, fast_step(model, device, extra_loss=extra_loss), cfg,
                  steps_per_epoch=per_epoch, end_of_epoch=end_of_epoch, desc=desc)
    history["images_seen"] = history["steps"] * cfg.batch_size
    return history


def build_dual_encoder(saved: dict[str, Any]) -> DualEncoder:
    """A fresh :class:`DualEncoder` from a checkpoint key's ``"model"`` entry."""
    return DualEncoder(FastConfig.from_dict(saved["model"]))


def fast_recipe(
    world: World, tokenizer, model_overrides: dict, cfg: FastTrainConfig, *,
    device: torch.device | str = "cpu",
) -> Recipe:
    """The recipe of a Fast model (:class:`~fastslow_lib.core.cache.Recipe`): the dual encoder of
    ``model_overrides`` trained with InfoNCE at budget ``cfg`` on ``world``.

    :func:`fastslow_lib.registry.create_model` makes it (``create_model("fast")``); its
    history is the one saved with the checkpoint, so a notebook shows the same curves whether
    it trained or loaded.
    """
    model_config = FastConfig(
        vocab_size=len(tokenizer), max_len=cfg.max_len, **model_overrides
    ).to_dict()

    def train(model: torch.nn.Module) -> dict:
        return {"history": train_fast(model, world, tokenizer, cfg, device=device)}

    return Recipe(training_key(model_config, cfg, world.config.key()), build_dual_encoder, train)
