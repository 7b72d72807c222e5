"""The Fast model: a dual encoder that maps images and captions into one L2-normalised space.

Taught in notebooks/01_fast.ipynb.

Two towers that never look at each other (:mod:`fastslow_lib.fast.towers`):

* :class:`VisionTower`: a small timm CNN (global average pooled) and a linear projection;
* :class:`TextTower`: a small transformer encoder (a ``transformers`` ModernBERT with rotary
  positions trained from scratch, a BERT with learned absolute positions for comparison, or a
  local pretrained checkpoint), masked mean pooling and a linear projection.

:class:`DualEncoder` puts them together: both outputs are L2-normalised, so the score of a
(caption, image) pair is a dot product, and image embeddings can be computed once and put in
an index (FAISS). Training uses :func:`fastslow_lib.fast.losses.info_nce` with the model's
learnable temperature (``DualEncoder.scale()``).

Why rotary positions: the compositional probe needs the text tower to *bind* words ("red" to
"circle", not "red" somewhere and "circle" somewhere). Trained alone to read off which
(shape, colour) pairs a caption names, a BERT with learned absolute position embeddings sits
on a long plateau before it learns to look at the neighbouring word; a ModernBERT, whose rotary
positions make "the previous word" the same offset everywhere, learns it much sooner. Inside
InfoNCE, where binding is rarely needed to beat random in-batch negatives, the BERT tower does
not leave the plateau within the laptop budget while the ModernBERT tower does (curves:
scripts/text_binding.py, results/text_binding.json and the notebook).

Pitfall: a text tower whose word embeddings start at N(0, 1), next to position embeddings of
scale 0.02, ignores word order, so "a red circle left of a blue square" and "a blue circle left
of a red square" get the same embedding, and training does not fix it. ``transformers``
initialises every embedding at std 0.02 (``initializer_range``). The tests check the std, that
the twins' embeddings differ at initialisation (slightly: an untrained transformer is nearly
linear) and that a few training steps pull them apart, while the order-blind tower keeps them
identical.

Forward passes check shapes only, never values (a value check is a device sync on a GPU);
:mod:`fastslow_lib.fast.input_checks` holds the value checks that the edges run on user
input. ``DualEncoder.forward`` returns a :class:`FastOutput` (a named tuple, so
``img, txt, scale = model(...)`` and ``info_nce(*model(...))`` read it as before).

The config and the towers live in :mod:`~fastslow_lib.fast.config` and
:mod:`~fastslow_lib.fast.towers`; import them from there.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fastslow_lib.core.hub import HubModel
from fastslow_lib.fast.config import MAX_LOGIT_SCALE, FastConfig, as_fast_config
from fastslow_lib.fast.losses import check_embeddings
from fastslow_lib.fast.towers import TextTower, VisionTower

__all__ = ["DualEncoder", "FastOutput"]


class FastOutput(NamedTuple):
    """What :meth:`DualEncoder.forward` returns: a named tuple, so it unpacks as before."""

    #: ``(B, d)`` unit-norm image embeddings.
    img_emb: torch.Tensor
    #: ``(B, d)`` unit-norm caption embeddings.
    txt_emb: torch.Tensor
    #: The clamped scale ``exp(t)`` (not its log), a 0-d tensor with gradient.
    logit_scale: torch.Tensor


class DualEncoder(nn.Module, HubModel):
    """The Fast model: vision and text towers into one L2-normalised space of size d.

    ``logit_scale`` is a learnable scalar in log space, initialised to
    ``log(1 / init_temperature)``; :meth:`scale` returns ``exp(min(logit_scale, log 100))``,
    the factor the loss multiplies cosine similarities by (a scale above 100 would let the
    loss shrink by sharpening alone). ``vision_pretrained_path`` / ``text_pretrained_dir``
    optionally start the towers from local pretrained weights.
    """

    def __init__(
        self,
        config: FastConfig | dict[str, Any],
        *,
        vision_pretrained_path: str | Path | None = None,
        text_pretrained_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.config = as_fast_config(config)
        self.vision = VisionTower(self.config, pretrained_path=vision_pretrained_path)
        if text_pretrained_dir is None:
            self.text = TextTower(self.config)
        else:
            self.text = TextTower.from_pretrained_dir(text_pretrained_dir, self.config)
        init = math.log(1.0 / self.config.init_temperature)
        self.logit_scale = nn.Parameter(torch.tensor(init, dtype=torch.float32))

    @property
    def embed_dim(self) -> int:
        """Dimension d of the joint embedding space."""
        return self.config.embed_dim

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float images in [0, 1] -> ``(B, d)`` unit-norm embeddings."""
        return F.normalize(self.vision(images), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids and mask -> ``(B, d)`` unit-norm embeddings."""
        return F.normalize(self.text(input_ids, attention_mask), dim=-1)

    def scale(self) -> torch.Tensor:
        """The logit scale ``exp(logit_scale)``, clamped at 100 (a 0-d tensor with gradient)."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    @property
    def temperature(self) -> float:
        """The current softmax temperature ``1 / scale()``, as a plain float."""
        return float(1.0 / self.scale().detach())

    def forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> FastOutput:
        """Embed a batch of matching (image, caption) pairs.

        Returns a :class:`FastOutput` ``(img_emb, txt_emb, logit_scale)``: two ``(B, d)``
        unit-norm tensors and the clamped scale ``exp(t)`` (not its log), ready for
        ``losses.info_nce``.
        """
        n_images = images.shape[0] if isinstance(images, torch.Tensor) else None
        n_texts = input_ids.shape[0] if isinstance(input_ids, torch.Tensor) else None
        if n_images is not None and n_texts is not None and n_images != n_texts:
            raise ValueError(
                f"forward takes matching pairs: got {n_images} images and {n_texts} captions"
            )
        return FastOutput(self.encode_image(images), self.encode_text(input_ids, attention_mask),
                          self.scale())

    @staticmethod
    def similarity(img_emb: torch.Tensor, txt_emb: torch.Tensor) -> torch.Tensor:
        """Score matrix ``scores[t, i] = <txt_emb[t], img_emb[i]>`` (texts x images).

        Rows are caption queries and columns gallery images, the layout of
        ``fastslow_lib.core.metrics.text_to_image_metrics``.
        """
        img_emb = check_embeddings(img_emb, "img_emb")
        txt_emb = check_embeddings(txt_emb, "txt_emb")
        if img_emb.shape[1] != txt_emb.shape[1]:
            raise ValueError(
                f"img_emb and txt_emb must have the same dimension, got {img_emb.shape[1]} "
                f"and {txt_emb.shape[1]}"
            )
        return txt_emb @ img_emb.T

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (shared ones counted once); only trainable ones if asked."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
