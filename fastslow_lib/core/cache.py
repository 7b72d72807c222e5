"""Load or train: every trained model of the course comes from :func:`load_or_train`.

A checkpoint is reused only when it was made from exactly what it depends on. Its key is
everything that decides its weights: the model's config, the training budget, the world's
config key, and, for a model trained from another one (a video tower started from the image
model, a student distilled from a teacher), the **file hash of that parent checkpoint**. So
retraining a parent makes every child retrain, instead of loading a child of the old parent.

A model's **recipe** (:class:`Recipe`) says how it is made: its key, how to build a fresh one from
a saved key, how to train it, and the parents it is trained from. Each part of the method writes
the recipe of its models (``fast_recipe``, ``slow_recipe``, ...); the registry
(:mod:`fastslow_lib.registry`) names them, and :func:`load_or_train` is the one place a recipe
becomes a model.

Taught in notebooks/01_fast.ipynb (the first recipe); every later notebook uses it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from fastslow_lib.core.checkpoint import (
    WEIGHTS_NAME,
    checkpoint_exists,
    config_differences,
    load_state,
    read_metadata,
    save_checkpoint,
)

__all__ = ["Recipe", "Trained", "array_fingerprint", "check_trained_from", "file_fingerprint",
           "load_or_train", "training_key"]


@dataclass(frozen=True)
class Recipe:
    """How one model is made.

    ``key``: everything that decides its weights (:func:`training_key`, plus what the recipe
    adds); ``build(saved_key)``: a fresh model from a saved (or wanted) key; ``train(model)``:
    train it in place, returning a JSON-serialisable dict saved beside the weights (its
    ``history``, and anything else worth keeping); ``parents``: the checkpoints it is trained
    from (``{"teacher": folder}``), whose file hashes join the key.
    """

    key: Mapping[str, Any]
    build: Callable[[dict[str, Any]], nn.Module]
    train: Callable[[nn.Module], dict[str, Any]]
    parents: Mapping[str, str | Path] = field(default_factory=dict)


class Trained(NamedTuple):
    """A model from :func:`load_or_train`: the model (eval mode, on the device), its training
    history (read back from the checkpoint when loaded) and whether it was loaded."""

    model: nn.Module
    history: dict[str, Any]
    loaded: bool


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
    if path.suffix == "":
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"parent checkpoint {str(path)!r} not found: train or load the "
                                "parent model first (the registry's factory saves it there)")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_or_train(
    path: str | Path,
    recipe: Recipe,
    *,
    device: torch.device | str = "cpu",
    may_train: bool = True,
    rebuild_hint: str = "",
) -> Trained:
    """The model at ``path`` if it was made from ``recipe``'s key and parents; else trained, saved.

    Returns :class:`Trained` ``(model, history, loaded)``: the model on ``device`` in eval mode,
    the history ``recipe.train`` returned (read back from the checkpoint when loaded; any other
    keys it returned beside ``history`` are merged into it), and whether it was loaded.

    ``may_train=False`` only loads (the release models): a missing checkpoint raises
    FileNotFoundError and one made from anything else ValueError listing the differences,
    both ending with ``rebuild_hint``.
    """
    key = dict(recipe.key)
    if recipe.parents:
        key["parents"] = {name: file_fingerprint(p) for name, p in sorted(recipe.parents.items())}
    key = json.loads(json.dumps(key))  # what build sees is what training.json will hold
    if not may_train:
        check_trained_from(path, key, rebuild_hint)
    loaded = False
    if checkpoint_exists(path):
        meta = read_metadata(path)
        differences = config_differences(meta["config"], key)
        if not differences:
            model, extra, loaded = load_state(_built(recipe, key), path), meta["extra"], True
        else:
            warnings.warn(f"checkpoint {str(path)!r} was trained from a different key ("
                          + "; ".join(differences) + "); retraining and overwriting it",
                          stacklevel=2)
    if not loaded:
        model = _built(recipe, key)
        extra = recipe.train(model.to(device))
        if not isinstance(extra, dict):
            raise TypeError(f"a recipe's train must return a dict (its history), got "
                            f"{type(extra).__name__}")
        save_checkpoint(model, path, key, extra)
    history = {**extra.get("history", {}), **{k: v for k, v in extra.items() if k != "history"}}
    return Trained(model.to(device).eval(), history, loaded)


def _built(recipe: Recipe, key: dict[str, Any]) -> nn.Module:
    model = recipe.build(key)
    if not isinstance(model, nn.Module):
        raise TypeError(f"a recipe's build returned a {type(model).__name__}, not an nn.Module")
    return model


def check_trained_from(path: str | Path, key: Mapping[str, Any], hint: str = "") -> None:
    """Raise unless the checkpoint ``path`` exists and was trained from exactly ``key``."""
    hint = f"; {hint}" if hint else ""
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"checkpoint {str(path)!r} is missing{hint}")
    differences = config_differences(read_metadata(path)["config"], dict(key))
    if differences:
        raise ValueError(f"checkpoint {str(path)!r} was trained from something else than "
                         f"this code asks for ({'; '.join(differences)}){hint}")
