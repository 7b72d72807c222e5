"""Distillation signal (a), the paper's: the student's in-batch softmax matched to the teacher's.

Taught in notebooks/03_distill.ipynb.

The student stays a dual encoder (so it stays indexable); only its training loss changes:
InfoNCE plus ``weight`` times a soft cross-entropy towards the teacher's distribution
``softmax(s_slow / tau)`` over a set of candidate images for each caption.

Which candidates? Slow costs a decoder pass per (caption, image) pair, so scoring every caption
against every image of every random batch (batch x batch pairs, every step) would cost far more
than the student's training. The course instead **precomputes** the teacher's scores over
small **groups of look-alike images**:

1. :func:`lookalike_groups` partitions the training images into groups of ``group_size``
   images that the (plain) Fast model finds similar: same objects, other places, colours or
   sizes, exactly where Fast errs and Slow does not;
2. :func:`teacher_scores` scores each caption the training loop will show against every image
   of its image's group, once, with the Slow model (cached on disk);
3. :class:`GroupBatchSampler` builds each batch from whole groups, so every caption's group is
   in its batch, and :func:`group_distillation_loss` compares the student's scores over the
   group with the teacher's.

Putting look-alikes in one batch also makes InfoNCE's negatives harder, with or without a
teacher: notebook 03 measures that separately (``weight = 0``), so the teacher's share of the
gain is not confused with the batches'.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fastslow_lib.config.checks import check_int, check_number
from fastslow_lib.config.training import DistillConfig, FastTrainConfig
from fastslow_lib.core.cache import (
    Recipe,
    array_fingerprint,
    file_fingerprint,
    training_key,
)
from fastslow_lib.core.checkpoint import cached_arrays
from fastslow_lib.core.progress import progress
from fastslow_lib.data.datasets import TrainPairs
from fastslow_lib.data.world import Split, World
from fastslow_lib.fast.evaluate import embed_images
from fastslow_lib.fast.model import FastConfig
from fastslow_lib.fast.training import build_dual_encoder, train_fast
from fastslow_lib.slow.scoring import caption_tokens, check_gallery, image_cache, score_block

__all__ = [
    "DistillConfig",
    "GroupBatchSampler",
    "check_teacher_covers",
    "distilled_recipe",
    "get_teacher_scores",
    "make_groups",
    "distillation_extra_loss",
    "group_distillation_loss",
    "lookalike_groups",
    "random_groups",
    "soft_cross_entropy",
    "teacher_scores",
    "training_captions",
]


def soft_cross_entropy(
    student_logits: torch.Tensor, teacher_scores: torch.Tensor, tau: float
) -> torch.Tensor:
    """Mean over rows of ``KL(softmax(teacher / tau) || softmax(student))``.

    ``student_logits`` (already scaled: the student's ``logit_scale * cosine``) and
    ``teacher_scores`` (raw Slow log-likelihoods) are ``(n, m)``: row ``i`` scores caption ``i``
    against ``m`` candidates. The KL differs from the soft cross-entropy
    ``-sum p_teacher log p_student`` by the teacher's entropy, a constant for the student, so
    the gradients are the same; the KL is zero when the student matches the teacher.
    """
    if not isinstance(student_logits, torch.Tensor) or not isinstance(teacher_scores,
                                                                      torch.Tensor):
        raise TypeError("student_logits and teacher_scores must be torch tensors")
    if student_logits.dim() != 2 or student_logits.shape != teacher_scores.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_scores "
            f"{tuple(teacher_scores.shape)} must be the same (n, m) shape")
    if student_logits.shape[1] < 2:
        raise ValueError("need at least 2 candidates per caption to form a distribution")
    check_number(tau, "tau", positive=True, type_error=ValueError)
    teacher = teacher_scores.detach().to(student_logits.dtype)
    log_p = F.log_softmax(teacher / tau, dim=1)
    log_q = F.log_softmax(student_logits, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


def group_distillation_loss(
    txt_emb: torch.Tensor, img_emb: torch.Tensor, scale: torch.Tensor | float,
    teacher: torch.Tensor, group_size: int, tau: float,
) -> torch.Tensor:
    """The distillation term of a batch made of whole groups (see :class:`GroupBatchSampler`).

    Row ``r`` of the batch (caption ``r``, image ``r``) belongs to the group in rows
    ``g * group_size ... (g + 1) * group_size - 1`` with ``g = r // group_size``; the student
    scores caption ``r`` against those images, and ``teacher[r]`` holds Slow's scores of caption
    ``r`` against the same images in the same order.
    """
    n = txt_emb.shape[0]
    if n % group_size or img_emb.shape[0] != n:
        raise ValueError(f"a batch of {n} captions and {img_emb.shape[0]} images is not made "
                         f"of whole groups of {group_size}")
    if teacher.shape != (n, group_size):
        raise ValueError(f"teacher must be ({n}, {group_size}), got {tuple(teacher.shape)}")
    t = txt_emb.view(n // group_size, group_size, -1)
    v = img_emb.view(n // group_size, group_size, -1)
    # The scale is detached: the term moves embeddings, not the temperature. (Left free, it
    # lowered the scale while the student could not yet tell look-alikes apart, which weakened
    # InfoNCE: measured in notebook 03.)
    scale = scale.detach() if isinstance(scale, torch.Tensor) else scale
    student = scale * torch.einsum("gid,gjd->gij", t, v).reshape(n, group_size)
    return soft_cross_entropy(student, teacher, tau)


@torch.no_grad()
def lookalike_groups(
    fast_model: torch.nn.Module, split: Split, group_size: int, *, pool: int = 64,
    seed: int = 0, block: int = 2048, device: torch.device | str = "cpu",
) -> np.ndarray:
    """Partition ``split``'s images into ``(n_groups, group_size)`` groups of look-alikes.

    Greedy and deterministic: anchors are visited in a seeded random order; each anchor not yet
    in a group takes the ``group_size - 1`` images nearest to it (cosine of Fast's image
    embeddings, among its ``pool`` nearest) that are not yet taken. Anchors whose neighbours are
    all taken are pooled at the end and grouped in order; the last ``len(split) % group_size``
    images are left out.
    """
    check_int(group_size, "group_size", 2, type_error=ValueError)
    if len(split) < group_size:
        raise ValueError(f"{len(split)} images cannot form a group of {group_size}")
    pool = min(pool, len(split) - 1)
    emb = embed_images(fast_model, split.images, device=device)
    near = np.zeros((len(split), pool), dtype=np.int64)
    for s in range(0, len(emb), block):
        sims = emb[s : s + block] @ emb.T
        sims[torch.arange(len(sims)), torch.arange(s, s + len(sims))] = -float("inf")
        near[s : s + block] = sims.topk(pool, dim=1).indices.numpy()
    taken = np.zeros(len(split), dtype=bool)
    groups, leftovers = [], []
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
    for anchor in rng.permutation(len(split)):
        if taken[anchor]:
            continue
        free = [int(j) for j in near[anchor] if not taken[j]][: group_size - 1]
        if len(free) < group_size - 1:
            leftovers.append(int(anchor))
            taken[anchor] = True
            continue
        group = [int(anchor), *free]
        taken[group] = True
        groups.append(group)
    usable = len(leftovers) - len(leftovers) % group_size
    groups += [leftovers[i : i + group_size] for i in range(0, usable, group_size)]
    return np.array(groups, dtype=np.int64).reshape(-1, group_size)


def random_groups(n_images: int, group_size: int, seed: int = 0) -> np.ndarray:
    """A seeded random partition of ``range(n_images)`` into ``(n_groups, group_size)``."""
    check_int(group_size, "group_size", 2, type_error=ValueError)
    if n_images < group_size:
        raise ValueError(f"{n_images} images cannot form a group of {group_size}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 31]))
    order = rng.permutation(n_images)
    usable = n_images - n_images % group_size
    return order[:usable].reshape(-1, group_size).astype(np.int64)


class GroupBatchSampler:
    """Batches that hold whole groups of look-alikes, and random images for the rest.

    A ``batch_sampler`` for ``DataLoader``: each batch is ``group_rows`` images from whole
    groups (members in group order, groups in a new random order every epoch) followed by
    ``batch_size - group_rows`` random images not in those groups; the number of batches per
    epoch is that of plain random batches (``n_images // batch_size``), so the budget is the
    same. Epochs before ``start_epoch`` are plain random batches (a curriculum: the easy
    differences first). ``group_share=1`` makes batches of groups only. Notebook 03's sweep
    measures these choices.
    """

    def __init__(self, groups: np.ndarray, batch_size: int, *, n_images: int | None = None,
                 group_share: float = 0.5, start_epoch: int = 0, seed: int = 0) -> None:
        groups = np.asarray(groups)
        if groups.ndim != 2 or groups.shape[1] < 2:
            raise ValueError(f"groups must be (n_groups, group_size >= 2), got {groups.shape}")
        if not 0.0 < group_share <= 1.0:
            raise ValueError(f"group_share must be in (0, 1], got {group_share}")
        size = groups.shape[1]
        self.per_batch = int(round(batch_size * group_share)) // size
        if self.per_batch < 1:
            raise ValueError(f"a batch of {batch_size} with group_share {group_share} holds no "
                             f"whole group of {size}")
        self.groups = groups
        self.group_size = size
        self.group_rows = self.per_batch * size
        self.batch_size = batch_size
        self.n_images = int(groups.max()) + 1 if n_images is None else int(n_images)
        self.n_batches = self.n_images // batch_size
        if self.n_batches < 1 or len(groups) < self.per_batch:
            raise ValueError(f"{self.n_images} images in {len(groups)} groups make no batch of "
                             f"{batch_size} with {self.per_batch} groups")
        self.start_epoch = int(start_epoch)
        self.seed = seed
        self.epoch = 0

    @property
    def active(self) -> bool:
        """Whether this epoch's batches hold groups (epochs before ``start_epoch`` do not)."""
        return self.epoch >= self.start_epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the order of groups (and the random images) for ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 29, self.epoch]))
        if not self.active:  # plain random batches, one pass over the images
            order = rng.permutation(self.n_images)
            for b in range(self.n_batches):
                yield order[b * self.batch_size : (b + 1) * self.batch_size].tolist()
            return
        order = rng.permutation(len(self.groups))
        used = 0
        for _ in range(self.n_batches):
            if used + self.per_batch > len(order):
                order, used = rng.permutation(len(self.groups)), 0
            chosen = self.groups[order[used : used + self.per_batch]].reshape(-1)
            used += self.per_batch
            rest = self.batch_size - len(chosen)
            if rest:
                mask = np.ones(self.n_images, dtype=bool)
                mask[chosen] = False
                others = rng.choice(np.flatnonzero(mask), size=rest, replace=False)
                chosen = np.concatenate([chosen, others])
            yield chosen.tolist()


