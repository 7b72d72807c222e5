"""Batched scoring with the Slow captioner: many (caption, image) pairs per decoder pass.

Taught in notebooks/02_slow.ipynb.

The image side (backbone, pyramid, and every decoder layer's cross-attention keys and values)
is computed once per image and reused for every caption; captions are tokenised once, in both
directions. The hot path scores a block of ``texts x images`` pairs in one decoder call per
direction: no Python loop over pairs. In cross-attention, the tokens of all the captions paired
with one image form one long query sequence against that image's cached keys and values
(cross-attention never mixes query positions), so the cache is read, not copied per caption.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.models.slow import MatchingModel, SlowModel, token_logprobs
from fastslow_lib.tokenizer import encode


def _tokens(tok, texts: Sequence[str], max_len: int) -> dict[str, dict[str, torch.Tensor]]:
    """Both directions of ``texts``, each trimmed to its longest real sequence."""
    out = {}
    for name, reverse in (("forward", False), ("backward", True)):
        batch = encode(tok, list(texts), max_len=max_len, reverse=reverse)
        length = int(batch["attention_mask"].sum(dim=1).max())
        out[name] = {k: v[:, :length] for k, v in batch.items()}
    return out


def _trim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the padding columns that no row of ``batch`` uses."""
    length = int(batch["attention_mask"].sum(dim=1).max())
    return {k: v[:, :length] for k, v in batch.items()}


