"""The Slow model: a cross-attention captioner that scores a (caption, image) pair by likelihood.

Taught in notebooks/02_slow.ipynb.

Pieces, as in Miech et al. (CVPR 2021), at laptop scale:

* :class:`VisualPyramid` (:mod:`fastslow_lib.slow.pyramid`): a timm CNN with ``features_only``
  (maps at strides 32, 16, 8) and a top-down path with lateral connections (as in FPN), every
  level flattened into visual tokens with a fixed 2D sinusoidal position code of the cell
  centres, so all levels share one coordinate frame.
* :class:`CaptionDecoder` (:mod:`fastslow_lib.slow.decoder`): transformer decoder layers (causal
  self-attention, cross-attention to the visual tokens of the layer's pyramid level, MLP).
  ``layer_strides`` picks each layer's level, coarse to fine: ``(32, 16, 8)`` is gradual
  upsampling, ``(32, 32, 32)`` no upsampling.
* :class:`SlowModel`: the pyramid, a forward decoder (left to right) and, when
  ``bidirectional``, a backward decoder (right to left). Training loss: the sum of both token
  cross-entropies. Score: ``s(t, v) = log p_fwd(t | v) + log p_bwd(t | v)``, summed over the
  caption's tokens. Ranking images for a fixed caption needs no length normalisation: every
  image is scored on the same tokens.
* :class:`MatchingModel`: the same trunk with a binary matching head (the ITM baseline).

Forward passes check shapes only, never values (a value check is a device sync on a GPU);
images from users go through :func:`fastslow_lib.fast.input_checks.check_images` at the edges.
The forward passes return typed outputs (:class:`SlowOutput`, :class:`MatchingOutput`):
``transformers`` ``ModelOutput`` dataclasses, read as attributes (``out.loss``) or, as before,
as a dict (``out["loss"]``, ``out.get("caption")``, ``"backward" in out``, ``**out``). The
config, pyramid and decoder live in :mod:`~fastslow_lib.slow.config`,
:mod:`~fastslow_lib.slow.pyramid` and :mod:`~fastslow_lib.slow.decoder`; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from fastslow_lib.config.checks import check_int
from fastslow_lib.core.hub import HubModel
from fastslow_lib.slow.config import SlowConfig
from fastslow_lib.slow.decoder import CaptionDecoder
from fastslow_lib.slow.pyramid import VisualPyramid

__all__ = ["ChunkPlan", "MatchingModel", "MatchingOutput", "SlowModel", "SlowOutput",
           "length_chunk_plan"]


@dataclass
class SlowOutput(ModelOutput):
    """What :meth:`SlowModel.forward` returns: the training losses, typed.

    A ``ModelOutput`` (an ordered dict): ``out.loss`` and ``out["loss"]`` are the same tensor;
    keys are the fields that are set, in this order (``backward`` only when bidirectional).
    """

    #: Mean token cross-entropy of the forward (left-to-right) decoder.
    forward: torch.Tensor | None = None
    #: Mean token cross-entropy of the backward decoder (None when forward-only).
    backward: torch.Tensor | None = None
    #: The training loss: the sum of the directions' losses.
    loss: torch.Tensor | None = None


@dataclass
class MatchingOutput(ModelOutput):
    """What :meth:`MatchingModel.forward` returns, typed (a ``ModelOutput``, as
    :class:`SlowOutput`): the matching loss, the total loss, the accuracy, and the captioning
    loss when ``caption_weight > 0`` (else None and not a key)."""

    #: The matching loss (binary or listwise cross-entropy).
    matching: torch.Tensor | None = None
    #: The training loss: ``matching + caption_weight * caption``.
    loss: torch.Tensor | None = None
    #: Share of right matching decisions (detached).
    accuracy: torch.Tensor | None = None
    #: The forward captioning loss of the matching pairs (only when ``caption_weight > 0``).
    caption: torch.Tensor | None = None


#: Rows of a batch in groups of similar caption length, each with its longest length.
ChunkPlan = list[tuple[torch.Tensor, int]]


def length_chunk_plan(mask: torch.Tensor, length_chunks: int) -> ChunkPlan:
    """The batch's rows sorted by caption length and cut into ``length_chunks`` groups, each with
    its longest length: ``[(rows, n), ...]`` (:meth:`SlowModel.forward` pads a group to ``n``).

    It reads the lengths, so call it on the CPU mask, before the batch moves to a device.
    """
    check_int(length_chunks, "length_chunks", type_error=ValueError)
    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths)
    plan = []
    for rows in order.chunk(min(length_chunks, len(order))):
        plan.append((rows, int(lengths[rows].max())))
    return plan


class SlowModel(nn.Module, HubModel):
    """The pyramid and one or two caption decoders (forward, and backward if bidirectional)."""

    def __init__(self, config: SlowConfig | dict[str, Any]) -> None:
        super().__init__()
        self.config = config if isinstance(config, SlowConfig) else SlowConfig.from_dict(config)
        self.vision = VisualPyramid(self.config)
        self.forward_decoder = CaptionDecoder(self.config)
        self.backward_decoder = CaptionDecoder(self.config) if self.config.bidirectional else None

    def decoders(self) -> list[tuple[str, CaptionDecoder]]:
        """``[("forward", dec), ("backward", dec)]`` (the second only when bidirectional)."""
        out = [("forward", self.forward_decoder)]
        if self.backward_decoder is not None:
            out.append(("backward", self.backward_decoder))
        return out

    def forward(
        self, images: torch.Tensor, fwd: dict[str, torch.Tensor], bwd: dict[str, torch.Tensor],
        *, length_chunks: int = 1, chunks: dict[str, ChunkPlan] | None = None,
    ) -> SlowOutput:
        """Training losses of matching pairs: mean token cross-entropy per direction, and total
        (a :class:`SlowOutput`: ``forward``, ``backward`` if bidirectional, ``loss``).

        ``fwd`` and ``bwd`` are ``encode`` batches of the same captions (``bwd`` with
        ``reverse=True``); ``bwd`` is unused when the model is forward-only.

        ``length_chunks > 1`` runs each decoder on that many groups of captions of similar
        length, each padded only to its own longest caption: the same loss (a mean over all real
        tokens of the batch), less work on padding. The images stay one batch, so BatchNorm in
        the backbone sees the same random batch either way.

        Cutting each group (the whole batch when ``length_chunks=1``) to its longest caption is a
        shape decision: it needs each group's longest length as a Python int. ``chunks`` (per
        direction, :func:`length_chunk_plan` of the batch's attention mask, made on the host
        before the batch moves to the device, as the training loop's batches do) brings that
        plan in; without it the plan is made here from the mask, which reads each group's
        length back to the host (a device sync on a GPU). Nothing else in the forward pass reads
        a tensor's value; the input value checks live at the edges
        (:mod:`fastslow_lib.fast.input_checks`).
        """
        check_int(length_chunks, "length_chunks", type_error=ValueError)
        visual = self.vision(images)
        losses: dict[str, torch.Tensor] = {}
        for name, decoder in self.decoders():
            batch = fwd if name == "forward" else bwd
            ids, mask = batch["input_ids"], batch["attention_mask"]
            plan = chunks[name] if chunks is not None else length_chunk_plan(mask, length_chunks)
            total = torch.zeros((), device=ids.device)
            for rows, n in plan:
                chunk_ids, chunk_mask = ids[rows, :n], mask[rows, :n]
                logits = decoder(chunk_ids[:, :-1], {s: v[rows] for s, v in visual.items()})
                target = chunk_ids[:, 1:].masked_fill(chunk_mask[:, 1:] == 0, -100)
                total = total + F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                    ignore_index=-100, reduction="sum",
                )
            losses[name] = total / mask[:, 1:].sum()
        return SlowOutput(**losses, loss=sum(losses.values()))

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


class MatchingModel(nn.Module, HubModel):
    """Image-text matching (ITM): the Slow trunk with a binary "do they match?" head.

    The comparison the paper makes for its captioning loss: the same pyramid and the same
    cross-attention decoder layers (one direction), read out at the caption's last real token
    (``[EOS]``, which under causal attention has seen the whole caption) by a linear head that
    gives a matching logit. The score of a pair is that logit. Trained with binary
    cross-entropy on matching pairs and hard negatives (notebook 02 mines them with Fast), or
    listwise (a softmax over the own image and several negatives), with an optional captioning
    loss on the same trunk (``caption_weight``; see ``fastslow_lib.slow.matching`` for why
    notebook 02 needs it).
    """

    def __init__(self, config: SlowConfig | dict[str, Any]) -> None:
        super().__init__()
        self.config = config if isinstance(config, SlowConfig) else SlowConfig.from_dict(config)
        self.vision = VisualPyramid(self.config)
        self.trunk = CaptionDecoder(self.config)
        self.head = nn.Linear(self.config.width, 1)

    def decoders(self) -> list[tuple[str, CaptionDecoder]]:
        """``[("forward", trunk)]``: the one decoder whose keys/values scoring caches."""
        return [("forward", self.trunk)]

    def logits(
        self, ids: torch.Tensor, mask: torch.Tensor, visual: dict[int, torch.Tensor] | None = None,
        kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """Matching logits ``(B,)`` of full sequences ``ids`` (``[BOS] ... [EOS]``)."""
        return self.read_out(self.trunk.hidden(ids, visual, kv, group), mask)

    def read_out(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The head's logits ``(B,)`` at each sequence's last real token (``[EOS]``)."""
        last = mask.sum(dim=1).long() - 1
        return self.head(hidden[torch.arange(len(hidden), device=hidden.device), last]).squeeze(-1)

    def forward(
        self, images: torch.Tensor, fwd: dict[str, torch.Tensor],
        negative_images: torch.Tensor | None = None, *, caption_weight: float = 0.0,
        listwise: bool = False,
    ) -> MatchingOutput:
        """The matching loss of a batch, plus ``caption_weight`` times the captioning loss.

        * ``listwise=False``: binary cross-entropy of the matching pairs (label 1) and caption
          ``i`` with ``negative_images[i]`` (label 0).
        * ``listwise=True``: ``negative_images`` holds ``k`` images per caption, caption-major
          (rows ``i*k ... i*k+k-1`` are caption ``i``'s); each caption's logits over its own
          image and its ``k`` negatives go through a softmax cross-entropy with the own image
          as the answer (ALBEF's and BLIP's ITM is binary; a softmax over one positive and
          several hard negatives gives every step a gradient between look-alikes: notebook 02
          shows both). Without negatives the matching loss is 0 (a captioning-only step).

        The captioning loss is the forward one of the matching pairs (mean token cross-entropy
        through the tied embedding, read from the same hidden states: causal attention makes
        the prefix states those of ``ids[:, :-1]``). Returns a :class:`MatchingOutput`:
        ``loss``, its ``matching`` and ``caption`` parts, and ``accuracy`` (of the matching
        decisions: the own image ranked first, for ``listwise``).
        """
        if not caption_weight >= 0.0:
            raise ValueError(f"caption_weight must be >= 0, got {caption_weight}")
        ids, mask = fwd["input_ids"], fwd["attention_mask"]
        n = len(ids)
        k = 0
        if negative_images is not None:
            if listwise:
                if len(negative_images) % n:
                    raise ValueError(f"listwise negatives must be k per caption: "
                                     f"{len(negative_images)} images for {n} captions")
                k = len(negative_images) // n
            elif len(negative_images) != n:
                raise ValueError(f"one negative per caption: {len(negative_images)} images for "
                                 f"{n} captions (listwise=True takes several)")
            images = torch.cat([images, negative_images])
            reps = 1 + (k if listwise else 1)
            ids = torch.cat([ids, ids.repeat_interleave(reps - 1, dim=0)])
            mask = torch.cat([mask, mask.repeat_interleave(reps - 1, dim=0)])
        hidden = self.trunk.hidden(ids, self.vision(images))
        logits = self.read_out(hidden, mask)
        if listwise:
            if k == 0:
                matching = logits.sum() * 0.0
                accuracy = logits.new_zeros(())
            else:
                table = torch.cat([logits[:n, None], logits[n:].view(n, k)], dim=1)
                target = torch.zeros(n, dtype=torch.long, device=ids.device)
                matching = F.cross_entropy(table, target)
                accuracy = (table.argmax(dim=1) == 0).float().mean().detach()
        else:
            labels = torch.zeros(len(ids), device=ids.device)
            labels[:n] = 1.0
            matching = F.binary_cross_entropy_with_logits(logits, labels)
            accuracy = ((logits > 0).float() == labels).float().mean().detach()
        if caption_weight <= 0:
            return MatchingOutput(matching=matching, loss=matching, accuracy=accuracy)
        words = hidden[:n, :-1] @ self.trunk.embed.weight.T
        target = ids[:n, 1:].masked_fill(mask[:n, 1:] == 0, -100)
        caption = F.cross_entropy(words.reshape(-1, words.shape[-1]).float(),
                                  target.reshape(-1), ignore_index=-100)
        return MatchingOutput(matching=matching, loss=matching + caption_weight * caption,
                              accuracy=accuracy, caption=caption)

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())
