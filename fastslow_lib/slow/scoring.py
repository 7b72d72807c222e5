"""Batched scoring with the Slow captioner: many (caption, image) pairs per decoder pass.

Taught in notebooks/02_slow.ipynb.

The image side (backbone, pyramid, and every decoder layer's cross-attention keys and values)
is computed once per image and reused for every caption; captions are tokenised once, in both
directions (:func:`caption_tokens`, which training uses too). Every score, whatever the caller
(a gallery, re-ranking, distillation's teacher), comes from :func:`score_rows`. The hot path
scores a block of ``texts x images`` pairs in one decoder call per
direction: no Python loop over pairs. In cross-attention, the tokens of all the captions paired
with one image form one long query sequence against that image's cached keys and values
(cross-attention never mixes query positions), so the cache is read, not copied per caption.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from fastslow_lib.config.checks import check_int
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.data.tokenizer import check_texts, encode_unchecked
from fastslow_lib.fast.input_checks import check_vocabulary
from fastslow_lib.slow.decoder import token_logprobs
from fastslow_lib.slow.model import MatchingModel, SlowModel

__all__ = ["Cache", "Tokens", "blocked_scores", "caption_tokens", "check_gallery",
           "decoder_directions", "image_cache", "length_blocks", "score_block", "score_rows",
           "spread_blocks",
           "slow_pair_scores", "slow_scores", "trim_padding"]

#: Per direction (``"forward"``, ``"backward"``): ``input_ids`` and ``attention_mask``.
Tokens = dict[str, dict[str, torch.Tensor]]
#: Per direction, per decoder layer: cross-attention keys and values ``(n, heads, tokens, d_h)``.
Cache = dict[str, list[tuple[torch.Tensor, torch.Tensor]]]


def trim_padding(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the padding columns that no row of ``batch`` uses."""
    length = int(batch["attention_mask"].sum(dim=1).max())
    return {k: v[:, :length] for k, v in batch.items()}


def caption_tokens(tokenizer, texts: Sequence[str], max_len: int) -> Tokens:
    """``texts`` encoded in both directions, each trimmed to its longest real sequence.

    An inner step: it trusts its caller to have checked ``texts`` and ``tokenizer`` once
    (:func:`~fastslow_lib.data.tokenizer.check_texts`, as the scorers and the batch builders
    do), so a batch is not checked again per direction.
    """
    return {name: trim_padding(encode_unchecked(tokenizer, texts, max_len, reverse=reverse))
            for name, reverse in (("forward", False), ("backward", True))}