def training_captions(split: Split, epochs: int, seed: int = 0, start_epoch: int = 0) -> np.ndarray:
    """Sorted indices of every caption :class:`TrainPairs` shows in epochs ``start_epoch`` to
    ``epochs - 1`` (all of them by default)."""
    check_int(start_epoch, "start_epoch", 0, type_error=ValueError)
    pairs = TrainPairs(split, seed=seed)
    shown = set()
    for epoch in range(start_epoch, epochs):
        pairs.set_epoch(epoch)
        shown.update(pairs.epoch_captions().tolist())
    return np.array(sorted(shown), dtype=np.int64)


@torch.no_grad()
def teacher_scores(
    slow_model: torch.nn.Module, tokenizer, split: Split, groups: np.ndarray,
    captions: np.ndarray, *, max_len: int, device: torch.device | str = "cpu",
    desc: str = "teacher scores", image_groups: int = 64,
) -> np.ndarray:
    """``(n_captions_in_split, group_size)`` Slow scores; rows not in ``captions`` are NaN.

    Row ``c`` holds ``s_slow(caption c, image)`` for every image of the group of caption
    ``c``'s image, in the group's order. The image side is computed for ``image_groups``
    groups at a time, only for the groups that hold one of ``captions``' images; then one
    :func:`score_block` per group scores its captions against its images.
    """
    check_gallery(slow_model, split.images[:1])
    slow_model.eval()
    group_of = np.full(len(split), -1, dtype=np.int64)
    for g, members in enumerate(groups):
        group_of[members] = g
    captions = np.asarray(captions, dtype=np.int64)
    out = np.full((len(split.captions), groups.shape[1]), np.nan, dtype=np.float32)
    owner = group_of[split.caption_image[captions]]
    captions, owner = captions[owner >= 0], owner[owner >= 0]
    by_group = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[by_group], np.arange(len(groups) + 1))
    size = groups.shape[1]
    bar = progress(total=len(captions) * size, desc=desc)
    used = np.flatnonzero(bounds[1:] > bounds[:-1])  # only groups that hold a scored caption
    for u0 in range(0, len(used), image_groups):
        block = used[u0 : u0 + image_groups]
        # The image side of many groups at once (a batch the backbone runs efficiently) ...
        chunk = image_cache(slow_model, split.images[groups[block].ravel()], device)
        for j, g in enumerate(block):
            rows = captions[by_group[bounds[g] : bounds[g + 1]]]
            # ... then each group's captions against its own images (a slice: no copy).
            lo = j * size
            cache = {name: [(k[lo : lo + size], v[lo : lo + size]) for k, v in layers]
                     for name, layers in chunk.items()}
            tokens = caption_tokens(tokenizer, [split.captions[c] for c in rows], max_len)
            out[rows] = score_block(slow_model, tokens, cache).numpy()
            bar.update(len(rows) * size)
    bar.close()
    return out


