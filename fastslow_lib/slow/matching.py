"""Image-text matching (ITM), the objective the paper compares its captioning loss with.

An ITM model (:class:`~fastslow_lib.slow.model.MatchingModel`) is trained to say "match" or
"no match" for a (caption, image) pair. Random negatives are too easy to teach it anything
(almost any other image differs in an obvious object), so the negatives are **hard**: for every
training caption, the images Fast ranks highest that are not its image and of which the caption
is false (checked on the scene descriptions, so a caption that happens to be true of another
image never becomes a negative). Each step draws one of a caption's mined negatives at random,
or (half of the time) a random other image. The matching loss alone never left chance at this
budget, so a captioning loss on the same trunk is trained beside it (:data:`CAPTION_WEIGHT`
says why); the model is scored by its matching head.

Taught in notebooks/02_slow.ipynb.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_lib.config.training import SlowTrainConfig
from fastslow_lib.core.cache import array_fingerprint, load_or_train, training_key
from fastslow_lib.data.captions import is_true
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.data.world import Split, World
from fastslow_lib.fast.evaluate import embed_images, embed_texts
from fastslow_lib.slow.model import MatchingModel, SlowConfig
from fastslow_lib.slow.training import train_slow

__all__ = ["CAPTION_WEIGHT", "RANDOM_NEGATIVE_FRACTION", "get_matching_model", "itm_learned",
           "itm_step", "mine_hard_negatives"]


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


#: Share of negatives drawn at random instead of from the mined hard ones: near-twins cannot be
#: told apart before the easy differences are learned.
RANDOM_NEGATIVE_FRACTION = 0.5

#: Weight of the captioning loss trained beside the matching loss, on the same trunk (as BLIP
#: and ALBEF train ITM beside other objectives). Matching alone stays at chance here (its loss
#: at ln 2, notebook 02 shows the runs): at initialisation an image barely moves the state the
#: head reads (cross-attention is nearly uniform), so a pair's logit is a function of the
#: caption alone, and each caption is labelled 1 and 0 equally often: a flat start with no
#: gradient towards looking at the image. The captioning loss makes the words attend to the
#: image from the first step. The model is still scored by its matching head alone.
CAPTION_WEIGHT = 1.0


def itm_learned(final_matching_loss: float) -> bool:
    """Whether a matching model learned anything: its matching loss left guessing.

    With as many matches as non-matches, a head blind to the image ends at ln 2 = 0.693;
    below 0.9 ln 2 it tells pairs apart. Notebook 02 and the
    claims table use this one rule.
    """
    return final_matching_loss < 0.9 * float(np.log(2))


def itm_step(negatives: np.ndarray, split: Split, seed: int = 0,
             random_fraction: float = RANDOM_NEGATIVE_FRACTION,
             caption_weight: float = CAPTION_WEIGHT):
    """A ``step_fn`` for :func:`~fastslow_lib.slow.training.train_slow` that trains ITM.

    For each caption of the batch, one non-matching image joins the batch: one of its mined
    ``negatives`` (drawn at random), or with probability ``random_fraction`` a random other
    training image. The loss is binary cross-entropy over matches and non-matches, plus
    ``caption_weight`` times the captioning loss of the matches (see :data:`CAPTION_WEIGHT`).
    The step keeps every step's matching part in ``step.matching_losses`` (detached tensors,
    read after training: the loss that says whether the head learned anything, ln 2 is
    guessing).
    """
    if not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))

    def step(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        caption_idx = batch["caption_index"]
        pick = negatives[caption_idx, rng.integers(negatives.shape[1], size=len(caption_idx))]
        own = split.caption_image[caption_idx]
        easy = rng.random(len(caption_idx)) < random_fraction
        other = (own + rng.integers(1, len(split), size=len(caption_idx))) % len(split)
        pick = np.where(easy, other, pick)
        neg = images_to_tensor(split.images[pick]).to(batch["image"].device)
        out = model(batch["image"], batch["forward"], neg, caption_weight=caption_weight)
        step.matching_losses.append(out["matching"].detach())
        return out["loss"]

    step.matching_losses = []
    return step


def get_matching_model(
    world: World,
    tokenizer,
    model_overrides: dict,
    cfg: SlowTrainConfig,
    checkpoint: str | Path,
    negatives: np.ndarray,
    *,
    device: torch.device | str = "cpu", may_train: bool = True, rebuild_hint: str = "",
) -> tuple[torch.nn.Module, dict, bool]:
    """The trained ITM model: loaded from ``checkpoint`` if it matches, else trained and saved.

    ``negatives`` come from :func:`mine_hard_negatives` on ``world.train``; their fingerprint
    goes into the checkpoint's key, so other negatives (another Fast) retrain. The history has
    the matching part of every step's loss (``matching_loss``) and its mean over the last epoch
    (``final_matching_loss``) beside the total.
    """
    if negatives.shape[0] != len(world.train.captions):
        raise ValueError(f"negatives has {negatives.shape[0]} rows, expected one per training "
                         f"caption ({len(world.train.captions)})")
    model_config = SlowConfig(
        vocab_size=len(tokenizer), max_len=cfg.max_len, image_size=world.config.image_size,
        bidirectional=False, **model_overrides,
    ).to_dict()
    config = {**training_key(model_config, cfg, world.config.key()), "objective": "itm",
              "negatives": array_fingerprint(negatives),
              "random_negative_fraction": RANDOM_NEGATIVE_FRACTION,
              "caption_weight": CAPTION_WEIGHT}

    def build(saved: dict) -> torch.nn.Module:
        return MatchingModel(SlowConfig.from_dict(saved["model"]))

    def train(model: torch.nn.Module) -> dict:
        step = itm_step(negatives, world.train, cfg.seed)
        history = train_slow(model, world, tokenizer, cfg, device=device, step_fn=step,
                             desc="training ITM")
        matching = torch.stack(step.matching_losses).float().cpu().tolist()
        per_epoch = len(matching) // cfg.epochs
        history["matching_loss"] = matching
        history["final_matching_loss"] = float(np.mean(matching[-per_epoch:]))
        return {"history": history}

    model, extra, loaded = load_or_train(checkpoint, build, train, config, device=device,
                                         may_train=may_train, rebuild_hint=rebuild_hint)
    return model, extra["history"], loaded
