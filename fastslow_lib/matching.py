"""Image-text matching (ITM), the objective the paper compares its captioning loss with.

An ITM model (:class:`~fastslow_lib.models.slow.MatchingModel`) is trained to say "match" or
"no match" for a (caption, image) pair. Random negatives are too easy to teach it anything
(almost any other image differs in an obvious object), so the negatives are **hard**: for every
training caption, the images Fast ranks highest that are not its image and of which the caption
is false (checked on the scene descriptions, so a caption that happens to be true of another
image never becomes a negative). Each step draws one of a caption's mined negatives at random,
or (half of the time) a random other image: hard negatives alone taught it nothing.

Taught in notebooks/02_slow.ipynb.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_lib.data.captions import is_true
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.data.world import Split, World
from fastslow_lib.evaluate import embed_images, embed_texts
from fastslow_lib.slow_training import SlowTrainConfig, train_slow

__all__ = ["get_matching_model", "itm_step", "mine_hard_negatives"]


@torch.no_grad()
def mine_hard_negatives(
    fast_model: torch.nn.Module, tokenizer, split: Split, *, k: int = 8, max_len: int = 48,
    pool: int = 32, block: int = 2048, device: torch.device | str = "cpu",
) -> np.ndarray:
    """``(n_captions, k)`` image indices: each caption's ``k`` hardest negatives by Fast.

    The ``pool`` images Fast ranks highest for a caption are checked in order; its own image
    and any image the caption is true of are skipped. A caption with fewer than ``k`` valid
    negatives in its pool repeats the last one it found (there is always at least one unless
    the caption is true of all ``pool`` images, which raises ValueError).
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
                     if g != own and not is_true(form, split.scenes[int(g)])][:k]
            if not found:
                raise ValueError(f"caption {c} is true of all its {pool} nearest images")
            out[c] = found + [found[-1]] * (k - len(found))
    return out


#: Share of negatives drawn at random instead of from the mined hard ones. With hard negatives
#: only, the ITM model of notebook 02 never left chance (loss ln 2 for all 6 epochs, measured):
#: near-twins cannot be told apart before the easy differences are learned.
RANDOM_NEGATIVE_FRACTION = 0.5


def itm_step(negatives: np.ndarray, split: Split, seed: int = 0,
             random_fraction: float = RANDOM_NEGATIVE_FRACTION):
    """A ``step_fn`` for :func:`~fastslow_lib.slow_training.train_slow` that trains ITM.

    For each caption of the batch, one non-matching image joins the batch: one of its mined
    ``negatives`` (drawn at random), or with probability ``random_fraction`` a random other
    training image. The loss is binary cross-entropy over matches and non-matches.
    """
    if not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))

    def step(model: torch.nn.Module, batch: dict[str, Any], caption_idx: np.ndarray):
        pick = negatives[caption_idx, rng.integers(negatives.shape[1], size=len(caption_idx))]
        own = split.caption_image[caption_idx]
        easy = rng.random(len(caption_idx)) < random_fraction
        other = (own + rng.integers(1, len(split), size=len(caption_idx))) % len(split)
        pick = np.where(easy, other, pick)
        neg = images_to_tensor(split.images[pick]).to(batch["image"].device)
        return model(batch["image"], batch["fwd"], neg)["loss"]

    return step


def get_matching_model(
    world: World,
    tokenizer,
    model_overrides: dict,
    cfg: SlowTrainConfig,
    checkpoint: str | Path,
    negatives: np.ndarray,
    *,
    device: torch.device | str = "cpu",
) -> tuple[torch.nn.Module, dict, bool]:
    """The trained ITM model: loaded from ``checkpoint`` if it matches, else trained and saved.

    ``negatives`` come from :func:`mine_hard_negatives` on ``world.train``; their shape and a
    checksum go into the checkpoint's config, so other negatives retrain.
    """
    from fastslow_lib.checkpoint import load_if_present, read_metadata
    from fastslow_lib.models.slow import MatchingModel, SlowConfig

    if negatives.shape[0] != len(world.train.captions):
        raise ValueError(f"negatives has {negatives.shape[0]} rows, expected one per training "
                         f"caption ({len(world.train.captions)})")
    model_config = SlowConfig(
        vocab_size=len(tokenizer), max_len=cfg.max_len, image_size=world.config.image_size,
        bidirectional=False, **model_overrides,
    ).to_dict()
    config = {"model": model_config, "train": cfg.to_dict(), "world": world.config.key(),
              "objective": "itm", "negatives": [list(negatives.shape),
                                                int(negatives.sum() % 1_000_003)],
              "random_negative_fraction": RANDOM_NEGATIVE_FRACTION}
    history: dict = {}

    def build(saved: dict) -> torch.nn.Module:
        return MatchingModel(SlowConfig.from_dict(saved["model"]))

    def train(model: torch.nn.Module) -> dict:
        step = itm_step(negatives, world.train, cfg.seed)
        history.update(train_slow(model, world, tokenizer, cfg, device=device, step_fn=step,
                                  desc="training ITM"))
        return {"history": history}

    model, loaded = load_if_present(checkpoint, build, train, config)
    if loaded:
        history = read_metadata(checkpoint)["extra"]["history"]
    return model.to(device).eval(), history, loaded
