"""The Slow model: a cross-attention captioner that scores a (caption, image) pair by likelihood.

Taught in notebooks/02_slow.ipynb.

Pieces, as in Miech et al. (CVPR 2021), at laptop scale:

* :class:`VisualPyramid`: a timm CNN with ``features_only`` (maps at strides 32, 16, 8) and a
  top-down path with lateral connections (as in FPN): the coarse stride-32 map is upsampled and
  merged with the finer backbone maps, giving a pyramid from coarse to fine. Every level is
  flattened into visual tokens with a fixed 2D sinusoidal position code of the cell centres in
  image coordinates, so all levels share one coordinate frame.
* :class:`CaptionDecoder`: transformer decoder layers (causal self-attention, cross-attention to
  the visual tokens of the layer's pyramid level, MLP). ``layer_strides`` picks each layer's
  level, coarse to fine: ``(32, 16, 8)`` is gradual upsampling, ``(32, 32, 32)`` no upsampling.
* :class:`SlowModel`: the pyramid, a forward decoder (left to right) and, when
  ``bidirectional``, a backward decoder (right to left). Training loss: the sum of both token
  cross-entropies. Score: ``s(t, v) = log p_fwd(t | v) + log p_bwd(t | v)``, summed over the
  caption's tokens. Ranking images for a fixed caption needs no length normalisation: every
  image is scored on the same tokens.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from fastslow_lib.models.fast import DEFAULT_VISION_BACKBONE, _check_images, _tuples
from fastslow_lib.tokenizer import PAD_ID, SPECIAL_TOKENS

__all__ = [
    "PYRAMID_STRIDES",
    "Attention",
    "CaptionDecoder",
    "MatchingModel",
    "SlowConfig",
    "SlowModel",
    "VisualPyramid",
    "position_code_2d",
]

#: Strides the pyramid can provide, coarse to fine.
PYRAMID_STRIDES: tuple[int, ...] = (32, 16, 8)

# timm's feature index of each stride for ResNets (0: stride 2, 1: 4, 2: 8, 3: 16, 4: 32).
_RESNET_FEATURE_INDEX = {8: 2, 16: 3, 32: 4}


def _default_vision_kwargs() -> dict[str, Any]:
    from fastslow_lib.models.fast import DEFAULT_VISION_KWARGS

    return dict(DEFAULT_VISION_KWARGS)


@dataclass
class SlowConfig:
    """Sizes of the Slow captioner.

    ``layer_strides[l]`` is the pyramid level (stride 32, 16 or 8) decoder layer ``l``
    attends to; strides must not increase from one layer to the next (coarse to fine).
    ``vision_*`` default to the Fast model's backbone, so both models get the same family.
    The defaults are the cpu preset's model: width 96 trained in 231 s against 349 s for width
    128 on 2 cores, for 61 against 64 test R@1 on 100 queries and 72.7 against 73.8 on the probe
    (``scripts/trial_slow.py``), and it scores twice as many pairs per second.
    """

    vocab_size: int
    max_len: int = 48
    image_size: int = 64
    vision_backbone: str = DEFAULT_VISION_BACKBONE
    vision_kwargs: dict[str, Any] = field(default_factory=_default_vision_kwargs)
    width: int = 96
    heads: int = 3
    layer_strides: tuple[int, ...] = (32, 16, 8)
    mlp_ratio: int = 2
    dropout: float = 0.0
    bidirectional: bool = True
    #: False: each level is the lateral projection of its backbone map alone (no top-down sum).
    top_down: bool = True

    def __post_init__(self) -> None:
        for name, minimum in (("vocab_size", len(SPECIAL_TOKENS) + 1), ("max_len", 3),
                              ("image_size", 32), ("width", 8), ("heads", 1), ("mlp_ratio", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        if self.width % 4:
            raise ValueError(f"width ({self.width}) must be divisible by 4 (2D position code)")
        self.layer_strides = tuple(self.layer_strides)
        if not self.layer_strides:
            raise ValueError("layer_strides must name at least one decoder layer")
        bad = [s for s in self.layer_strides if s not in PYRAMID_STRIDES]
        if bad:
            raise ValueError(f"layer_strides may only hold {PYRAMID_STRIDES}, got {bad}")
        if any(b > a for a, b in zip(self.layer_strides, self.layer_strides[1:], strict=False)):
            raise ValueError(
                f"layer_strides must go from coarse to fine (non-increasing), got "
                f"{self.layer_strides}"
            )
        if self.image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {self.image_size}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("bidirectional", "top_down"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        self.vision_kwargs = _tuples(self.vision_kwargs)

    @property
    def levels(self) -> tuple[int, ...]:
        """The pyramid levels the decoder uses, coarse to fine (always starting at 32)."""
        finest = min(self.layer_strides)
        return tuple(s for s in PYRAMID_STRIDES if s >= finest)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` inverts it."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlowConfig:
        """Build from :meth:`to_dict`'s output; unknown keys raise ValueError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown SlowConfig keys {unknown}; known keys: {sorted(names)}")
        return cls(**data)