def distillation_extra_loss(
    teacher: np.ndarray, sampler: GroupBatchSampler, *, weight: float, tau: float,
):
    """An ``extra_loss`` for :func:`fastslow_lib.fast.training.train_fast`: ``weight`` x the term.

    ``teacher`` is :func:`teacher_scores`' array for ``sampler``'s groups (checked for coverage
    by :func:`get_teacher_scores`, where it enters); the batches must come from ``sampler``.
    The term covers the batch's group rows (the first ``sampler.group_rows``).
    """
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    table = torch.from_numpy(np.asarray(teacher, dtype=np.float32))

    def extra(model: torch.nn.Module, batch: dict[str, Any], img, txt, scale) -> torch.Tensor:
        if not sampler.active:
            return txt.new_zeros(())
        n = sampler.group_rows
        rows = table[batch["caption_index"][:n]].to(txt.device)
        return weight * group_distillation_loss(txt[:n], img[:n], scale, rows,
                                                sampler.group_size, tau)

    return extra


def check_teacher_covers(teacher: np.ndarray, split: Split, groups: np.ndarray,
                         captions: np.ndarray) -> None:
    """A clear error if ``teacher`` lacks a score for a caption the student's batches show.

    Those are the ``captions`` (:func:`training_captions`) whose image is in one of ``groups``.
    """
    captions = np.asarray(captions, dtype=np.int64)
    shown = captions[np.isin(split.caption_image[captions], groups)]
    missing = shown[np.isnan(teacher[shown]).any(axis=1)]
    if len(missing):
        raise ValueError(f"no teacher scores for {len(missing)} training captions (first: "
                         f"{missing[:5].tolist()}): teacher_scores must cover every caption "
                         "the loop shows; delete the cached teacher scores to recompute them")


