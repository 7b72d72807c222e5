"""The course's models. The Fast dual encoder is taught in notebooks/01_fast.ipynb."""

from fastslow_lib.models.fast import (
    DEFAULT_VISION_BACKBONE,
    DEFAULT_VISION_KWARGS,
    MAX_LOGIT_SCALE,
    DualEncoder,
    FastConfig,
    TextTower,
    VisionTower,
    bert_config,
    load_backbone_weights,
)

__all__ = [
    "DEFAULT_VISION_BACKBONE",
    "DEFAULT_VISION_KWARGS",
    "MAX_LOGIT_SCALE",
    "DualEncoder",
    "FastConfig",
    "TextTower",
    "VisionTower",
    "bert_config",
    "load_backbone_weights",
]