def position_code_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """Fixed 2D sinusoidal code ``(height * width, dim)`` of cell centres in image coordinates.

    Coordinates are the cell centres in [0, 1] (so a stride-32 cell and the stride-8 cells inside
    it get nearby codes); ``dim / 4`` geometric frequencies from pi to 32 pi, each for sin and
    cos of y and of x.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4, got {dim}")
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    n = dim // 4
    # Geometric frequencies from pi (one half-wave across the image) to 32 pi (finer than the
    # 8x8 stride-8 grid): every code is smooth in image coordinates, whatever the level.
    freqs = math.pi * 2.0 ** torch.linspace(0.0, 5.0, n)
    parts = []
    for coord in (yy.reshape(-1), xx.reshape(-1)):
        angles = coord[:, None] * freqs[None, :]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1)


class VisualPyramid(nn.Module):
    """Backbone maps at strides 32/16/8 -> top-down pyramid -> visual tokens per level.

    ``forward(images)`` returns ``{stride: (B, H_s * W_s, width)}`` for ``config.levels``.
    """

    def __init__(self, config: SlowConfig) -> None:
        super().__init__()
        self.levels = config.levels
        self.image_size = config.image_size
        self.top_down = config.top_down
        indices = tuple(_RESNET_FEATURE_INDEX[s] for s in sorted(self.levels))
        self.backbone = timm.create_model(
            config.vision_backbone, pretrained=False, features_only=True,
            out_indices=indices, **config.vision_kwargs,
        )
        reductions = self.backbone.feature_info.reduction()
        channels = self.backbone.feature_info.channels()
        if sorted(reductions) != sorted(self.levels):
            raise ValueError(
                f"backbone {config.vision_backbone!r} gives strides {reductions} for feature "
                f"indices {indices}, expected {sorted(self.levels)}"
            )
        by_stride = dict(zip(reductions, channels, strict=True))
        self.lateral = nn.ModuleDict(
            {str(s): nn.Conv2d(by_stride[s], config.width, 1) for s in self.levels}
        )
        self.smooth = nn.ModuleDict(
            {str(s): nn.Conv2d(config.width, config.width, 3, padding=1) for s in self.levels}
        )
        self.norm = nn.LayerNorm(config.width)
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean") or IMAGENET_DEFAULT_MEAN, cfg.get("std") or IMAGENET_DEFAULT_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        for s in self.levels:
            side = config.image_size // s
            self.register_buffer(
                f"pos_{s}", position_code_2d(side, side, config.width), persistent=False
            )

    def maps(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """The pyramid as feature maps ``{stride: (B, width, H_s, W_s)}``, coarse to fine."""
        images = _check_images(images, self.image_size)
        x = (images.to(self.mean.dtype) - self.mean) / self.std
        feats = dict(zip(self.backbone.feature_info.reduction(), self.backbone(x), strict=True))
        out: dict[int, torch.Tensor] = {}
        top: torch.Tensor | None = None
        for s in self.levels:  # coarse to fine
            lateral = self.lateral[str(s)](feats[s])
            if top is None or not self.top_down:
                top = lateral
            else:
                top = lateral + F.interpolate(top, scale_factor=2.0)
            out[s] = self.smooth[str(s)](top)
        return out

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Visual tokens ``{stride: (B, H_s * W_s, width)}`` with 2D position codes added."""
        tokens = {}
        for s, m in self.maps(images).items():
            t = m.flatten(2).transpose(1, 2)  # (B, H*W, width), row-major cells
            tokens[s] = self.norm(t + getattr(self, f"pos_{s}"))
        return tokens


