"""The one persistence layer: model folders, cached arrays, atomic writes.

Taught in notebooks/01_fast.ipynb.

**A model** is kept as a Hugging Face model folder, written by :func:`save_checkpoint` and read
back by :func:`fastslow_lib.core.cache.load_or_train` or ``Model.from_pretrained(folder)``:

* ``model.safetensors``: the weights, saved and loaded by safetensors' own ``save_model`` /
  ``load_model`` (:func:`save_weights`, :func:`load_state`), which store a tied tensor once and
  tie it again on loading;
* ``training.json``: the key the model was trained from (its config, budget, world and
  parents), free ``extra`` metadata (training history, timings) and the model's class;
* ``config.json`` (models that define ``hub_config()``): what ``Model.from_pretrained(folder)``
  needs to rebuild the model (:class:`fastslow_lib.core.hub.HubModel`).

**Arrays** that are not a model (the teacher's scores, a world's images, the test scores of a
release model) are kept by :func:`cached_arrays` and :func:`cached_item`: ``NAME.safetensors``
(the arrays) beside ``NAME.json`` (the key they were computed from, and any JSON metadata). They
are reused only when computed from the same key.

Every file is written through :func:`write_atomic` (a temporary name, then a rename), so an
interrupted save never leaves a half-written file under the real name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_model, save_model
from torch import nn

__all__ = [
    "CONFIG_NAME",
    "TRAINING_NAME",
    "WEIGHTS_NAME",
    "cached_arrays",
    "cached_item",
    "checkpoint_exists",
    "config_differences",
    "load_state",
    "read_metadata",
    "save_checkpoint",
    "save_weights",
    "state_dict_problems",
    "write_atomic",
]

#: File names inside a Hugging Face model folder.
WEIGHTS_NAME = "model.safetensors"
TRAINING_NAME = "training.json"
CONFIG_NAME = "config.json"
_FORMAT = "fastslow-checkpoint"
_FORMAT_VERSION = 1
_ARRAYS_FORMAT = "fastslow-arrays"

T = TypeVar("T")


# --------------------------------------------------------------------------- files and JSON


def write_atomic(path: str | Path, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``content`` to ``path`` through a temporary name beside it, then rename it.

    ``content`` is text, bytes, or a function that writes a given temporary path (e.g.
    ``lambda tmp: save_file(tensors, tmp)``). Parent folders are created. A failed write leaves
    the old file (if any) untouched and no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        elif callable(content):
            content(tmp)
        else:
            raise TypeError(f"content must be str, bytes or a function of a path, got "
                            f"{type(content).__name__}")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _folder(path: str | Path) -> Path:
    """A model folder: ``path`` itself, or the folder of a ``model.safetensors`` path."""
    if not isinstance(path, str | Path):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if path.name == WEIGHTS_NAME:
        return path.parent
    if path.suffix:
        raise ValueError(f"a checkpoint is a model folder (a path without a suffix, the Hugging "
                         f"Face layout: {WEIGHTS_NAME}, {TRAINING_NAME}, {CONFIG_NAME}), got "
                         f"{str(path)!r}")
    return path


def checkpoint_exists(path: str | Path) -> bool:
    """True if the model folder ``path`` holds weights or training metadata."""
    folder = _folder(path)
    return (folder / WEIGHTS_NAME).exists() or (folder / TRAINING_NAME).exists()


def _delete_hint(folder: Path) -> str:
    return f"delete the folder {str(folder)!r} to retrain"


def _json_ready(value: Any, name: str) -> Any:
    """``value`` after a JSON round trip (tuples become lists); TypeError if not serialisable."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        value = to_dict() if callable(to_dict) else dataclasses.asdict(value)
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be JSON-serialisable: {err}") from None


def _as_config_dict(config: Any) -> dict[str, Any]:
    config = _json_ready(config, "config")
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict (or a dataclass), got {type(config).__name__}")
    return config


