"""Batched scoring with the Slow captioner: many (caption, image) pairs per decoder pass.

Taught in notebooks/02_slow.ipynb.

The image side (backbone, pyramid, and every decoder layer's cross-attention keys and values)
is computed once per image and reused for every caption; captions are tokenised once, in both
directions. The hot path scores a block of ``texts x images`` pairs in one decoder call per
direction: no Python loop over pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.models.slow import SlowModel, token_logprobs
from fastslow_lib.tokenizer import encode


def _tokens(tok, texts: Sequence[str], max_len: int) -> dict[str, dict[str, torch.Tensor]]:
    """Both directions of ``texts``, each trimmed to its longest real sequence."""
    out = {}
    for name, reverse in (("forward", False), ("backward", True)):
        batch = encode(tok, list(texts), max_len=max_len, reverse=reverse)
        length = int(batch["attention_mask"].sum(dim=1).max())
        out[name] = {k: v[:, :length] for k, v in batch.items()}
    return out


@torch.no_grad()
def image_cache(
    model: SlowModel, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per decoder, per layer: cross-attention keys/values ``(n, heads, tokens, d_h)``."""
    x = images if isinstance(images, torch.Tensor) else images_to_tensor(images)
    visual = model.vision(x.to(device))
    return {name: dec.cache(visual) for name, dec in model.decoders()}


def _expand(kv: tuple[torch.Tensor, torch.Tensor], n_texts: int) -> tuple[torch.Tensor, ...]:
    """Repeat every image's K/V for each of ``n_texts`` texts: pair (t, i) at t * n_img + i."""
    return tuple(
        t.unsqueeze(0).expand(n_texts, *t.shape).reshape(n_texts * t.shape[0], *t.shape[1:])
        for t in kv
    )


@torch.no_grad()
def score_block(
    model: SlowModel, tokens: dict[str, dict[str, torch.Tensor]],
    cache: dict[str, list[tuple[torch.Tensor, torch.Tensor]]],
) -> torch.Tensor:
    """Scores ``(n_texts, n_images)`` of every tokenised text against every cached image."""
    n_texts = next(iter(tokens.values()))["input_ids"].shape[0]
    n_images = cache["forward"][0][0].shape[0]
    total = torch.zeros(n_texts * n_images)
    for name, decoder in model.decoders():
        ids = tokens[name]["input_ids"].repeat_interleave(n_images, dim=0)
        mask = tokens[name]["attention_mask"].repeat_interleave(n_images, dim=0)
        kv = [_expand(layer_kv, n_texts) for layer_kv in cache[name]]
        device = kv[0][0].device
        logits = decoder(ids[:, :-1].to(device), kv=kv)  # type: ignore[arg-type]
        total += token_logprobs(logits, ids.to(device), mask.to(device)).cpu()
    return total.view(n_texts, n_images)


@torch.no_grad()
def slow_scores(
    model: SlowModel, tok, texts: Sequence[str], images: np.ndarray, *, max_len: int,
    text_block: int = 32, image_block: int = 64, device: torch.device | str = "cpu",
    progress_bar=None,
) -> np.ndarray:
    """Score matrix ``(len(texts), len(images))``: ``log p_fwd(t|v) + log p_bwd(t|v)``."""
    model.eval()
    tokens = _tokens(tok, texts, max_len)
    out = np.zeros((len(texts), len(images)), dtype=np.float32)
    for i0 in range(0, len(images), image_block):
        cache = image_cache(model, images[i0 : i0 + image_block], device)
        for t0 in range(0, len(texts), text_block):
            block = {name: {k: v[t0 : t0 + text_block] for k, v in d.items()}
                     for name, d in tokens.items()}
            out[t0 : t0 + text_block, i0 : i0 + image_block] = score_block(model, block, cache)
            if progress_bar is not None:
                n_texts = len(block["forward"]["input_ids"])
                progress_bar.update(n_texts * len(cache["forward"][0][0]))
    return out


@torch.no_grad()
def slow_pair_scores(
    model: SlowModel, tok, texts: Sequence[str], images: np.ndarray, *, max_len: int,
    batch: int = 256, device: torch.device | str = "cpu",
) -> np.ndarray:
    """Scores of aligned pairs ``(texts[i], images[i])``: ``(len(texts),)``."""
    model.eval()
    out = []
    for s in range(0, len(texts), batch):
        tokens = _tokens(tok, texts[s : s + batch], max_len)
        x = images_to_tensor(images[s : s + batch]).to(device)
        visual = model.vision(x)
        total = torch.zeros(len(x))
        for name, decoder in model.decoders():
            ids = tokens[name]["input_ids"].to(device)
            mask = tokens[name]["attention_mask"].to(device)
            total += token_logprobs(decoder(ids[:, :-1], visual), ids, mask).cpu()
        out.append(total)
    return torch.cat(out).numpy()
