"""The course's models. The Fast dual encoder is taught in notebooks/01_fast.ipynb."""

from fastslow_lib.models.fast import (
    DEFAULT_VISION_BACKBONE,
    DEFAULT_VISION_KWARGS,
    MAX_LOGIT_SCALE,
    TEXT_ENCODERS,
    DualEncoder,
    FastConfig,
    TextTower,
    VisionTower,
    bert_config,
    build_text_encoder,
    load_backbone_weights,
    modernbert_config,
    text_encoder_config,
)

__all__ = [
    "DEFAULT_VISION_BACKBONE",
    "DEFAULT_VISION_KWARGS",
    "MAX_LOGIT_SCALE",
    "TEXT_ENCODERS",
    "DualEncoder",
    "FastConfig",
    "TextTower",
    "VisionTower",
    "bert_config",
    "build_text_encoder",
    "load_backbone_weights",
    "modernbert_config",
    "text_encoder_config",
]