def config_differences(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ between two config dicts, as ``"key: saved X, wanted Y"``.

    Both are compared after a JSON round trip, so a tuple and the list it was saved as agree.
    A key present in only one of them shows as ``<missing>`` on the other side; a long value
    (a list of query ids, say) is shortened to its first and last characters.
    """
    saved, wanted = _as_config_dict(dict(saved)), _as_config_dict(dict(wanted))
    missing = "<missing>"
    return [f"{key}: saved {_short(saved.get(key, missing))}, "
            f"wanted {_short(wanted.get(key, missing))}"
            for key in sorted(set(saved) | set(wanted))
            if saved.get(key, missing) != wanted.get(key, missing)]


def _short(value: Any, width: int = 120) -> str:
    text = repr(value)
    if len(text) <= width:
        return text
    return f"{text[: width // 2]} ... {text[-width // 4 :]} ({len(text):,} characters)"


# --------------------------------------------------------------------------- models


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s weights to the safetensors file ``path`` (atomically), with
    safetensors' ``save_model``: a tied tensor is stored once, under one of its names."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return write_atomic(path, lambda tmp: save_model(model, str(tmp)))


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` to the model folder ``path``; return the folder.

    ``config`` is the key the model was made from (a dict, or a dataclass such as
    ``FastConfig``, saved through its ``to_dict()``); ``extra`` any JSON-serialisable dict
    (history, timings). Writes ``model.safetensors``, ``training.json`` and, for a model with
    ``hub_config()``, ``config.json``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    folder = _folder(path)
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    meta = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": _as_config_dict(config),
        "extra": _json_ready(dict(extra or {}), "extra"),
        "torch_version": torch.__version__,
    }
    hub_config = getattr(model, "hub_config", None)
    config_text = (json.dumps(_json_ready(hub_config(), "hub_config()"), indent=2, sort_keys=True)
                   if callable(hub_config) else None)
    save_weights(model, folder / WEIGHTS_NAME)
    write_atomic(folder / TRAINING_NAME, json.dumps(meta, indent=1))
    if config_text is not None:
        write_atomic(folder / CONFIG_NAME, config_text)
    return folder


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``training.json`` of the model folder ``path``: ``config``, ``extra``, ...

    Raises FileNotFoundError naming the file if it is missing, ValueError if it is not a
    checkpoint's metadata.
    """
    folder = _folder(path)
    meta_file = folder / TRAINING_NAME
    if not meta_file.is_file():
        raise FileNotFoundError(f"checkpoint metadata {str(meta_file)!r} not found "
                                f"(save_checkpoint writes it beside {WEIGHTS_NAME}); "
                                f"{_delete_hint(folder)}")
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"checkpoint metadata {str(meta_file)!r} is corrupt ({err}); "
                         f"{_delete_hint(folder)}") from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{str(meta_file)!r} is not fastslow checkpoint metadata; "
                         f"{_delete_hint(folder)}")
    for key in ("config", "extra"):
        if not isinstance(meta.get(key), dict):
            raise ValueError(f"checkpoint metadata {str(meta_file)!r} lacks a valid {key!r} "
                             f"entry; {_delete_hint(folder)}")
    return meta


def _listing(label: str, names: list[str], limit: int) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"{label} {sorted(names)[:limit]}{more}"


def state_dict_problems(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, Any], *, limit: int = 10
) -> list[str]:
    """What keeps ``given`` (tensors, or anything with a ``.shape``) from loading into a module
    whose state dict is ``expected``: one message each for missing keys, unexpected keys and
    shape mismatches (empty if none), listing at most ``limit`` names."""
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    return [_listing(label, names, limit)
            for label, names in (("missing keys", missing), ("unexpected keys", unexpected),
                                 ("shape mismatches", _shape_mismatches(expected, given)))
            if names]


