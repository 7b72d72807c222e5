"""Contrastive loss of the Fast dual encoder.

Taught in notebooks/01_fast.ipynb.

:func:`info_nce` is the symmetric InfoNCE loss of CLIP and of the Fast model of Miech et al.:
in a batch of B matching (image, caption) pairs, each image must pick its own caption among
the B captions, and each caption its own image among the B images. Both directions are a
B-way softmax cross-entropy over ``logit_scale * cosine similarity``; the loss is their mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["check_embeddings", "info_nce"]


def _check_scale(logit_scale: object) -> torch.Tensor | float:
    """Check the logit scale: a positive finite number, or a one-element float tensor.

    A Python number is checked by value. A tensor gets only shape and dtype checks: reading its
    value would make the host wait for the device at every training step, and the scale a model
    returns (``DualEncoder.scale()``) is positive and finite by construction.
    """
    if isinstance(logit_scale, torch.Tensor):
        if logit_scale.numel() != 1:
            raise ValueError(
                f"logit_scale must be a scalar, got a tensor of shape {tuple(logit_scale.shape)}"
            )
        if not logit_scale.dtype.is_floating_point:
            raise TypeError(f"logit_scale must be a float tensor, got dtype {logit_scale.dtype}")
        return logit_scale.reshape(())
    if isinstance(logit_scale, int | float) and not isinstance(logit_scale, bool):
        value = float(logit_scale)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f"logit_scale must be positive and finite, got {value}; pass the scale exp(t) "
                "(DualEncoder.scale()), not a temperature or a log"
            )
        return value
    raise TypeError(
        f"logit_scale must be a number or a tensor, got {type(logit_scale).__name__}"
    )


def check_embeddings(emb: object, name: str, shape: str = "(N, d)") -> torch.Tensor:
    """``emb`` itself if it is a 2-D float tensor ``shape``; else an error naming ``name``."""
    if not isinstance(emb, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(emb).__name__}")
    if emb.dim() != 2:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(emb.shape)}")
    if not emb.dtype.is_floating_point:
        raise TypeError(f"{name} must be a float tensor, got dtype {emb.dtype}")
    return emb


def info_nce(
    img_emb: torch.Tensor, txt_emb: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Symmetric InfoNCE loss of a batch of matching pairs ``(img_emb[i], txt_emb[i])``.

    ``logits[i, j] = logit_scale * <img_emb[i], txt_emb[j]>``; the loss is the mean of the
    image-to-text cross-entropy (rows of ``logits``) and the text-to-image cross-entropy
    (columns), both with the positives on the diagonal, each averaged over the batch.

    ``img_emb`` and ``txt_emb``: float tensors of the same shape ``(B, d)``, ``B >= 2``,
    usually L2-normalised (``DualEncoder.encode_*``). ``logit_scale``: the positive factor
    ``exp(t)`` (``DualEncoder.scale()``, i.e. 1 / temperature), a number or a scalar tensor.
    Only shapes and dtypes are checked for tensors (a number's value is checked too): the loss
    runs at every training step and never reads a tensor back to the host.

    Two captions of the same image in one batch count as negatives of each other's image: the
    training loop should draw one caption per image per batch.

    Returns a 0-d tensor; gradients flow to both embeddings and to ``logit_scale``.
    """
    check_embeddings(img_emb, "img_emb", "(B, d)")
    check_embeddings(txt_emb, "txt_emb", "(B, d)")
    if img_emb.shape != txt_emb.shape:
        raise ValueError(
            f"img_emb {tuple(img_emb.shape)} and txt_emb {tuple(txt_emb.shape)} must have the "
            "same shape: row i of each is one matching (image, caption) pair"
        )
    batch = img_emb.shape[0]
    if batch < 2:
        raise ValueError(
            f"info_nce needs a batch of at least 2 pairs (each pair's negatives are the other "
            f"pairs), got {batch}"
        )
    scale = _check_scale(logit_scale)
    logits = scale * (img_emb @ txt_emb.T)
    targets = torch.arange(batch, device=logits.device)
    image_to_text = F.cross_entropy(logits, targets)
    text_to_image = F.cross_entropy(logits.T, targets)
    return (image_to_text + text_to_image) / 2
