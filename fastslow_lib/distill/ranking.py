"""Distillation signal (b): the teacher's ranking of the student's own hard negatives.

Taught in notebooks/03_distill.ipynb.

Signal (a) (:mod:`fastslow_lib.distill.groups`) changes what a batch holds: whole groups of
look-alike images, so the teacher's scores over each group can be precomputed. That also
changes InfoNCE's negatives, which the course measured to cost Fast recall on its own. This
signal leaves the batches alone:

1. :func:`ranking_candidates`: for every training caption, its own image and the ``negatives``
   images the plain Fast model ranks highest among those the caption is false of (checked on
   the scene descriptions, :func:`fastslow_lib.slow.matching.mine_hard_negatives`): exactly the
   confusions Fast makes;
2. the teacher scores each caption against its candidates once (``s_slow``, cached; the course
   scores them through :meth:`fastslow_lib.rerank.SlowGallery.candidate_scores`);
3. at every step, InfoNCE on the random batch as usual, plus, for the first ``rows`` captions
   of the batch, :func:`candidate_distillation_loss`: the student's softmax over the caption's
   candidates matched to ``softmax(s_slow / tau)``. The candidates' images go through the
   student's vision tower as extra images of the step.

The control (``RankingDistillConfig.teacher = False``) trains on the same candidates with a
hard label instead of the teacher's scores, so the teacher's share of any gain is measured
apart from the hard negatives'.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fastslow_lib.config.training import FastTrainConfig, RankingDistillConfig
from fastslow_lib.core.cache import Recipe, array_fingerprint, training_key
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.data.world import Split, World
from fastslow_lib.distill.groups import soft_cross_entropy
from fastslow_lib.fast.model import FastConfig
from fastslow_lib.fast.training import build_dual_encoder, train_fast
from fastslow_lib.slow.matching import mine_hard_negatives

__all__ = ["candidate_distillation_loss", "ranking_candidates", "ranking_recipe",
           "ranking_extra_loss"]


def ranking_candidates(
    fast_model: torch.nn.Module, tokenizer, split: Split, *, negatives: int, max_len: int,
    pool: int = 32, device: torch.device | str = "cpu", skip_true: bool = True,
) -> np.ndarray:
    """``(n_captions, 1 + negatives)`` image ids: each caption's own image, then its hard
    negatives by ``fast_model`` (hardest first; ``skip_true`` as in
    :func:`~fastslow_lib.slow.matching.mine_hard_negatives`)."""
    hard = mine_hard_negatives(fast_model, tokenizer, split, k=negatives, max_len=max_len,
                               pool=pool, device=device, skip_true=skip_true)
    return np.concatenate([split.caption_image[:, None].astype(np.int64), hard], axis=1)


def candidate_distillation_loss(
    txt_emb: torch.Tensor, candidate_emb: torch.Tensor, scale: torch.Tensor | float,
    teacher: torch.Tensor | None, tau: float,
) -> torch.Tensor:
    """The listwise term: caption ``i`` against its candidates ``candidate_emb[i]``.

    ``txt_emb`` is ``(n, d)``, ``candidate_emb`` ``(n, m, d)`` with the caption's own image
    first; ``teacher`` ``(n, m)`` holds Slow's scores of the same pairs (KL towards
    ``softmax(teacher / tau)``), or None for the control's hard label (cross-entropy with the
    own image as the answer). The scale is detached, as in signal (a).
    """
    if candidate_emb.dim() != 3 or candidate_emb.shape[0] != txt_emb.shape[0]:
        raise ValueError(f"candidate_emb must be (n={txt_emb.shape[0]}, m, d), got "
                         f"{tuple(candidate_emb.shape)}")
    scale = scale.detach() if isinstance(scale, torch.Tensor) else scale
    student = scale * torch.einsum("nd,nmd->nm", txt_emb, candidate_emb)
    if teacher is None:
        return F.cross_entropy(student, student.new_zeros(len(student), dtype=torch.long))
    return soft_cross_entropy(student, teacher, tau)


def ranking_extra_loss(
    split: Split, candidates: np.ndarray, teacher: np.ndarray | None, cfg: RankingDistillConfig,
    images: np.ndarray | None = None,
):
    """An ``extra_loss`` for :func:`fastslow_lib.fast.training.train_fast` (see the module).

    The batch's own images are its captions' first candidates (``TrainPairs`` pairs caption
    ``i`` with its image), so only the negatives are embedded here: images of ``split``, or,
    when ``images`` is given, rows of ``images`` (notebook 03's upper bound: each caption's
    binding twin, :func:`fastslow_lib.data.world.binding_twins`). There a negative of -1 means
    the caption has none, and the term takes the first ``cfg.rows`` captions of the batch that
    have all theirs.
    """
    if candidates.ndim != 2 or candidates.shape != (len(split.captions), cfg.negatives + 1):
        raise ValueError(f"candidates must be (n_captions={len(split.captions)}, "
                         f"{cfg.negatives + 1}), got {candidates.shape}")
    if teacher is not None and teacher.shape != candidates.shape:
        raise ValueError(f"teacher scores {teacher.shape} must match candidates "
                         f"{candidates.shape}")
    source = split.images if images is None else images
    negative_ids = candidates[:, 1:]
    if negative_ids.max() >= len(source) or (images is None and negative_ids.min() < 0):
        raise ValueError(f"candidates' negatives must index the {len(source)} "
                         f"{'split' if images is None else 'given'} images (-1 only with images)")
    has_all = (negative_ids >= 0).all(axis=1)
    table = None if teacher is None else torch.from_numpy(np.asarray(teacher, np.float32))

    def extra(model: torch.nn.Module, batch: dict[str, Any], img, txt, scale) -> torch.Tensor:
        caption = np.asarray(batch["caption_index"])
        rows = np.flatnonzero(has_all[caption])[: cfg.rows]
        if len(rows) == 0:
            return txt.sum() * 0.0
        chosen = caption[rows]
        at = torch.from_numpy(rows).to(txt.device)
        neg = model.encode_image(images_to_tensor(source[negative_ids[chosen].ravel()])
                                 .to(img.device)).view(len(rows), cfg.negatives, -1)
        cand = torch.cat([img[at, None], neg], dim=1)
        target = None if table is None else table[chosen].to(txt.device)
        return cfg.weight * candidate_distillation_loss(txt[at], cand, scale, target, cfg.tau)

    return extra


def ranking_recipe(
    world: World, tokenizer, fast_model_config: dict, train_cfg: FastTrainConfig,
    cfg: RankingDistillConfig,
    candidates: np.ndarray | Callable[[], np.ndarray],
    teacher: np.ndarray | Callable[[], np.ndarray] | None, *, parents: dict[str, str | Path],
    inputs_key: dict[str, Any] | None = None,
    images: np.ndarray | Callable[[], np.ndarray] | None = None,
    device: torch.device | str = "cpu",
) -> Recipe:
    """The recipe of the signal-(b) student or its control (``create_model("fast_ranked")``,
    ``"fast_hard_negatives"``, ``"fast_binding_twins"``; a
    :class:`~fastslow_lib.core.cache.Recipe`).

    Keyed on Fast's model and budget, ``cfg``, the fingerprints of ``candidates`` and
    ``teacher`` (None for the control) and the ``parents``' weights (the Fast model that mined
    the candidates; the teacher). ``inputs_key`` replaces the two fingerprints by a
    description of how the arrays were made, for a caller whose ``parents`` already pin the
    models that made them (mined on another CPU, float rounding can reorder near-ties, and the
    release model must still load). With ``inputs_key``, ``candidates`` and ``teacher`` may be
    functions that make the arrays, called only if the model is trained (mining and scoring
    take minutes). ``images``: the images the negatives index instead of ``world.train``'s
    (:func:`ranking_extra_loss`; their fingerprint, or ``inputs_key["candidate_images"]``,
    joins the key). Returns ``(model, history, loaded)``.
    """
    if cfg.teacher != (teacher is not None):
        raise ValueError(f"cfg.teacher is {cfg.teacher} but teacher scores were "
                         f"{'given' if teacher is not None else 'not given'}")
    model_config = FastConfig(vocab_size=len(tokenizer), max_len=train_cfg.max_len,
                              **fast_model_config).to_dict()
    def made(array: np.ndarray | Callable[[], np.ndarray] | None) -> np.ndarray | None:
        return array() if callable(array) else array

    config = {**training_key(model_config, train_cfg, world.config.key()),
              "ranking": cfg.to_dict()}
    if inputs_key is not None:
        config.update({"candidates": inputs_key.get("candidates"),
                       "teacher_scores": inputs_key.get("teacher_scores")})
        if images is not None:
            config["candidate_images"] = inputs_key.get("candidate_images")
    else:
        candidates, teacher, images = made(candidates), made(teacher), made(images)
        config.update({"candidates": array_fingerprint(candidates),  # type: ignore[arg-type]
                       "teacher_scores": None if teacher is None else array_fingerprint(teacher)})
        if images is not None:
            config["candidate_images"] = array_fingerprint(images)

    def build(saved: dict) -> torch.nn.Module:
        torch.manual_seed(train_cfg.seed)  # the same initialisation as plain Fast
        return build_dual_encoder(saved)

    def train(model: torch.nn.Module) -> dict:
        extra = ranking_extra_loss(world.train, made(candidates), made(teacher), cfg,  # type: ignore[arg-type]
                                   images=made(images))
        desc = ("training Fast (ranking distillation)" if cfg.teacher else
                "training Fast (binding twins)" if images is not None else
                "training Fast (hard negatives, no teacher)")
        return {"history": train_fast(model, world, tokenizer, train_cfg, device=device,
                                      extra_loss=extra, desc=desc)}

    return Recipe(config, build, train, parents)
