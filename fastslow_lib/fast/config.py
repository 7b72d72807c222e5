"""Sizes of the Fast dual encoder (:class:`FastConfig`) and the design constants behind them.

Taught in notebooks/01_fast.ipynb.

A config is a plain dataclass checked on construction (a bad size fails here, with its name,
not deep inside timm or ``transformers``) and saved as JSON inside every checkpoint, so a
checkpoint rebuilds exactly the model it was trained with.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import timm

from fastslow_lib.config.checks import check_int, check_int_fields, check_number
from fastslow_lib.data.tokenizer import SPECIAL_TOKENS
from fastslow_lib.fast.input_checks import as_tuples

__all__ = [
    "DEFAULT_VISION_BACKBONE",
    "DEFAULT_VISION_KWARGS",
    "MAX_LOGIT_SCALE",
    "TEXT_ENCODERS",
    "VISION_POOLS",
    "FastConfig",
    "as_fast_config",
]

#: Upper bound of the log logit scale: the scale ``exp(t)`` never exceeds 100 (as in CLIP).
MAX_LOGIT_SCALE = math.log(100.0)

#: The default vision backbone: timm's ResNet made narrow and shallow with timm's own
#: ``ResNet`` keyword arguments: one BasicBlock per stage, stage widths 16-128, a 3-layer 3x3
#: stem of width 16 (0.32M parameters). Sized so that several epochs of the course's training
#: set fit in a few minutes of a 2-core laptop: a full ResNet-18 (11M parameters) is far slower,
#: its 7x7 stem of width 64 alone costing more than this whole net (benchmarks/bench_train.py
#: measures the throughput).
DEFAULT_VISION_BACKBONE = "resnet18"
DEFAULT_VISION_KWARGS: dict[str, Any] = {
    "layers": (1, 1, 1, 1),
    "channels": (16, 32, 64, 128),
    "stem_type": "deep",
    "stem_width": 16,
}

#: Text encoders the text tower can build from scratch: ``"modernbert"`` (rotary positions,
#: the default) and ``"bert"`` (learned absolute position embeddings, for comparison).
TEXT_ENCODERS: tuple[str, ...] = ("modernbert", "bert")

# timm.create_model arguments that the vision tower fixes itself.
_FIXED_TIMM_ARGS = frozenset({"pretrained", "num_classes", "in_chans", "features_only"})

#: How the vision tower turns its last feature map into one vector (``vision_kwargs``'s
#: ``"global_pool"``, default ``"avg"``): ``"avg"`` averages over the map, as timm does, and
#: loses where things are; ``"flatten"`` concatenates every cell of the map (2 x 2 cells at 64
#: pixels and stride 32), so the vector keeps which feature sits where (notebook 03, "A student
#: that keeps places").
VISION_POOLS: tuple[str, ...] = ("avg", "flatten")


def _default_vision_kwargs() -> dict[str, Any]:
    return dict(DEFAULT_VISION_KWARGS)


@dataclass
class FastConfig:
    """Sizes of the Fast dual encoder.

    ``vocab_size`` must be the tokenizer's (``len(tokenizer)``); ``max_len`` is the longest token
    sequence the text tower accepts (special tokens included) and the number of position
    embeddings. ``vision_kwargs`` go to ``timm.create_model`` (they must be JSON-serialisable,
    since checkpoints save the config as JSON). ``text_encoder`` picks the from-scratch text
    transformer (:data:`TEXT_ENCODERS`). ``dropout`` applies inside the text transformer (0 by
    default: 10,000 images x 5 captions and a few epochs leave little to overfit).
    ``init_temperature`` is the softmax temperature at initialisation: the learnable logit
    scale starts at ``log(1 / init_temperature)``.

    The defaults (about 0.8M parameters) are sized for training on a 2-core laptop CPU, with
    the text tower (width 128, 2 layers, 4 heads) about as costly per pair as the vision tower.
    """

    vocab_size: int
    max_len: int = 48
    embed_dim: int = 256
    vision_backbone: str = DEFAULT_VISION_BACKBONE
    vision_kwargs: dict[str, Any] = field(default_factory=_default_vision_kwargs)
    text_encoder: str = "modernbert"
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    dropout: float = 0.0
    init_temperature: float = 0.07
    image_size: int = 64

    def __post_init__(self) -> None:
        check_int(self.vocab_size, "vocab_size", minimum=len(SPECIAL_TOKENS) + 1)
        check_int(self.max_len, "max_len", minimum=3)  # [BOS] word [EOS]
        check_int_fields(self, "embed_dim", "text_width", "text_layers", "text_heads")
        check_int(self.image_size, "image_size", minimum=8)
        if self.text_width % self.text_heads:
            raise ValueError(
                f"text_width ({self.text_width}) must be divisible by text_heads "
                f"({self.text_heads})"
            )
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(
                f"unknown text_encoder {self.text_encoder!r}; expected one of {TEXT_ENCODERS}"
            )
        dropout = check_number(self.dropout, "dropout")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        temperature = check_number(self.init_temperature, "init_temperature")
        if not 1.0 / 100.0 < temperature <= 1.0:
            raise ValueError(
                f"init_temperature must be in (0.01, 1] (the logit scale 1/temperature is "
                f"clamped at 100), got {temperature}"
            )
        if not isinstance(self.vision_backbone, str) or not timm.is_model(self.vision_backbone):
            name = self.vision_backbone
            close = timm.list_models(f"*{name}*")[:10] if isinstance(name, str) else []
            raise ValueError(f"vision_backbone {name!r} is not a timm model; similar: {close}")
        if not isinstance(self.vision_kwargs, dict):
            raise TypeError(
                f"vision_kwargs must be a dict, got {type(self.vision_kwargs).__name__}"
            )
        fixed = sorted(_FIXED_TIMM_ARGS & set(self.vision_kwargs))
        if fixed:
            raise ValueError(
                f"vision_kwargs may not set {fixed}: the vision tower fixes them "
                "(RGB input, no classifier, no download)"
            )
        pool = self.vision_kwargs.get("global_pool", "avg")
        if pool not in VISION_POOLS:
            raise ValueError(
                f"vision_kwargs' global_pool must be one of {VISION_POOLS} (how the feature map "
                f"becomes one vector), got {pool!r}"
            )
        try:
            json.dumps(self.vision_kwargs)
        except TypeError as err:
            raise TypeError(
                f"vision_kwargs must be JSON-serialisable (checkpoints save it): {err}"
            ) from None
        self.vision_kwargs = as_tuples(self.vision_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (tuples become lists); ``from_dict`` inverts it."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FastConfig:
        """Build a config from ``to_dict()``'s output; unknown or missing keys raise ValueError."""
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown FastConfig keys {unknown}; known keys: {sorted(names)}")
        if "vocab_size" not in data:
            raise ValueError("FastConfig needs vocab_size (the tokenizer's len(tokenizer))")
        return cls(**data)


def as_fast_config(config: FastConfig | dict[str, Any]) -> FastConfig:
    """Accept a :class:`FastConfig` or its ``to_dict()`` form (as a checkpoint stores it)."""
    if isinstance(config, FastConfig):
        return config
    if isinstance(config, dict):
        return FastConfig.from_dict(config)
    raise TypeError(f"config must be a FastConfig or a dict, got {type(config).__name__}")
