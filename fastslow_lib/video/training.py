"""Training the video models of notebook 05: their recipes over the clip world.

The loop and the steps are the image ones, unchanged (:func:`fastslow_lib.fast.training.train_fast`,
:func:`fastslow_lib.slow.training.train_slow`): they read ``world.train`` / ``world.val``, and a
:class:`~fastslow_lib.data.clips.ClipWorld` gives splits of clips where the image world gives
splits of images. A video model's frame tower starts from the image model's trained weights;
the image checkpoint is a **parent** of the video checkpoint (its file hash is part of the
key), so retraining the image model retrains the video models too.

Taught in notebooks/05_video.ipynb.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fastslow_lib.config.training import VideoSettings
from fastslow_lib.core.cache import Recipe, training_key
from fastslow_lib.data.clips import FRAMES, ClipWorld
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.training import train_fast
from fastslow_lib.slow.model import SlowConfig, SlowModel
from fastslow_lib.slow.training import train_slow
from fastslow_lib.video.model import VideoDualEncoder, VideoSlowModel

__all__ = ["VideoSettings", "transfer_weights", "video_fast_recipe", "video_slow_recipe"]


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


def video_fast_recipe(
    world: ClipWorld, tokenizer, settings: VideoSettings, *,
    temporal: str = "mean", init_from: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> Recipe:
    """The recipe of Fast for clips (``temporal`` pooling), trained with
    :func:`~fastslow_lib.fast.training.train_fast` (``create_model("video_fast_mean")``).

    ``init_from`` (the image Fast model's checkpoint) starts the frame tower from its vision
    tower; its file hash joins the key. 
    """
    cfg = settings.fast_train
    model_config = FastConfig(vocab_size=len(tokenizer), max_len=cfg.max_len,
                              **settings.fast_model).to_dict()
    config = {**training_key(model_config, cfg, world.config.key()), "frames": FRAMES,
              "temporal": temporal}

    def build(saved: dict) -> torch.nn.Module:
        return VideoDualEncoder(FastConfig.from_dict(saved["model"]), saved["frames"],
                                saved["temporal"])

    def train(model: torch.nn.Module) -> dict:
        if init_from is not None:
            transfer_weights(DualEncoder.from_pretrained(init_from).vision, model.vision)
        return {"history": train_fast(model, world, tokenizer, cfg, device=device,  # type: ignore[arg-type]
                                      desc=f"training video Fast ({temporal})")}

    return Recipe(config, build, train,
                  {"image_model": init_from} if init_from is not None else {})


def video_slow_recipe(
    world: ClipWorld, tokenizer, settings: VideoSettings, *,
    init_from: str | Path | None = None, device: torch.device | str = "cpu",
) -> Recipe:
    """The recipe of Slow for clips (``create_model("video_slow")``).

    ``init_from`` (the image Slow model's checkpoint) starts the space-time pyramid from its
    pyramid, as in :func:`video_fast_recipe`.
    """
    cfg = settings.slow_train
    model_config = SlowConfig(vocab_size=len(tokenizer), max_len=cfg.max_len,
                              **settings.slow_model).to_dict()
    config = {**training_key(model_config, cfg, world.config.key()), "frames": FRAMES}

    def build(saved: dict) -> torch.nn.Module:
        return VideoSlowModel(SlowConfig.from_dict(saved["model"]), saved["frames"])

    def train(model: torch.nn.Module) -> dict:
        if init_from is not None:
            transfer_weights(SlowModel.from_pretrained(init_from).vision, model.vision)
        return {"history": train_slow(model, world, tokenizer, cfg, device=device,  # type: ignore[arg-type]
                                      desc="training video Slow")}

    return Recipe(config, build, train,
                  {"image_model": init_from} if init_from is not None else {})
