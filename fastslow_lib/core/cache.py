"""Load or train: every trained model of the course comes from :func:`load_or_train`.

A checkpoint is reused only when it was made from exactly what it depends on. Its key is
everything that decides its weights: the model's config, the training budget, the world's
config key, and, for a model trained from another one (a video tower started from the image
model, a student distilled from a teacher), the **file hash of that parent checkpoint**. So
retraining a parent makes every child retrain, instead of loading a child of the old parent.

Taught in notebooks/01_fast.ipynb (the first getter); every later notebook uses it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastslow_lib.core.checkpoint import (
    checkpoint_exists,
    config_differences,
    load_if_present,
    read_metadata,
    weights_path,
)

__all__ = ["array_fingerprint", "check_trained_from", "file_fingerprint", "load_or_train",
           "training_key"]


def training_key(model_config: Mapping[str, Any], train: Any, world_key: str) -> dict[str, Any]:
    """What a trained model's weights depend on, before any parent: its config (``model``), its
    budget (``train``, a config with ``to_dict()``) and the world's config key (``world``)."""
    return {"model": dict(model_config), "train": train.to_dict(), "world": world_key}


def array_fingerprint(*arrays: np.ndarray) -> str:
    """A short hash of arrays' bytes (to key a cache on groups, negatives or captions)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    """A short hash of a file's bytes (a parent checkpoint's weights; for a model folder, its
    ``model.safetensors``)."""
    path = Path(path)
    if path.suffix in ("", ".safetensors"):
        path = weights_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parent checkpoint {str(path)!r} not found: train or load the "
                                "parent model first (its getter saves it there)")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_or_train(
    path: str | Path,
    build: Callable[[dict[str, Any]], nn.Module],
    train: Callable[[nn.Module], dict[str, Any]],
    config: Mapping[str, Any],
    *,
    parents: Mapping[str, str | Path] | None = None,
    device: torch.device | str = "cpu",
    may_train: bool = True,
    rebuild_hint: str = "",
) -> tuple[nn.Module, dict[str, Any], bool]:
    """The model at ``path`` if it was made from ``config`` and ``parents``; else trained, saved.

    ``build(config)`` makes a fresh model from the saved (or wanted) config dict;
    ``train(model)`` trains it in place on ``device`` and returns a JSON-serialisable dict
    (its history, say) that is saved beside the weights. ``parents`` names the checkpoints this
    one is trained from (``{"teacher": path}``); their file hashes join the key.

    Returns ``(model, extra, loaded)``: the model on ``device`` in eval mode, the saved dict
    (read back from the checkpoint when loaded), and whether it was loaded.

    ``may_train=False`` only loads (the release models): a missing checkpoint raises
    FileNotFoundError and one made from anything else ValueError listing the differences,
    both ending with ``rebuild_hint``.
    """
    key = dict(config)
    if parents:
        key["parents"] = {name: file_fingerprint(p) for name, p in sorted(parents.items())}
    if not may_train:
        check_trained_from(path, key, rebuild_hint)
    extra: dict[str, Any] = {}

    def train_and_keep(model: nn.Module) -> dict[str, Any]:
        extra.update(train(model.to(device)))
        return extra

    model, loaded = load_if_present(path, build, train_and_keep, key)
    if loaded:
        extra = read_metadata(path)["extra"]
    return model.to(device).eval(), extra, loaded


def check_trained_from(path: str | Path, key: Mapping[str, Any], hint: str = "") -> None:
    """Raise unless the checkpoint ``path`` exists and was trained from exactly ``key``."""
    hint = f"; {hint}" if hint else ""
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"checkpoint {str(path)!r} is missing{hint}")
    differences = config_differences(read_metadata(path)["config"], dict(key))
    if differences:
        raise ValueError(f"checkpoint {str(path)!r} was trained from something else than "
                         f"this code asks for ({'; '.join(differences)}){hint}")
