"""Training the Slow captioner (and its ITM twin) on the embedded world.

The loop is the library's one loop (:func:`fastslow_lib.core.loop.fit`, as for Fast: AdamW,
linear warm-up then cosine decay); this module supplies Slow's batches (one caption per image
per epoch, random batches, captions encoded in both directions) and step, with one addition
that matters on a CPU: **length chunks**. Captions vary in length with the number of objects,
and a batch padded to its longest caption spends much of the decoders' work on padding. Each
decoder therefore runs on a few groups of the batch's captions sorted by length, each group
padded only to its own longest caption (``SlowModel.forward(..., length_chunks=4)``); the loss
is the same mean over every real token of the batch.

Why not the usual *bucketing*, batches of captions of one length? It was tried, and test recall
fell far below random batches at the same budget. Caption length follows the number of
objects, so a bucketed batch holds images with the same number of objects, and the backbone's
BatchNorm then normalises with statistics that differ from batch to batch and from its running
averages at evaluation. Chunking keeps the images one random batch.

Taught in notebooks/02_slow.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from fastslow_lib.config.checks import check_int
from fastslow_lib.config.training import SlowTrainConfig
from fastslow_lib.core.cache import Recipe, training_key
from fastslow_lib.core.loop import fit
from fastslow_lib.data.datasets import TrainPairs, images_to_tensor
from fastslow_lib.data.tokenizer import check_texts
from fastslow_lib.data.world import Split, World
from fastslow_lib.fast.input_checks import check_vocabulary
from fastslow_lib.slow.model import SlowConfig, SlowModel, length_chunk_plan
from fastslow_lib.slow.scoring import caption_tokens

__all__ = [
    "build_slow_model",
    "slow_recipe",
    "shuffled_batches",
    "slow_batch",
    "slow_batches",
    "slow_step",
    "train_slow",
    "validation_loss",
]

#: ``step(model, batch) -> loss``: one batch's loss (:func:`slow_step`, or ITM's).
SlowStep = Callable[[torch.nn.Module, dict[str, Any]], torch.Tensor]


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``range(n)`` shuffled and cut into full batches (the last incomplete one dropped)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = rng.permutation(n)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n // batch_size)]


def slow_batch(
    tokenizer, captions: list[str], images: np.ndarray, max_len: int
) -> dict[str, Any]:
    """Images as a tensor and the captions encoded in both directions (``"forward"``,
    ``"backward"``), each trimmed to its longest caption; the captions are checked once."""
    captions = check_texts(captions)
    check_int(max_len, "max_len", 3)
    return {"image": images_to_tensor(images), **caption_tokens(tokenizer, captions, max_len)}


def slow_batches(
    split: Split, tokenizer, cfg: SlowTrainConfig, device: torch.device | str = "cpu",
) -> tuple[Callable[[int], Iterator[dict[str, Any]]], int]:
    """``(batches, steps_per_epoch)`` for :func:`~fastslow_lib.core.loop.fit`.

    Each epoch shows one caption per image (:class:`TrainPairs`' choice) in random batches of
    ``cfg.batch_size``; a batch is :func:`slow_batch`'s dict on ``device`` plus
    ``caption_index`` (the captions' indices in ``split.captions``, a numpy array) and
    ``chunks`` (per direction, the :func:`~fastslow_lib.slow.model.length_chunk_plan` of
    ``cfg.length_chunks`` groups, made from the CPU masks: the forward pass then reads nothing
    back from the device).
    """
    pairs = TrainPairs(split, seed=cfg.seed)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 11]))

    def batches(epoch: int) -> Iterator[dict[str, Any]]:
        pairs.set_epoch(epoch)
        caption_of = pairs.epoch_captions()
        for image_idx in shuffled_batches(len(split), cfg.batch_size, rng):
            cap_idx = caption_of[image_idx]
            batch = slow_batch(tokenizer, [split.captions[c] for c in cap_idx],
                               split.images[image_idx], cfg.max_len)
            batch["image"] = batch["image"].to(device)
            batch["chunks"] = {}
            for name in ("forward", "backward"):
                plan = length_chunk_plan(batch[name]["attention_mask"], cfg.length_chunks)
                batch["chunks"][name] = [(rows.to(device), n) for rows, n in plan]
                batch[name] = {k: v.to(device) for k, v in batch[name].items()}
            batch["caption_index"] = cap_idx
            yield batch

    return batches, len(split) // cfg.batch_size


def validation_loss(
    model: torch.nn.Module, split: Split, tokenizer, cfg: SlowTrainConfig, *,
    device: torch.device | str = "cpu", pairs: int = 512,
) -> Callable[[int], dict[str, float]]:
    """An ``end_of_epoch`` hook for :func:`~fastslow_lib.core.loop.fit`: the captioning loss
    (both directions) of ``pairs`` fixed validation pairs (each image's first caption).

    The batches are made once; the loss is read back once per epoch.
    """
    first = np.unique(split.caption_image, return_index=True)[1][:pairs]
    batches = []
    for s in range(0, len(first), cfg.batch_size):
        cap = first[s : s + cfg.batch_size]
        batch = slow_batch(tokenizer, [split.captions[c] for c in cap],
                           split.images[split.caption_image[cap]], cfg.max_len)
        batches.append({"image": batch["image"].to(device),
                        **{d: {k: v.to(device) for k, v in batch[d].items()}
                           for d in ("forward", "backward")}, "n": len(cap)})

    def end_of_epoch(epoch: int) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            total = sum(model(b["image"], b["forward"], b["backward"])["loss"] * b["n"]
                        for b in batches)
        return {"val_loss": float(total) / len(first)}

    return end_of_epoch


def slow_step(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The captioning loss of one :func:`slow_batches` batch (both directions, in its chunks)."""
    return model(batch["image"], batch["forward"], batch["backward"],
                 chunks=batch["chunks"])["loss"]


def train_slow(
    model: torch.nn.Module,
    world: World,
    tokenizer,
    cfg: SlowTrainConfig,
    *,
    device: torch.device | str = "cpu",
    step_fn: SlowStep | None = None,
    desc: str = "training Slow",
) -> dict:
    """Train ``model`` in place on ``world.train``; return its history.

    ``model(images, forward, backward)`` must return a dict with a ``"loss"`` (as
    :class:`~fastslow_lib.slow.model.SlowModel` does). ``step_fn(model, batch)``, if given,
    replaces that call (the ITM model of notebook 02 adds hard negatives; ``batch`` holds the
    captions' ``caption_index``). The history is :func:`~fastslow_lib.core.loop.fit`'s plus
    ``pairs_seen`` and, for the captioner, ``val_loss`` after every epoch
    (:func:`validation_loss`).
    """
    check_vocabulary(model, tokenizer)
    model.to(device)
    batches, per_epoch = slow_batches(world.train, tokenizer, cfg, device)
    step = step_fn if step_fn is not None else slow_step
    # The validation curve (the captioning loss of fixed validation pairs) for the captioner;
    # the ITM model's loss needs negatives, so its curve is the training loss alone.
    end = (validation_loss(model, world.val, tokenizer, cfg, device=device)
           if step_fn is None and len(world.val) > 0 else None)
    history = fit(model, batches, lambda batch: step(model, batch), cfg,
                  steps_per_epoch=per_epoch, end_of_epoch=end, desc=desc)
    history["pairs_seen"] = history["steps"] * cfg.batch_size
    return history


def build_slow_model(saved: dict[str, Any]) -> SlowModel:
    """A fresh :class:`SlowModel` from a checkpoint key's ``"model"`` entry."""
    return SlowModel(SlowConfig.from_dict(saved["model"]))


def slow_recipe(
    world: World, tokenizer, model_overrides: dict, cfg: SlowTrainConfig, *,
    device: torch.device | str = "cpu",
) -> Recipe:
    """The recipe of a Slow captioner: the :class:`SlowConfig` of ``model_overrides`` trained
    at budget ``cfg`` on ``world`` (``create_model("slow")``; see
    :func:`fastslow_lib.fast.training.fast_recipe`)."""
    model_config = SlowConfig(
        vocab_size=len(tokenizer), max_len=cfg.max_len, image_size=world.config.image_size,
        **model_overrides,
    ).to_dict()

    def train(model: torch.nn.Module) -> dict:
        return {"history": train_slow(model, world, tokenizer, cfg, device=device)}

    return Recipe(training_key(model_config, cfg, world.config.key()), build_slow_model, train)
