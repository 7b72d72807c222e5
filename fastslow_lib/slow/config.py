"""Sizes of the Slow captioner (:class:`SlowConfig`) and the pyramid strides it can use.

Taught in notebooks/02_slow.ipynb.

Like :class:`fastslow_lib.fast.config.FastConfig`, a plain dataclass checked on construction and
saved as JSON in every checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fastslow_lib.config.checks import check_bool, check_int
from fastslow_lib.data.tokenizer import SPECIAL_TOKENS
from fastslow_lib.fast.config import DEFAULT_VISION_BACKBONE, DEFAULT_VISION_KWARGS
from fastslow_lib.fast.input_checks import as_tuples

__all__ = ["PYRAMID_STRIDES", "SlowConfig"]

#: Strides the pyramid can provide, coarse to fine.
PYRAMID_STRIDES: tuple[int, ...] = (32, 16, 8)


def _default_vision_kwargs() -> dict[str, Any]:
    return dict(DEFAULT_VISION_KWARGS)


@dataclass
class SlowConfig:
    """Sizes of the Slow captioner.

    ``layer_strides[l]`` is the pyramid level (stride 32, 16 or 8) decoder layer ``l``
    attends to; strides must not increase from one layer to the next (coarse to fine).
    ``vision_*`` default to the Fast model's backbone, so both models get the same family.
    The defaults are the cpu preset's model: width 96 rather than 128 because it trains and
    scores markedly faster on a laptop CPU for nearly the same retrieval and probe accuracy
    (``scripts/trial_slow.py`` runs the comparison; results/slow_budget.json holds its figures).
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
            check_int(getattr(self, name), name, minimum, type_error=ValueError)
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
            check_bool(getattr(self, name), name)
        self.vision_kwargs = as_tuples(self.vision_kwargs)

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