@torch.no_grad()
def image_cache(
    model: SlowModel, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> Cache:
    """Per decoder, per layer: cross-attention keys/values ``(n, heads, tokens, d_h)``."""
    x = images if isinstance(images, torch.Tensor) else images_to_tensor(images)
    visual = model.vision(x.to(device))
    return {name: dec.cache(visual) for name, dec in model.decoders()}


def decoder_directions(model: torch.nn.Module, directions: Sequence[str] | None) -> list:
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
def score_rows(
    model: torch.nn.Module, tokens: Tokens, *, kv: Cache | None = None,
    visual: dict[int, torch.Tensor] | None = None, group: int = 1,
    directions: Sequence[str] | None = None,
) -> torch.Tensor:
    """The score of every row of ``tokens`` against its image: ``(rows,)`` on the CPU.

    The one scoring function of the library. Row ``r`` pairs with image ``r // group`` of the
    cached keys/values ``kv`` (or of the ``visual`` tokens). A :class:`SlowModel` scores by
    log-likelihood, summed over ``directions`` (default: all its decoders); a
    :class:`MatchingModel` by its matching logit. ``tokens`` are on the model's device.
    """
    total: torch.Tensor | None = None
    for name, decoder in decoder_directions(model, directions):
        ids, mask = tokens[name]["input_ids"], tokens[name]["attention_mask"]
        layers = None if kv is None else kv[name]
        if isinstance(model, MatchingModel):
            score = model.logits(ids, mask, visual, layers, group)
        else:
            score = token_logprobs(decoder(ids[:, :-1], visual, layers, group), ids, mask)
        total = score.cpu() if total is None else total + score.cpu()
    assert total is not None  # decoder_directions never returns an empty list
    return total


@torch.no_grad()
def score_block(
    model: torch.nn.Module, tokens: Tokens, cache: Cache,
    directions: Sequence[str] | None = None,
) -> torch.Tensor:
    """Scores ``(n_texts, n_images)`` of every tokenised text against every cached image."""
    n_texts = next(iter(tokens.values()))["input_ids"].shape[0]
    n_images = cache["forward"][0][0].shape[0]
    device = cache["forward"][0][0].device
    # Image-major: pair (image i, text t) is row i * n_texts + t, so the n_texts rows of
    # image i form one group that attends to image i's cached keys/values (no copies).
    rows = {name: {k: v.to(device).repeat(n_images, 1) for k, v in d.items()}
            for name, d in tokens.items()}
    total = score_rows(model, rows, kv=cache, group=n_texts, directions=directions)
    return total.view(n_images, n_texts).T


@torch.no_grad()
def length_blocks(tokens: Tokens, text_block: int = 8) -> list[torch.Tensor]:
    """The blocks of text indices :func:`blocked_scores` scores together: the texts sorted by
    length (stable), ``text_block`` at a time, so each block is padded to (nearly) its own
    length. Timing a few of these blocks times the scorer as it runs on all of them
    (notebooks 02 and 04)."""
    check_int(text_block, "text_block", 1, type_error=ValueError)
    lengths = tokens["forward"]["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    return [order[t0 : t0 + text_block] for t0 in range(0, len(order), text_block)]


def spread_blocks(tokens: Tokens, n: int = 3, text_block: int = 8) -> np.ndarray:
    """The text indices of ``n`` of :func:`length_blocks`' blocks, spread from short to long
    (all of them when there are no more than ``n``): a sample that times the scorer at its
    full run's padding, per query (notebooks 02, 04 and 05)."""
    check_int(n, "n", 1, type_error=ValueError)
    blocks = length_blocks(tokens, text_block)
    picks = np.unique(np.linspace(0, len(blocks) - 1, min(n, len(blocks)) + 2)[1:-1].round()
                      .astype(int)) if len(blocks) > n else np.arange(len(blocks))
    return np.concatenate([blocks[b].numpy() for b in picks])


def blocked_scores(
    model: torch.nn.Module, tokens: Tokens, n_images: int,
    cache_of: Callable[[int, int], Cache], *,
    text_block: int = 8, image_block: int = 64, progress_bar=None,
    directions: Sequence[str] | None = None,
) -> np.ndarray:
    """Score matrix ``(n_texts, n_images)`` from :func:`caption_tokens`, block by block.

    ``cache_of(i0, i1)`` gives the cached image side of images ``i0 .. i1 - 1`` (computed here,
    as :func:`slow_scores` does, or sliced from a gallery's cache, as
    :meth:`fastslow_lib.rerank.SlowGallery.scores` does). Texts are scored in order of length,
    so a block of texts is padded to (nearly) its own length.
    """
    blocks = length_blocks(tokens, text_block)
    out = np.zeros((len(tokens["forward"]["input_ids"]), n_images), dtype=np.float32)
    for i0 in range(0, n_images, image_block):
        cache = cache_of(i0, min(i0 + image_block, n_images))
        in_block = len(cache["forward"][0][0])
        for rows in blocks:
            block = {name: trim_padding({k: v[rows] for k, v in d.items()})
                     for name, d in tokens.items()}
            out[rows.numpy(), i0 : i0 + in_block] = score_block(model, block, cache,
                                                                directions).numpy()
            if progress_bar is not None:
                progress_bar.update(len(rows) * in_block)
    return out


@torch.no_grad()
def slow_scores(
    model: SlowModel, tokenizer, texts: Sequence[str], images: np.ndarray, *, max_len: int,
    text_block: int = 8, image_block: int = 64, device: torch.device | str = "cpu",
    progress_bar=None, directions: Sequence[str] | None = None,
) -> np.ndarray:
    """Score matrix ``(len(texts), len(images))``: ``log p_fwd(t|v) + log p_bwd(t|v)``.

    ``directions=("forward",)`` scores with the forward decoder alone (the ablation of notebook
    02); a :class:`MatchingModel` scores by its matching logit. Texts are scored in order of
    length, in blocks of ``text_block`` against blocks of ``image_block`` cached images: a
    block of a few hundred pairs per decoder call keeps a CPU's caches warm (the block sizes
    are measured by ``benchmarks/bench_slow.py``).
    """
    check_gallery(model, images)
    texts = check_texts(texts)
    check_int(max_len, "max_len", 3)
    check_vocabulary(model, tokenizer)
    decoder_directions(model, directions)
    model.eval()
    return blocked_scores(
        model, caption_tokens(tokenizer, texts, max_len), len(images),
        lambda i0, i1: image_cache(model, images[i0:i1], device),
        text_block=text_block, image_block=image_block, progress_bar=progress_bar,
        directions=directions,
    )


@torch.no_grad()
def slow_pair_scores(
    model: torch.nn.Module, tokenizer, texts: Sequence[str], images: np.ndarray, *, max_len: int,
    batch: int = 256, device: torch.device | str = "cpu", directions: Sequence[str] | None = None,
) -> np.ndarray:
    """Scores of aligned pairs ``(texts[i], images[i])``: ``(len(texts),)``."""
    check_gallery(model, images)
    texts = check_texts(texts)
    check_int(max_len, "max_len", 3)
    if len(texts) != len(images):
        raise ValueError(f"{len(texts)} texts but {len(images)} images: pairs must align")
    check_vocabulary(model, tokenizer)
    decoder_directions(model, directions)
    model.eval()
    out = []
    for s in range(0, len(texts), batch):
        tokens = {name: {k: v.to(device) for k, v in d.items()}
                  for name, d in caption_tokens(tokenizer, texts[s : s + batch], max_len).items()}
        visual = model.vision(images_to_tensor(images[s : s + batch]).to(device))
        out.append(score_rows(model, tokens, visual=visual, directions=directions))
    return torch.cat(out).numpy()


def check_gallery(model: torch.nn.Module, images: np.ndarray) -> None:
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
