"""Fast and Slow for video: the image models, extended over time.

* :class:`VideoDualEncoder` (Fast): the image tower embeds every frame; ``temporal="mean"``
  averages the frame embeddings (order-blind by construction: a clip and the same frames
  played backwards get the same embedding), ``temporal="transformer"`` first mixes them with one
  small transformer layer over learned time positions (a cheap temporal model).
* :class:`VideoSlowModel` (Slow): the image pyramid on every frame; each decoder layer
  cross-attends to the space-time tokens of its level (frames x cells) with a temporal position
  code added to the 2D one, so a word can attend to *when* as well as *where*.

Both keep the interfaces of their image versions (``encode_image`` / ``vision``), so training,
scoring, distillation, re-ranking and timing run on them unchanged: a "visual item" is an
image ``(3, H, W)`` or a clip ``(T, 3, H, W)``.

Taught in notebooks/05_video.ipynb.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fastslow_lib.config.checks import check_int
from fastslow_lib.fast.config import FastConfig
from fastslow_lib.fast.model import DualEncoder
from fastslow_lib.slow.config import SlowConfig
from fastslow_lib.slow.model import SlowModel
from fastslow_lib.slow.pyramid import VisualPyramid

TEMPORAL: tuple[str, ...] = ("mean", "transformer")


def check_clips(clips: object, frames: int) -> torch.Tensor:
    """A clear error unless ``clips`` is a float tensor ``(B, frames, 3, H, W)``."""
    if not isinstance(clips, torch.Tensor):
        raise TypeError(f"clips must be a torch.Tensor, got {type(clips).__name__}")
    if clips.dim() != 5:
        hint = " (that is a batch of images: video models take clips)" if clips.dim() == 4 else ""
        raise ValueError(f"clips must have shape (B, T, 3, H, W), got {tuple(clips.shape)}{hint}")
    if clips.shape[1] != frames:
        raise ValueError(f"clips must have {frames} frames (the model's), got {clips.shape[1]}")
    return clips


class VideoDualEncoder(DualEncoder):
    """The Fast dual encoder for clips: per-frame image tower, temporal pooling, text tower."""

    def __init__(self, config: FastConfig | dict[str, Any], frames: int,
                 temporal: str = "mean") -> None:
        super().__init__(config)
        if temporal not in TEMPORAL:
            raise ValueError(f"unknown temporal model {temporal!r}; expected one of {TEMPORAL}")
        check_int(frames, "frames", type_error=ValueError)
        self.frames, self.temporal = frames, temporal
        if temporal == "transformer":
            d = self.config.embed_dim
            self.time_pos = nn.Parameter(torch.zeros(frames, d))
            nn.init.normal_(self.time_pos, std=0.02)
            self.time_mixer = nn.TransformerEncoderLayer(
                d, nhead=4, dim_feedforward=2 * d, dropout=0.0, batch_first=True,
                norm_first=True)

    def hub_config(self) -> dict[str, Any]:
        """The constructor's arguments (``from_pretrained`` rebuilds the model from them)."""
        return {"config": self.config.to_dict(), "frames": self.frames,
                "temporal": self.temporal}

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame features ``(B, T, d)`` (after the temporal model, before pooling)."""
        clips = check_clips(clips, self.frames)
        b, t = clips.shape[:2]
        f = self.vision(clips.flatten(0, 1)).view(b, t, -1)
        if self.temporal == "transformer":
            f = self.time_mixer(f + self.time_pos)
        return f

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` clips in [0, 1] -> ``(B, d)`` unit-norm embeddings."""
        return F.normalize(self.frame_features(images).mean(dim=1), dim=-1)


def position_code_1d(length: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal code ``(length, dim)`` of positions ``(t + 0.5) / length`` in [0, 1].

    ``dim / 2`` geometric frequencies from pi to 8 pi, each for sin and cos.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    pos = (torch.arange(length, dtype=torch.float32) + 0.5) / length
    freqs = math.pi * 2.0 ** torch.linspace(0.0, 3.0, dim // 2)
    angles = pos[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class SpaceTimePyramid(VisualPyramid):
    """The image pyramid on every frame; tokens ``{stride: (B, T * H_s * W_s, width)}``.

    Token ``t * H_s * W_s + cell`` is frame t's cell; it carries the 2D code of its cell plus the
    1D code of its frame.
    """

    def __init__(self, config: SlowConfig, frames: int) -> None:
        super().__init__(config)
        self.frames = frames
        self.register_buffer("time_code", position_code_1d(frames, config.width),
                             persistent=False)

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """``(B, T, 3, H, W)`` clips -> space-time tokens per level."""
        clips = check_clips(images, self.frames)
        b, t = clips.shape[:2]
        tokens = {}
        for s, m in self.maps(clips.flatten(0, 1)).items():
            x = m.flatten(2).transpose(1, 2) + getattr(self, f"pos_{s}")  # (B*T, HW, width)
            x = x.view(b, t, x.shape[1], x.shape[2]) + self.time_code[None, :, None, :]
            tokens[s] = self.norm(x.reshape(b, -1, x.shape[-1]))
        return tokens


class VideoSlowModel(SlowModel):
    """The Slow captioner for clips: space-time pyramid, the same bidirectional decoders."""

    def __init__(self, config: SlowConfig | dict[str, Any], frames: int) -> None:
        super().__init__(config)
        check_int(frames, "frames", type_error=ValueError)
        self.frames = frames
        self.vision = SpaceTimePyramid(self.config, frames)

    def hub_config(self) -> dict[str, Any]:
        """The constructor's arguments (``from_pretrained`` rebuilds the model from them)."""
        return {"config": self.config.to_dict(), "frames": self.frames}