def make_groups(cfg: DistillConfig, fast_model: torch.nn.Module, split: Split, *, seed: int = 0,
                device: torch.device | str = "cpu") -> np.ndarray:
    """The groups ``cfg`` asks for: look-alikes by ``fast_model``, or random."""
    if cfg.groups == "lookalike":
        return lookalike_groups(fast_model, split, cfg.group_size, seed=seed, device=device)
    return random_groups(len(split), cfg.group_size, seed)


def get_teacher_scores(
    world: World, tokenizer, slow_model: torch.nn.Module, slow_checkpoint: str | Path,
    groups: np.ndarray, train_cfg: FastTrainConfig, cache: str | Path, *,
    start_epoch: int = 0, device: torch.device | str = "cpu",
) -> tuple[np.ndarray, bool]:
    """:func:`teacher_scores` for the captions Fast's loop shows, cached at ``cache``.

    Only the epochs from ``start_epoch`` on (those whose batches hold groups, see
    :class:`GroupBatchSampler`) need the teacher, so only their captions are scored.

    The cache is keyed on the teacher's weights (the file hash of ``slow_checkpoint``), the
    groups and the captions, so a retrained teacher or other groups recompute it. The scores
    are checked to cover every caption the student's batches show. Returns
    ``(scores, loaded)``.
    """
    captions = training_captions(world.train, train_cfg.epochs, train_cfg.seed, start_epoch)
    config = {"teacher": file_fingerprint(slow_checkpoint), "groups": array_fingerprint(groups),
              "captions": array_fingerprint(captions), "world": world.config.key()}

    def compute() -> dict[str, np.ndarray]:
        return {"scores": teacher_scores(slow_model, tokenizer, world.train, groups, captions,
                                         max_len=train_cfg.max_len, device=device)}

    arrays, loaded = cached_arrays(cache, config, compute)
    check_teacher_covers(arrays["scores"], world.train, groups, captions)
    return arrays["scores"], loaded


