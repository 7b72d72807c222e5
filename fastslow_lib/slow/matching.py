"""Image-text matching (ITM), the objective the paper compares its captioning loss with.

An ITM model (:class:`~fastslow_lib.slow.model.MatchingModel`) is trained to tell a caption's
image from images it is false of. Random negatives are too easy to teach it anything (almost
any other image differs in an obvious object), so the negatives are **hard**: for every training
caption, the images Fast ranks highest that are not its image and of which the caption is false
(checked on the scene descriptions, so a caption that happens to be true of another image never
becomes a negative).

What made its matching loss leave guessing (notebook 02 shows the release model's curve, and
that it still retrieves below Fast, even re-ranking Fast's top 10):

* **listwise, not binary**: each step shows a caption its own image, :data:`HARD_NEGATIVES` of
  its mined negatives and :data:`RANDOM_NEGATIVES` random other images, and the loss is a
  softmax cross-entropy over them. One binary label per pair left the head at chance;
* **a trunk that already looks at the image**: the release ITM starts from the release
  forward-only captioner (:func:`start_from_captioner`), as ALBEF's and BLIP's ITM heads sit on
  a trunk trained by other objectives. From scratch, matching waits for
  :data:`MATCHING_FROM` of the steps of captioning alone, and a captioning loss is trained
  beside it throughout (:data:`CAPTION_WEIGHT` says why).

The model is scored by its matching head alone.

Taught in notebooks/02_slow.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_lib.config.training import SlowTrainConfig
from fastslow_lib.core.cache import Recipe, array_fingerprint, training_key
from fastslow_lib.data.captions import is_true
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.data.world import Split, World
from fastslow_lib.fast.evaluate import embed_images, embed_texts
from fastslow_lib.slow.model import MatchingModel, SlowConfig, SlowModel
from fastslow_lib.slow.training import train_slow

__all__ = ["CAPTION_WEIGHT", "HARD_NEGATIVES", "MATCHING_FROM", "RANDOM_NEGATIVES",
           "itm_learned", "matching_recipe", "itm_step", "mine_hard_negatives",
           "start_from_captioner"]


@torch.no_grad()
def mine_hard_negatives(
    fast_model: torch.nn.Module, tokenizer, split: Split, *, k: int = 8, max_len: int = 48,
    pool: int = 32, block: int = 2048, device: torch.device | str = "cpu",
    skip_true: bool = True,
) -> np.ndarray:
    """``(n_captions, k)`` image indices: each caption's ``k`` hardest negatives by Fast.

    The ``pool`` images Fast ranks highest for a caption are checked in order; its own image
    and, with ``skip_true`` (the scene descriptions as an oracle), any image the caption is
    true of are skipped. ``skip_true=False`` mines by the labels alone, as on real data, where
    an image a caption also fits is a negative all the same (a world whose captions leave
    things out: notebook 03). A caption with fewer than ``k`` valid negatives in its pool
    repeats the last one it found (there is always at least one unless the caption is true of
    all ``pool`` images, which raises ValueError).
    """
    if not 1 <= k <= pool < len(split):
        raise ValueError(f"need 1 <= k ({k}) <= pool ({pool}) < images ({len(split)})")
    images = embed_images(fast_model, split.images, device=device)
    texts = embed_texts(fast_model, tokenizer, list(split.captions), max_len=max_len,
                        device=device)
    out = np.zeros((len(split.captions), k), dtype=np.int64)
    for s in range(0, len(texts), block):
        top = (texts[s : s + block] @ images.T).topk(pool, dim=1).indices.cpu().numpy()
        for row, candidates in enumerate(top):
            c = s + row
            own, form = int(split.caption_image[c]), split.forms[c]
            found = [int(g) for g in candidates
                     if g != own and not (skip_true and is_true(form, split.scenes[int(g)]))][:k]
            if not found:
                raise ValueError(f"caption {c} is true of all its {pool} nearest images")
            out[c] = found + [found[-1]] * (k - len(found))
    return out


#: Mined hard negatives per caption in each listwise step (drawn from its mined ones).
HARD_NEGATIVES = 2
#: Random other images per caption in each step: near-twins cannot be told apart before the
#: easy differences are learned.
RANDOM_NEGATIVES = 1
#: Share of the steps, from the start, that train captioning alone when ITM starts from scratch
#: (a model started from a captioner matches from the first step).
MATCHING_FROM = 0.25

#: Weight of the captioning loss trained beside the matching loss, on the same trunk (as BLIP
#: and ALBEF train ITM beside other objectives). At initialisation an image barely moves the
#: state the head reads (cross-attention is nearly uniform), so a pair's logit is a function of
#: the caption alone: a flat start with no gradient towards looking at the image. The
#: captioning loss makes the words attend to the image; it also keeps a trunk started from the
#: captioner from forgetting it. The model is still scored by its matching head alone.
CAPTION_WEIGHT = 1.0


def itm_learned(final_matching_loss: float, negatives: int = HARD_NEGATIVES + RANDOM_NEGATIVES,
                ) -> bool:
    """Whether a matching model learned anything: its matching loss left guessing.

    A head blind to the image gives each of a caption's ``1 + negatives`` images the same
    logit, so its loss is ``ln(1 + negatives)`` (``ln 2`` for the binary loss, one negative);
    below 0.9 of that it tells pairs apart. Notebook 02 and the claims table use this rule.
    """
    return final_matching_loss < 0.9 * float(np.log(1 + negatives))


def itm_step(negatives: np.ndarray, split: Split, seed: int = 0, *,
             hard: int = HARD_NEGATIVES, random: int = RANDOM_NEGATIVES,
             caption_weight: float = CAPTION_WEIGHT, matching_from: int = 0):
    """A ``step_fn`` for :func:`~fastslow_lib.slow.training.train_slow` that trains ITM.

    For each caption of the batch, ``hard`` of its mined ``negatives`` (drawn at random without
    repeats) and ``random`` random other training images join the step; the loss is
    :class:`~fastslow_lib.slow.model.MatchingModel`'s listwise softmax cross-entropy plus
    ``caption_weight`` times the captioning loss of the matching pairs. The first
    ``matching_from`` steps train captioning alone (no negatives). The step keeps every
    matching step's matching loss in ``step.matching_losses`` (detached tensors, read after
    training: ``ln(1 + hard + random)`` is guessing).
    """
    if hard < 0 or random < 0 or hard + random < 1:
        raise ValueError(f"need hard >= 0, random >= 0 and at least one negative, got "
                         f"hard={hard}, random={random}")
    if hard > negatives.shape[1]:
        raise ValueError(f"hard={hard} negatives per step but only {negatives.shape[1]} mined "
                         "per caption")
    if matching_from < 0:
        raise ValueError(f"matching_from must be >= 0 steps, got {matching_from}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    count = [0]

    def step(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        caption_idx = np.asarray(batch["caption_index"])
        count[0] += 1
        if count[0] <= matching_from:
            return model(batch["image"], batch["forward"], None, caption_weight=caption_weight,
                         listwise=True)["loss"]
        n = len(caption_idx)
        cols = np.argsort(rng.random((n, negatives.shape[1])), axis=1)[:, :hard]
        mined = negatives[caption_idx[:, None], cols]
        own = split.caption_image[caption_idx]
        other = (own[:, None] + rng.integers(1, len(split), size=(n, random))) % len(split)
        pick = np.concatenate([mined, other], axis=1).ravel()   # caption-major
        neg = images_to_tensor(split.images[pick]).to(batch["image"].device)
        out = model(batch["image"], batch["forward"], neg, caption_weight=caption_weight,
                    listwise=True)
        step.matching_losses.append(out["matching"].detach())
        return out["loss"]

    step.matching_losses = []
    return step


def start_from_captioner(model: MatchingModel, captioner: torch.nn.Module) -> MatchingModel:
    """Copy a captioner's pyramid and forward decoder into ``model`` (its trunk), in place.

    The head stays as initialised. The two must share the trunk's shape (same width, layers,
    strides and vocabulary): a clear error names the first mismatch.
    """
    try:
        model.vision.load_state_dict(captioner.vision.state_dict())
        model.trunk.load_state_dict(captioner.forward_decoder.state_dict())
    except (AttributeError, RuntimeError) as err:
        raise ValueError(f"cannot start the matching model from this captioner (it needs a "
                         f"SlowModel of the same shape): {str(err).splitlines()[0]}") from err
    return model


def matching_recipe(
    world: World,
    tokenizer,
    model_overrides: dict,
    cfg: SlowTrainConfig,
    negatives: np.ndarray | Callable[[], np.ndarray],
    *,
    init_from: str | Path | None = None,
    parents: dict[str, str | Path] | None = None,
    negatives_key: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> Recipe:
    """The recipe of the ITM baseline (``create_model("itm")``;
    :class:`~fastslow_lib.core.cache.Recipe`).

    ``negatives`` come from :func:`mine_hard_negatives` on ``world.train`` (or a function
    that mines them, called only if the model is trained: mining takes minutes). ``init_from`` is a
    captioner's checkpoint (a model folder) to start the trunk from (:func:`start_from_captioner`;
    the model then matches from the first step); it joins the key as parent ``captioner``, with
    any other ``parents`` (the Fast that mined the negatives). The key holds the negatives'
    fingerprint, or ``negatives_key`` in its place: a description of how they were mined, for a
    caller whose ``parents`` already pin the miner (mined on another CPU, float rounding can
    reorder near-ties, and the model must still load). The history has the matching part of
    every matching step's loss (``matching_loss``) and its mean over the last epoch
    (``final_matching_loss``) beside the total.
    """
    def mined() -> np.ndarray:
        out = negatives() if callable(negatives) else negatives
        if out.ndim != 2 or out.shape[0] != len(world.train.captions):
            raise ValueError(f"negatives has shape {out.shape}, expected one row per training "
                             f"caption ({len(world.train.captions)})")
        return out

    if not callable(negatives) or negatives_key is None:
        negatives = mined()
    model_config = SlowConfig(
        vocab_size=len(tokenizer), max_len=cfg.max_len, image_size=world.config.image_size,
        bidirectional=False, **model_overrides,
    ).to_dict()
    steps = cfg.epochs * (len(world.train) // cfg.batch_size)
    matching_from = 0 if init_from is not None else int(MATCHING_FROM * steps)
    config = {**training_key(model_config, cfg, world.config.key()), "objective": "itm",
              "negatives": negatives_key if negatives_key is not None
              else array_fingerprint(negatives),  # type: ignore[arg-type]
              "itm": {"listwise": True, "hard": HARD_NEGATIVES, "random": RANDOM_NEGATIVES,
                      "caption_weight": CAPTION_WEIGHT, "matching_from_steps": matching_from}}
    all_parents = dict(parents or {})
    if init_from is not None:
        all_parents["captioner"] = init_from

    def build(saved: dict) -> torch.nn.Module:
        return MatchingModel(SlowConfig.from_dict(saved["model"]))

    def train(model: torch.nn.Module) -> dict:
        if init_from is not None:
            start_from_captioner(model, SlowModel.from_pretrained(init_from))
        step = itm_step(mined(), world.train, cfg.seed, matching_from=matching_from)
        history = train_slow(model, world, tokenizer, cfg, device=device, step_fn=step,
                             desc="training ITM")
        matching = torch.stack(step.matching_losses).float().cpu().tolist()
        per_epoch = len(world.train) // cfg.batch_size
        history["matching_loss"] = matching
        history["final_matching_loss"] = float(np.mean(matching[-per_epoch:]))
        return {"history": history}

    return Recipe(config, build, train, all_parents)
