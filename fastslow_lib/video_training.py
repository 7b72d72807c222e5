"""Training the video models of notebook 05: settings, and load-if-present getters.

The training loops are the image ones, unchanged (:func:`fastslow_lib.training.train_fast`,
:func:`fastslow_lib.slow_training.train_slow`): they read ``world.train`` / ``world.val``, and a
:class:`~fastslow_lib.data.clips.ClipWorld` gives splits of clips where the image world gives
splits of images.

Taught in notebooks/05_video.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fastslow_lib.data.clips import FRAMES, ClipWorld
from fastslow_lib.slow_training import SlowTrainConfig, train_slow
from fastslow_lib.training import FastTrainConfig, train_fast


def _fast_model() -> dict[str, Any]:
    return {"image_size": 32}


def _slow_model() -> dict[str, Any]:
    return {"image_size": 32}


@dataclass(frozen=True)
class VideoSettings:
    """Model sizes and training budgets of the video models (a preset's ``video``)."""

    #: Fast and Slow get the same budget: 5 epochs of the training clips in batches of 64 (310
    #: steps for 4,000 clips; batch 128 halved Fast's steps and left it at validation R@1 8.2
    #: after 3 epochs against 11.0 with 64).
    fast_train: FastTrainConfig = field(
        default_factory=lambda: FastTrainConfig(epochs=5, batch_size=64, val_queries=500))
    #: Overrides of :class:`~fastslow_lib.models.FastConfig` (32-pixel frames).
    fast_model: dict[str, Any] = field(default_factory=_fast_model)
    slow_train: SlowTrainConfig = field(
        default_factory=lambda: SlowTrainConfig(epochs=5, batch_size=64))
    #: Overrides of :class:`~fastslow_lib.models.slow.SlowConfig`.
    slow_model: dict[str, Any] = field(default_factory=_slow_model)
    #: Test queries Slow scores against the whole test gallery of clips.
    slow_queries: int = 200


def transfer_weights(source: torch.nn.Module, target: torch.nn.Module) -> tuple[list, list]:
    """Copy every tensor of ``source`` whose name and shape ``target`` shares, in place.

    Returns ``(copied, skipped)`` names (``skipped``: in ``source`` but absent from ``target`` or
    of another shape). Notebook 05 starts the video towers' vision side from the image models.
    """
    state = target.state_dict()
    copied, skipped = [], []
    for name, value in source.state_dict().items():
        if name in state and state[name].shape == value.shape:
            state[name] = value.detach().clone()
            copied.append(name)
        else:
            skipped.append(name)
    if not copied:
        raise ValueError(f"no tensor of {type(source).__name__} fits {type(target).__name__}")
    target.load_state_dict(state)
    return copied, skipped


def get_video_fast_model(
    world: ClipWorld, tokenizer, settings: VideoSettings, checkpoint: str | Path, *,
    temporal: str = "mean", init_vision: torch.nn.Module | None = None,
    init_name: str | None = None, device: torch.device | str = "cpu",
) -> tuple[torch.nn.Module, dict, bool]:
    """Fast for clips (``temporal`` pooling): loaded from ``checkpoint`` if it matches, else
    trained with :func:`~fastslow_lib.training.train_fast` and saved.

    ``init_vision`` (e.g. the image Fast model's ``.vision``) starts the frame tower from trained
    weights; ``init_name`` names it in the checkpoint's config, so another start retrains.
    Returns ``(model, history, loaded)`` like :func:`fastslow_lib.training.get_fast_model`.
    """
    from fastslow_lib.checkpoint import load_if_present, read_metadata
    from fastslow_lib.models import FastConfig
    from fastslow_lib.models.video import VideoDualEncoder

    cfg = settings.fast_train
    model_config = FastConfig(vocab_size=len(tokenizer), max_len=cfg.max_len,
                              **settings.fast_model).to_dict()
    config = {"model": model_config, "frames": FRAMES, "temporal": temporal, "init": init_name,
              "train": cfg.to_dict(), "world": world.config.key()}
    history: dict = {}

    def build(saved: dict) -> torch.nn.Module:
        return VideoDualEncoder(FastConfig.from_dict(saved["model"]), saved["frames"],
                                saved["temporal"])

    def train(model: torch.nn.Module) -> dict:
        if init_vision is not None:
            transfer_weights(init_vision, model.vision)
        history.update(train_fast(model, world, tokenizer, cfg, device=device,  # type: ignore[arg-type]
                                  desc=f"training video Fast ({temporal})"))
        return {"history": history}

    model, loaded = load_if_present(checkpoint, build, train, config)
    if loaded:
        history = read_metadata(checkpoint)["extra"]["history"]
    return model.to(device).eval(), history, loaded


def get_video_slow_model(
    world: ClipWorld, tokenizer, settings: VideoSettings, checkpoint: str | Path, *,
    init_vision: torch.nn.Module | None = None, init_name: str | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.nn.Module, dict, bool]:
    """Slow for clips: loaded from ``checkpoint`` if it matches, else trained and saved.

    ``init_vision`` (e.g. the image Slow model's ``.vision``, its pyramid) starts the space-time
    pyramid from trained weights, as in :func:`get_video_fast_model`.
    """
    from fastslow_lib.checkpoint import load_if_present, read_metadata
    from fastslow_lib.models.slow import SlowConfig
    from fastslow_lib.models.video import VideoSlowModel

    cfg = settings.slow_train
    model_config = SlowConfig(vocab_size=len(tokenizer), max_len=cfg.max_len,
                              **settings.slow_model).to_dict()
    config = {"model": model_config, "frames": FRAMES, "init": init_name, "train": cfg.to_dict(),
              "world": world.config.key()}
    history: dict = {}

    def build(saved: dict) -> torch.nn.Module:
        return VideoSlowModel(SlowConfig.from_dict(saved["model"]), saved["frames"])

    def train(model: torch.nn.Module) -> dict:
        if init_vision is not None:
            transfer_weights(init_vision, model.vision)
        history.update(train_slow(model, world, tokenizer, cfg, device=device,  # type: ignore[arg-type]
                                  desc="training video Slow"))
        return {"history": history}

    model, loaded = load_if_present(checkpoint, build, train, config)
    if loaded:
        history = read_metadata(checkpoint)["extra"]["history"]
    return model.to(device).eval(), history, loaded