class Attention(nn.Module):
    """Multi-head attention (queries from ``x``, keys/values from ``memory`` or ``x``).

    The same computation as ``torch.nn.MultiheadAttention`` (checked in notebook 02), written
    with ``F.scaled_dot_product_attention``.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, width) -> (B, heads, N, width / heads)``."""
        b, n, w = x.shape
        return x.view(b, n, self.heads, w // self.heads).transpose(1, 2)

    def keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``memory``, split into heads (cacheable per image)."""
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def weights(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, heads, L, N)`` of queries ``x`` over ``memory`` (no mask).

        What the heatmaps of notebook 02 draw: row ``i`` says where query ``i`` looks.
        """
        q = self.split(self.q(x))
        k, _ = self.keys_values(memory)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor | None = None, *, causal: bool = False,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """``x`` ``(B, L, width)`` attends to ``memory`` (or itself); ``kv`` reuses cached K/V.

        ``group > 1`` (cross-attention only): rows ``g * group ... (g + 1) * group - 1`` of ``x``
        all attend to entry ``g`` of ``memory``/``kv``, e.g. many captions to one cached image.
        Their tokens are then one long query sequence per image: the image's keys and values
        are used as they are, never copied once per caption.
        """
        b, n, w = x.shape
        if group > 1:
            if causal or b % group:
                raise ValueError(f"group={group} needs cross-attention and a batch divisible "
                                 f"by it, got causal={causal}, batch {b}")
            x = x.reshape(b // group, group * n, w)
        q = self.split(self.q(x))
        k, v = kv if kv is not None else self.keys_values(x if memory is None else memory)
        out = F.scaled_dot_product_attention(
            q, k, v, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(out.transpose(1, 2).reshape(b, n, w))


class DecoderLayer(nn.Module):
    """Pre-norm decoder layer: causal self-attention, cross-attention to one level, MLP."""

    def __init__(self, config: SlowConfig, stride: int) -> None:
        super().__init__()
        w = config.width
        self.stride = stride
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(w), nn.LayerNorm(w), nn.LayerNorm(w)
        self.self_attn = Attention(w, config.heads, config.dropout)
        self.cross_attn = Attention(w, config.heads, config.dropout)
        self.mlp = nn.Sequential(
            nn.Linear(w, config.mlp_ratio * w), nn.GELU(), nn.Linear(config.mlp_ratio * w, w)
        )

    def forward(
        self, x: torch.Tensor, visual: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """``x`` ``(B, L, width)``; ``visual`` ``(B / group, N, width)`` or its cached ``kv``."""
        x = x + self.self_attn(self.norm1(x), causal=True)
        x = x + self.cross_attn(self.norm2(x), visual, kv=kv, group=group)
        return x + self.mlp(self.norm3(x))

    def cross_attention_weights(self, x: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """This layer's cross-attention weights ``(B, heads, L, N)`` for its input ``x``."""
        x = x + self.self_attn(self.norm1(x), causal=True)
        return self.cross_attn.weights(self.norm2(x), visual)


class CaptionDecoder(nn.Module):
    """Token and position embeddings, decoder layers (coarse to fine), tied output head."""

    def __init__(self, config: SlowConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.width, padding_idx=PAD_ID)
        self.pos = nn.Parameter(torch.zeros(config.max_len, config.width))
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(DecoderLayer(config, s) for s in config.layer_strides)
        self.norm = nn.LayerNorm(config.width)

    def forward(
        self, ids: torch.Tensor, visual: dict[int, torch.Tensor] | None = None,
        kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """Next-token logits ``(B, L, vocab)`` for input ids ``(B, L)``.

        ``group``: how many consecutive rows of ``ids`` share one image (see ``Attention``).
        """
        return self.hidden(ids, visual, kv, group) @ self.embed.weight.T

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings ``(B, L, width)``; a clear error past ``max_len``."""
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
        if ids.shape[1] > self.pos.shape[0]:
            raise ValueError(
                f"sequence of {ids.shape[1]} tokens is longer than the decoder's max_len "
                f"({self.pos.shape[0]}); encode captions with max_len={self.pos.shape[0]}"
            )
        return self.embed(ids) + self.pos[: ids.shape[1]]

    def hidden(
        self, ids: torch.Tensor, visual: dict[int, torch.Tensor] | None = None,
        kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """Final normalised hidden states ``(B, L, width)`` (before the output head)."""
        if visual is None and kv is None:
            raise ValueError("give the visual tokens or their cached keys/values")
        x = self.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            if kv is not None:
                x = layer(x, kv=kv[i], group=group)
            else:
                x = layer(x, visual[layer.stride], group=group)
        return self.norm(x)

    def cross_attention(
        self, ids: torch.Tensor, visual: dict[int, torch.Tensor]
    ) -> list[torch.Tensor]:
        """Every layer's cross-attention weights ``(B, heads, L, N_level)``, first layer first."""
        x = self.embed_tokens(ids)
        out = []
        for layer in self.layers:
            out.append(layer.cross_attention_weights(x, visual[layer.stride]))
            x = layer(x, visual[layer.stride])
        return out

    def cache(self, visual: dict[int, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's cross-attention keys/values for these images (reused for all texts)."""
        return [layer.cross_attn.keys_values(visual[layer.stride]) for layer in self.layers]


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over each sequence of ``log p(token_{i+1} | tokens_<=i)`` on its real tokens: ``(B,)``.

    ``ids``/``mask`` are the full sequences ``[BOS] w1 ... wn [EOS] [PAD]...``; ``logits`` were
    computed on ``ids[:, :-1]``; the targets are ``ids[:, 1:]`` where ``mask[:, 1:]`` is 1.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    target = ids[:, 1:]
    picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return (picked * mask[:, 1:].to(picked.dtype)).sum(dim=1)


class SlowModel(nn.Module):
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
        *, length_chunks: int = 1,
    ) -> dict[str, torch.Tensor]:
        """Training losses of matching pairs: mean token cross-entropy per direction, and total.

        ``fwd`` and ``bwd`` are ``encode`` batches of the same captions (``bwd`` with
        ``reverse=True``); ``bwd`` is unused when the model is forward-only.

        ``length_chunks > 1`` runs each decoder on that many groups of captions of similar
        length, each padded only to its own longest caption: the same loss (a mean over all real
        tokens of the batch), less work on padding. The images stay one batch, so BatchNorm in
        the backbone sees the same random batch either way.
        """
        if isinstance(length_chunks, bool) or not isinstance(length_chunks, int) \
                or length_chunks < 1:
            raise ValueError(f"length_chunks must be a positive int, got {length_chunks!r}")
        visual = self.vision(images)
        losses = {}
        for name, decoder in self.decoders():
            batch = fwd if name == "forward" else bwd
            ids, mask = batch["input_ids"], batch["attention_mask"]
            lengths = mask.sum(dim=1)
            order = torch.argsort(lengths)
            total = torch.zeros((), device=ids.device)
            for rows in order.chunk(min(length_chunks, len(order))):
                n = int(lengths[rows].max())
                chunk_ids, chunk_mask = ids[rows, :n], mask[rows, :n]
                logits = decoder(chunk_ids[:, :-1], {s: v[rows] for s, v in visual.items()})
                target = chunk_ids[:, 1:].masked_fill(chunk_mask[:, 1:] == 0, -100)
                total = total + F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                    ignore_index=-100, reduction="sum",
                )
            losses[name] = total / mask[:, 1:].sum()
        losses["loss"] = sum(losses.values())  # type: ignore[assignment]
        return losses

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


class MatchingModel(nn.Module):
    """Image-text matching (ITM): the Slow trunk with a binary "do they match?" head.

    The comparison the paper makes for its captioning loss: the same pyramid and the same
    cross-attention decoder layers (one direction), read out at the caption's last real token
    (``[EOS]``, which under causal attention has seen the whole caption) by a linear head that
    gives a matching logit. The score of a pair is that logit. Trained with binary
    cross-entropy on matching pairs and hard negatives (notebook 02 mines them with Fast), with
    an optional captioning loss on the same trunk (``caption_weight``; see
    ``fastslow_lib.matching`` for why notebook 02 needs it).
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
    ) -> dict[str, torch.Tensor]:
        """BCE loss of the matching pairs (label 1) and, if given, caption i with
        ``negative_images[i]`` (label 0); plus ``caption_weight`` times the forward captioning
        loss of the matching pairs (mean token cross-entropy through the tied embedding, read
        from the same hidden states: causal attention makes the prefix states those of
        ``ids[:, :-1]``). Returns ``loss``, its ``matching`` and ``caption`` parts, and
        ``accuracy`` (of the matching decisions)."""
        if not caption_weight >= 0.0:
            raise ValueError(f"caption_weight must be >= 0, got {caption_weight}")
        ids, mask = fwd["input_ids"], fwd["attention_mask"]
        n = len(ids)
        if negative_images is not None:
            images = torch.cat([images, negative_images])
            ids, mask = torch.cat([ids, ids]), torch.cat([mask, mask])
        labels = torch.zeros(len(ids), device=ids.device)
        labels[:n] = 1.0
        hidden = self.trunk.hidden(ids, self.vision(images))
        logits = self.read_out(hidden, mask)
        matching = F.binary_cross_entropy_with_logits(logits, labels)
        out = {"matching": matching, "loss": matching,
               "accuracy": ((logits > 0).float() == labels).float().mean().detach()}
        if caption_weight > 0:
            words = hidden[:n, :-1] @ self.trunk.embed.weight.T
            target = ids[:n, 1:].masked_fill(mask[:n, 1:] == 0, -100)
            caption = F.cross_entropy(words.reshape(-1, words.shape[-1]).float(),
                                      target.reshape(-1), ignore_index=-100)
            out["caption"] = caption
            out["loss"] = matching + caption_weight * caption
        return out

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())