def distilled_recipe(
    world: World, tokenizer, fast_model_config: dict, train_cfg: FastTrainConfig,
    distill_cfg: DistillConfig, *, fast_model: torch.nn.Module,
    slow_model: torch.nn.Module | None, fast_checkpoint: str | Path,
    slow_checkpoint: str | Path | None, teacher_cache: str | Path | None,
    device: torch.device | str = "cpu",
) -> Recipe:
    """The recipe of the student of signal (a) (``create_model("fast_distilled")``; a
    :class:`~fastslow_lib.core.cache.Recipe`).

    ``fast_model`` (plain Fast, saved at ``fast_checkpoint``) mines the look-alike groups and
    ``slow_model`` (the teacher, saved at ``slow_checkpoint``) scores them, cached at
    ``teacher_cache`` (:func:`get_teacher_scores`); both checkpoints are the student's parents
    (their file hashes join its key). ``train_cfg`` is the student's InfoNCE budget with
    ``fast_model_config``'s towers, ``distill_cfg`` how it is distilled. The history keeps the
    teacher's seconds (``teacher_seconds``).

    ``distill_cfg.weight == 0`` is signal (a)'s **control** (``create_model(
    "fast_lookalike_batches")``): the same look-alike batches, mined by the same Fast, with no
    teacher; ``slow_model``, ``slow_checkpoint`` and ``teacher_cache`` must then be ``None``
    (the teacher is not a parent, so retraining Slow does not invalidate the control).
    """
    cfg, dcfg = train_cfg, distill_cfg
    control = dcfg.weight == 0
    teacher_args = {"slow_model": slow_model, "slow_checkpoint": slow_checkpoint,
                    "teacher_cache": teacher_cache}
    given = sorted(k for k, v in teacher_args.items() if v is not None)
    if control and given:
        raise ValueError(f"a student with distillation weight 0 (the control without a teacher) "
                         f"takes no teacher, got {given}; pass None")
    if not control and len(given) < len(teacher_args):
        raise ValueError(f"a distilled student (weight {dcfg.weight:g}) needs its teacher: "
                         f"missing {sorted(set(teacher_args) - set(given))}")
    model_config = FastConfig(vocab_size=len(tokenizer), max_len=cfg.max_len,
                              **fast_model_config).to_dict()
    config = {**training_key(model_config, cfg, world.config.key()), "distill": dcfg.to_dict()}

    def build(saved: dict) -> torch.nn.Module:
        torch.manual_seed(cfg.seed)  # the student's initialisation depends on the seed alone
        return build_dual_encoder(saved)

    def train(model: torch.nn.Module) -> dict:
        info: dict[str, Any] = {}
        groups = make_groups(dcfg, fast_model, world.train, seed=cfg.seed, device=device)
        extra = None
        if not control:
            start = time.perf_counter()
            teacher, _ = get_teacher_scores(world, tokenizer, slow_model, slow_checkpoint,  # type: ignore[arg-type]
                                            groups, cfg, teacher_cache,  # type: ignore[arg-type]
                                            start_epoch=dcfg.start_epoch, device=device)
            info["teacher_seconds"] = time.perf_counter() - start
        sampler = GroupBatchSampler(groups, cfg.batch_size, n_images=len(world.train),
                                    group_share=dcfg.group_share, start_epoch=dcfg.start_epoch,
                                    seed=cfg.seed)
        if not control:
            extra = distillation_extra_loss(teacher, sampler, weight=dcfg.weight, tau=dcfg.tau)
        info["history"] = train_fast(model, world, tokenizer, cfg, device=device,
                                     extra_loss=extra, batch_sampler=sampler,
                                     desc="training Fast on look-alike batches" if control
                                     else "training distilled Fast")
        return info

    parents = ({"groups_from": fast_checkpoint} if control
               else {"teacher": slow_checkpoint, "groups_from": fast_checkpoint})
    return Recipe(config, build, train, parents)  # type: ignore[arg-type]