def _shape_mismatches(expected: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    return [f"{key}: saved {tuple(given[key].shape)}, model {tuple(expected[key].shape)}"
            for key in expected
            if key in given and tuple(given[key].shape) != tuple(expected[key].shape)]


class _Shape:
    """A tensor's shape read from a safetensors header (no data loaded)."""

    def __init__(self, shape: list[int]) -> None:
        self.shape = tuple(shape)


def load_state(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the weights of the model folder (or ``model.safetensors``) ``path`` into ``model``,
    in place, with safetensors' ``load_model`` (which ties tied tensors again); return ``model``.

    Every tensor must fit: missing keys, unexpected keys and shape mismatches raise ValueError
    listing them (usually the model was built from a different config).
    """
    from safetensors import safe_open

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    folder = _folder(path)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint weights {str(weights)!r} not found")
    try:
        with safe_open(str(weights), framework="pt") as f:
            saved = {name: _Shape(f.get_slice(name).get_shape()) for name in f.keys()}
        problems = [_listing("shape mismatches", wrong, 20)
                    for wrong in [_shape_mismatches(model.state_dict(), saved)] if wrong]
        if not problems:
            missing, unexpected = load_model(model, str(weights), strict=False)
            problems = [_listing(label, list(names), 20)
                        for label, names in (("missing keys", missing),
                                             ("unexpected keys", unexpected)) if names]
    except (SafetensorError, OSError) as err:
        raise ValueError(f"checkpoint weights {str(weights)!r} are truncated or corrupt ({err}); "
                         f"{_delete_hint(folder)}") from err
    if problems:
        raise ValueError(f"checkpoint {str(weights)!r} does not fit {type(model).__name__}: "
                         + "; ".join(problems)
                         + ". Was the model built from the checkpoint's config?")
    return model


# --------------------------------------------------------------------------- arrays


def _arrays_meta(path: Path) -> Path:
    return path.with_suffix(".json")


def _arrays_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"cached arrays go to a NAME.safetensors file (their key beside it as "
                         f"NAME.json), got {str(path)!r}")
    return path


def _read_arrays(path: Path, key: dict[str, Any], unreadable: Callable[[Exception], OSError]
                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata cached at ``path`` if computed from ``key``; None if absent (or,
    with a warning, computed from another key). An unreadable file raises ``unreadable(err)``."""
    meta_file = _arrays_meta(path)
    if not (path.is_file() and meta_file.is_file()):
        return None
    try:
        meta = json.loads(meta_file.read_text())
        saved = meta["config"]
        differences = config_differences(saved, key)
        if differences:
            warnings.warn(f"cached arrays {str(path)!r} were computed with a different config ("
                          + "; ".join(differences) + "); recomputing them", stacklevel=3)
            return None
        return dict(load_numpy(str(path))), meta.get("meta", {})
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
        raise unreadable(err) from err


def _write_arrays(path: Path, key: dict[str, Any], arrays: Mapping[str, np.ndarray],
                  meta: Mapping[str, Any] | None = None) -> None:
    """Write the arrays first, their key (and metadata) last: the JSON marks a complete item."""
    if not isinstance(arrays, Mapping) or not all(isinstance(v, np.ndarray)
                                                  for v in arrays.values()):
        raise TypeError("compute must return a dict of numpy arrays")
    record: dict[str, Any] = {"format": _ARRAYS_FORMAT, "config": key}
    if meta is not None:
        record["meta"] = meta
    _arrays_meta(path).unlink(missing_ok=True)
    write_atomic(path, lambda tmp: save_numpy(
        {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp)))
    write_atomic(_arrays_meta(path), json.dumps(record, indent=1))


def cached_arrays(
    path: str | Path,
    key: Mapping[str, Any],
    compute: Callable[[], dict[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], bool]:
    """Arrays kept at ``path`` (``NAME.safetensors``) if computed from ``key``; else computed.

    ``compute()`` returns a dict of numpy arrays, saved with ``key`` in ``NAME.json`` beside
    them (e.g. the teacher's scores of notebook 03). Returns ``(arrays, loaded)``. A cache made
    from another key is recomputed and overwritten (with a warning naming the differences); an
    unreadable one raises OSError saying what to delete.
    """
    path, wanted = _arrays_path(path), _as_config_dict(key)
    found = _read_arrays(path, wanted, lambda err: OSError(
        f"cached arrays {str(path)!r} are unreadable ({err!r}); delete it and "
        f"{str(_arrays_meta(path))!r} to recompute them"))
    if found is not None:
        return found[0], True
    arrays = compute()
    _write_arrays(path, wanted, arrays)
    return arrays, False


def cached_item(
    path: str | Path | None,
    key: Mapping[str, Any],
    generate: Callable[[], T],
    pack: Callable[[T], tuple[dict[str, np.ndarray], dict[str, Any]]],
    unpack: Callable[[dict[str, np.ndarray], dict[str, Any]], T],
    *,
    what: str = "item",
    hint: str = "",
) -> T:
    """:func:`cached_arrays` for an object that is arrays plus JSON metadata (a world's split).

    ``pack(item)`` gives ``(arrays, meta)``, ``unpack(arrays, meta)`` the item back.
    ``path=None`` generates without caching. An item that cannot be read or unpacked raises
    OSError naming ``what`` and the file, followed by ``hint`` (what to delete).
    """
    wanted = _as_config_dict(key)
    if path is None:
        return generate()
    path = _arrays_path(path)

    def unreadable(err: Exception) -> OSError:
        return OSError(f"the cached {what} {str(path)!r} is unreadable ({err!r})"
                       + (f"; {hint}" if hint else ""))

    found = _read_arrays(path, wanted, unreadable)
    if found is not None:
        try:
            return unpack(*found)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise unreadable(err) from err
    item = generate()
    _write_arrays(path, wanted, *pack(item))
    return item