@torch.no_grad()
def image_cache(
    model: SlowModel, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per decoder, per layer: cross-attention keys/values ``(n, heads, tokens, d_h)``."""
    x = images if isinstance(images, torch.Tensor) else images_to_tensor(images)
    visual = model.vision(x.to(device))
    return {name: dec.cache(visual) for name, dec in model.decoders()}


def _directions(model: torch.nn.Module, directions: Sequence[str] | None) -> list:
    """The ``(name, decoder)`` pairs to score with; ``None`` means all of the model's."""
    available = dict(model.decoders())
    if directions is None:
        return list(available.items())
    if isinstance(directions, str):
        directions = [directions]
    unknown = [d for d in directions if d not in available]
    if unknown or not directions:
        raise ValueError(f"directions must be a non-empty subset of {sorted(available)}, "
                         f"got {list(directions)}")
    return [(d, available[d]) for d in directions]


@torch.no_grad()
def score_block(
    model: torch.nn.Module, tokens: dict[str, dict[str, torch.Tensor]],
    cache: dict[str, list[tuple[torch.Tensor, torch.Tensor]]],
    directions: Sequence[str] | None = None,
) -> torch.Tensor:
    """Scores ``(n_texts, n_images)`` of every tokenised text against every cached image.

    A :class:`SlowModel` scores by log-likelihood (summed over ``directions``, default both); a
    :class:`MatchingModel` by its matching logit.
    """
    n_texts = next(iter(tokens.values()))["input_ids"].shape[0]
    n_images = cache["forward"][0][0].shape[0]
    total = torch.zeros(n_images * n_texts)
    for name, decoder in _directions(model, directions):
        kv = cache[name]
        device = kv[0][0].device
        # Image-major: pair (image i, text t) is row i * n_texts + t, so the n_texts rows of
        # image i form one group that attends to image i's cached keys/values (no copies).
        ids = tokens[name]["input_ids"].to(device).repeat(n_images, 1)
        mask = tokens[name]["attention_mask"].to(device).repeat(n_images, 1)
        if isinstance(model, MatchingModel):
            total += model.logits(ids, mask, kv=kv, group=n_texts).cpu()
        else:
            logits = decoder(ids[:, :-1], kv=kv, group=n_texts)
            total += token_logprobs(logits, ids, mask).cpu()
    return total.view(n_images, n_texts).T


@torch.no_grad()
def blocked_scores(
    model: torch.nn.Module, tokens: dict[str, dict[str, torch.Tensor]], n_images: int,
    cache_of: Callable[[int, int], dict[str, list[tuple[torch.Tensor, torch.Tensor]]]], *,
    text_block: int = 8, image_block: int = 64, progress_bar=None,
    directions: Sequence[str] | None = None,
) -> np.ndarray:
    """Score matrix ``(n_texts, n_images)`` from :func:`_tokens` output, block by block.

    ``cache_of(i0, i1)`` gives the cached image side of images ``i0 .. i1 - 1`` (computed here,
    as :func:`slow_scores` does, or sliced from a gallery's cache, as
    :meth:`fastslow_lib.rerank.SlowGallery.scores` does). Texts are scored in order of length,
    so a block of texts is padded to (nearly) its own length.
    """
    lengths = tokens["forward"]["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    out = np.zeros((len(lengths), n_images), dtype=np.float32)
    for i0 in range(0, n_images, image_block):
        cache = cache_of(i0, min(i0 + image_block, n_images))
        in_block = len(cache["forward"][0][0])
        for t0 in range(0, len(lengths), text_block):
            rows = order[t0 : t0 + text_block]
            block = {name: _trim({k: v[rows] for k, v in d.items()})
                     for name, d in tokens.items()}
            out[rows.numpy(), i0 : i0 + in_block] = score_block(model, block, cache,
                                                                directions).numpy()
            if progress_bar is not None:
                progress_bar.update(len(rows) * in_block)
    return out


@torch.no_grad()
def slow_scores(
    model: SlowModel, tok, texts: Sequence[str], images: np.ndarray, *, max_len: int,
    text_block: int = 8, image_block: int = 64, device: torch.device | str = "cpu",
    progress_bar=None, directions: Sequence[str] | None = None,
) -> np.ndarray:
    """Score matrix ``(len(texts), len(images))``: ``log p_fwd(t|v) + log p_bwd(t|v)``.

    ``directions=("forward",)`` scores with the forward decoder alone (the ablation of notebook
    02); a :class:`MatchingModel` scores by its matching logit. Texts are scored in order of
    length, in blocks of ``text_block`` against blocks of ``image_block`` cached images. The
    default block (8 x 64 = 512 pairs per decoder call) was the fastest measured on a 2-core
    CPU: larger blocks outgrow the caches (2,048 pairs per call ran at half the speed).
    """
    _check_gallery(model, images)
    _directions(model, directions)
    model.eval()
    return blocked_scores(
        model, _tokens(tok, texts, max_len), len(images),
        lambda i0, i1: image_cache(model, images[i0:i1], device),
        text_block=text_block, image_block=image_block, progress_bar=progress_bar,
        directions=directions,
    )


@torch.no_grad()
def slow_pair_scores(
    model: torch.nn.Module, tok, texts: Sequence[str], images: np.ndarray, *, max_len: int,
    batch: int = 256, device: torch.device | str = "cpu", directions: Sequence[str] | None = None,
) -> np.ndarray:
    """Scores of aligned pairs ``(texts[i], images[i])``: ``(len(texts),)``."""
    _check_gallery(model, images)
    if len(texts) != len(images):
        raise ValueError(f"{len(texts)} texts but {len(images)} images: pairs must align")
    chosen = _directions(model, directions)
    model.eval()
    out = []
    for s in range(0, len(texts), batch):
        tokens = _tokens(tok, texts[s : s + batch], max_len)
        x = images_to_tensor(images[s : s + batch]).to(device)
        visual = model.vision(x)
        total = torch.zeros(len(x))
        for name, decoder in chosen:
            ids = tokens[name]["input_ids"].to(device)
            mask = tokens[name]["attention_mask"].to(device)
            if isinstance(model, MatchingModel):
                total += model.logits(ids, mask, visual).cpu()
            else:
                total += token_logprobs(decoder(ids[:, :-1], visual), ids, mask).cpu()
        out.append(total)
    return torch.cat(out).numpy()


def _check_gallery(model: torch.nn.Module, images: np.ndarray) -> None:
    """A clear error for images of the wrong size or channel count (before any work)."""
    arr = np.asarray(images)
    size = model.config.image_size
    frames = getattr(model, "frames", None)  # video models (notebook 05) take clips
    item = (size, size, 3) if frames is None else (frames, size, size, 3)
    if arr.ndim != 1 + len(item) or arr.shape[1:] != item:
        what = "images" if frames is None else "clips"
        raise ValueError(
            f"{what} must have shape (N, {', '.join(map(str, item))}) uint8 for this model, "
            f"got {tuple(arr.shape)}"
        )
    if len(arr) == 0:
        raise ValueError("images is empty: give at least one image")
