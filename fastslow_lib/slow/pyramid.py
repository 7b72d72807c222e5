"""The visual side of the Slow captioner: a feature pyramid turned into visual tokens.

Taught in notebooks/02_slow.ipynb.

:class:`VisualPyramid` runs a timm CNN with ``features_only`` (maps at strides 32, 16, 8) and a
top-down path with lateral connections (as in FPN): the coarse stride-32 map is upsampled and
merged with the finer backbone maps, giving a pyramid from coarse to fine. Every level is
flattened into visual tokens with a fixed 2D sinusoidal position code of the cell centres in
image coordinates (:func:`position_code_2d`), so all levels share one coordinate frame.
"""

from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from fastslow_lib.fast.input_checks import check_image_shape
from fastslow_lib.slow.config import SlowConfig

__all__ = ["VisualPyramid", "position_code_2d"]

# timm's feature index of each stride for ResNets (0: stride 2, 1: 4, 2: 8, 3: 16, 4: 32).
_RESNET_FEATURE_INDEX = {8: 2, 16: 3, 32: 4}


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
        images = check_image_shape(images, self.image_size)  # shapes only: no device sync
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
