"""Saving and loading trained models: safetensors weights plus a JSON file of metadata.

Taught in notebooks/01_fast.ipynb.

A checkpoint is either a Hugging Face model folder (a path without a suffix; the release
models of ``data/release/`` and every registry model's checkpoint) or two files side by side:

* ``FOLDER/model.safetensors`` or ``NAME.safetensors``: the model's ``state_dict``
  (``safetensors.torch.save_file``); tied tensors (one tensor under several names) are stored
  once, their other names in the file's header;
* ``FOLDER/training.json`` or ``NAME.json``: the key the model was trained with (its config,
  budget, world and parents), free ``extra`` metadata (training history, metrics, timings),
  the tied names, and the model's class;
* ``FOLDER/config.json`` (folders only, for models that define ``hub_config()``): what
  ``Model.from_pretrained(FOLDER)`` needs to rebuild the model (see
  :class:`fastslow_lib.core.hub.HubModel`).

:func:`load_if_present` is the pattern the notebooks use: load the checkpoint when it exists
and was trained with the same config, else build the model, train it and save it. Both files
are written atomically (to a temporary file, then renamed), so an interrupted save never
leaves a half-written checkpoint behind under the real name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "WEIGHTS_SUFFIX",
    "cached_arrays",
    "checkpoint_exists",
    "config_differences",
    "load_checkpoint",
    "load_if_present",
    "load_state",
    "metadata_path",
    "read_metadata",
    "save_checkpoint",
    "save_weights",
    "weights_path",
]

WEIGHTS_SUFFIX = ".safetensors"
#: File names inside a Hugging Face model folder.
WEIGHTS_NAME = "model.safetensors"
TRAINING_NAME = "training.json"
CONFIG_NAME = "config.json"
_FORMAT = "fastslow-checkpoint"
_FORMAT_VERSION = 1

ModelFactory = Callable[[dict[str, Any]], nn.Module]


# --------------------------------------------------------------------------- paths and JSON


def _weights_path(path: str | Path) -> Path:
    """The weights file of the checkpoint ``path``: a folder's ``model.safetensors``, or
    ``path`` itself when it names a ``.safetensors`` file."""
    if not isinstance(path, str | Path):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix == "":
        return path / WEIGHTS_NAME
    if path.suffix != WEIGHTS_SUFFIX:
        raise ValueError(
            f"checkpoint path must be a folder (no suffix: the Hugging Face layout) or end in "
            f"{WEIGHTS_SUFFIX!r} (the metadata goes beside it as .json), got {str(path)!r}"
        )
    return path


def weights_path(path: str | Path) -> Path:
    """The weights file of the checkpoint ``path`` (a folder or a ``.safetensors`` file)."""
    return _weights_path(path)


def metadata_path(path: str | Path) -> Path:
    """The JSON metadata file that goes with the checkpoint ``path``."""
    weights = _weights_path(path)
    if weights.name == WEIGHTS_NAME:
        return weights.with_name(TRAINING_NAME)
    return weights.with_suffix(".json")


def checkpoint_exists(path: str | Path) -> bool:
    """True if the weights file or its JSON metadata exists."""
    weights = _weights_path(path)
    return weights.exists() or metadata_path(weights).exists()


def _delete_hint(path: Path) -> str:
    if path.name == WEIGHTS_NAME:
        return f"delete the folder {str(path.parent)!r} to retrain"
    return f"delete {str(path)!r} and {str(metadata_path(path))!r} to retrain"


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


def config_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two config dicts, as ``"key: saved X, wanted Y"``.

    Both are compared after a JSON round trip, so a tuple and the list it was saved as agree.
    A key present in only one of them shows as ``<missing>`` on the other side.
    """
    saved = _as_config_dict(saved)
    wanted = _as_config_dict(wanted)
    missing = "<missing>"
    lines = []
    for key in sorted(set(saved) | set(wanted)):
        old, new = saved.get(key, missing), wanted.get(key, missing)
        if old != new:
            lines.append(f"{key}: saved {old!r}, wanted {new!r}")
    return lines


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary name next to ``path``, then rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --------------------------------------------------------------------------- saving


def _tensors_to_save(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict as independent contiguous CPU tensors, and ``{alias: stored name}``.

    safetensors refuses tensors that share memory. A tensor reachable under several names
    (tied weights) is stored once, under its first name; the others are recorded as aliases.
    Every stored tensor is cloned, so views into one storage are saved independently.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    for name, value in model.state_dict(keep_vars=False).items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"state_dict entry {name!r} is a {type(value).__name__}, not a tensor; "
                "safetensors stores tensors only"
            )
        if value.numel() > 0:
            key = (value.device, value.data_ptr(), value.dtype, tuple(value.shape),
                   value.stride())
            if key in seen:
                aliases[name] = seen[key]
                continue
            seen[key] = name
        tensors[name] = value.detach().to("cpu").contiguous().clone()
    return tensors, aliases


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save ``model``'s weights and metadata to ``path``: a folder, or ``NAME.safetensors``.

    ``config`` is what the model was built from (a dict, or a dataclass such as
    ``FastConfig``, saved through its ``to_dict()``); ``extra`` any JSON-serialisable dict
    (history, metrics). Parent folders are created. Returns ``path``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    path = _weights_path(path)
    config_dict = _as_config_dict(config)
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    extra_dict = _json_ready(extra, "extra")
    tensors, aliases = _tensors_to_save(model)
    meta = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": config_dict,
        "extra": extra_dict,
        "aliases": aliases,
        "torch_version": torch.__version__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, path)
    text = json.dumps(meta, indent=1)
    _write_atomic(metadata_path(path), lambda tmp: tmp.write_text(text))
    hub_config = getattr(model, "hub_config", None)
    if path.name == WEIGHTS_NAME and callable(hub_config):
        config_text = json.dumps(_json_ready(hub_config(), "hub_config()"), indent=2,
                                 sort_keys=True)
        _write_atomic(path.with_name(CONFIG_NAME), lambda tmp: tmp.write_text(config_text))
    return path


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s state dict to the safetensors file ``path`` (atomically).

    Tied tensors are stored once; their other names go into the file's header (``aliases``),
    so the file alone is enough for :func:`load_state`.
    """
    path = Path(path)
    tensors, aliases = _tensors_to_save(model)
    header = {"format": "pt", "aliases": json.dumps(aliases)}
    _write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    return path


# --------------------------------------------------------------------------- loading


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of the checkpoint ``path``: ``config``, ``extra``, ``aliases``, ...

    Raises FileNotFoundError naming the JSON file if it is missing, ValueError if it is not
    a checkpoint's metadata.
    """
    weights = _weights_path(path)
    meta_file = metadata_path(weights)
    if not meta_file.is_file():
        hint = f"; {_delete_hint(weights)}" if weights.exists() else ""
        raise FileNotFoundError(
            f"checkpoint metadata {str(meta_file)!r} not found (save_checkpoint writes it "
            f"beside {weights.name}){hint}"
        )
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"checkpoint metadata {str(meta_file)!r} is corrupt ({err}); {_delete_hint(weights)}"
        ) from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(
            f"{str(meta_file)!r} is not fastslow checkpoint metadata; {_delete_hint(weights)}"
        )
    for key, kind in (("config", dict), ("extra", dict), ("aliases", dict)):
        if not isinstance(meta.get(key), kind):
            raise ValueError(
                f"checkpoint metadata {str(meta_file)!r} lacks a valid {key!r} entry; "
                f"{_delete_hint(weights)}"
            )
    return meta


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing file raises FileNotFoundError, a bad one ValueError."""
    if not path.is_file():
        hint = f"; {_delete_hint(path)}" if metadata_path(path).exists() else ""
        raise FileNotFoundError(f"checkpoint weights {str(path)!r} not found{hint}")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises SafetensorError (and others) on bad files
        raise ValueError(
            f"checkpoint weights {str(path)!r} are truncated or corrupt ({err}); "
            f"{_delete_hint(path)}"
        ) from err


def _header_aliases(path: Path) -> dict[str, str]:
    """The tied names :func:`save_weights` wrote into a safetensors header (``{}`` if none)."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("aliases", "{}"))


def state_dict_problems(
    expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor], *, limit: int = 10
) -> list[str]:
    """What keeps ``given`` from loading into a module whose state dict is ``expected``.

    One message each for missing keys, unexpected keys and shape mismatches (empty if none),
    listing at most ``limit`` names.
    """

    def listing(names: list[str]) -> str:
        more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
        return f"{sorted(names)[:limit]}{more}"

    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    wrong = [
        f"{key}: saved {tuple(given[key].shape)}, model {tuple(expected[key].shape)}"
        for key in expected
        if key in given and given[key].shape != expected[key].shape
    ]
    return [
        f"{label} {listing(names)}"
        for label, names in (
            ("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)
        )
        if names
    ]


def load_state(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the weights saved at ``path`` into ``model`` (in place) and return ``model``.

    Every tensor must match: missing keys, unexpected keys and shape mismatches raise
    ValueError listing them (usually the model was built from a different config).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    weights = _weights_path(path)
    tensors = _read_weights(weights)
    meta_file = metadata_path(weights)
    aliases = read_metadata(weights)["aliases"] if meta_file.is_file() else _header_aliases(weights)
    for alias, stored in aliases.items():
        if stored in tensors:
            tensors[alias] = tensors[stored]
    problems = state_dict_problems(model.state_dict(), tensors, limit=20)
    if problems:
        raise ValueError(
            f"checkpoint {str(weights)!r} does not fit {type(model).__name__}: "
            + "; ".join(problems)
            + ". Was the model built from the checkpoint's config?"
        )
    model.load_state_dict(tensors, strict=True)
    return model


def _check_config_matches(path: Path, saved: dict[str, Any], wanted: Any) -> None:
    differences = config_differences(saved, wanted)
    if differences:
        raise ValueError(
            f"checkpoint {str(path)!r} was trained with a different config: "
            + "; ".join(differences)
            + f". Pass the matching config, or {_delete_hint(path)}"
        )


def load_checkpoint(
    model_cls_or_factory: type[nn.Module] | ModelFactory,
    path: str | Path,
    *,
    expected_config: dict[str, Any] | None = None,
) -> nn.Module:
    """Build a model from the checkpoint's saved config, load its weights, return it in eval mode.

    ``model_cls_or_factory`` is called with the saved config dict (e.g. ``DualEncoder``,
    which accepts ``FastConfig.to_dict()``, or ``lambda cfg: MyModel(**cfg)``). With
    ``expected_config``, a checkpoint saved with a different config raises ValueError
    listing the differing keys. Missing files raise FileNotFoundError naming them.
    """
    if not callable(model_cls_or_factory):
        raise TypeError(
            "model_cls_or_factory must be a model class or a function config -> model, got "
            f"{type(model_cls_or_factory).__name__}"
        )
    weights = _weights_path(path)
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint weights {str(weights)!r} not found")
    meta = read_metadata(weights)
    if expected_config is not None:
        _check_config_matches(weights, meta["config"], expected_config)
    model = model_cls_or_factory(meta["config"])
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model_cls_or_factory returned a {type(model).__name__}, not a torch.nn.Module"
        )
    load_state(model, weights)
    return model.eval()


def load_if_present(
    path: str | Path,
    build_fn: ModelFactory,
    train_fn: Callable[[nn.Module], dict[str, Any] | None],
    config: dict[str, Any],
    *,
    on_mismatch: Literal["retrain", "error"] = "retrain",
) -> tuple[nn.Module, bool]:
    """Load the checkpoint at ``path`` if it was trained with ``config``; else train and save.

    ``build_fn(config)`` makes a fresh model; ``train_fn(model)`` trains it in place and
    returns ``None`` or a JSON-serialisable dict saved as the checkpoint's ``extra`` (e.g. the
    loss history). Returns ``(model, loaded)`` with the model in eval mode; ``loaded`` is True
    when it came from the checkpoint (``train_fn`` was not called).

    A checkpoint saved with another config is retrained and overwritten (with a warning that
    lists the differing keys) if ``on_mismatch="retrain"``, or raises ValueError listing them
    if ``on_mismatch="error"``. A truncated or corrupt checkpoint always raises ValueError (it
    is never silently overwritten): delete it to retrain.
    """
    if on_mismatch not in ("retrain", "error"):
        raise ValueError(f"on_mismatch must be 'retrain' or 'error', got {on_mismatch!r}")
    for name, fn in (("build_fn", build_fn), ("train_fn", train_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    weights = _weights_path(path)
    wanted = _as_config_dict(config)
    if checkpoint_exists(weights):
        meta = read_metadata(weights)
        differences = config_differences(meta["config"], wanted)
        if not differences:
            model = build_fn(wanted)
            if not isinstance(model, nn.Module):
                raise TypeError(f"build_fn returned a {type(model).__name__}, not an nn.Module")
            load_state(model, weights)
            return model.eval(), True
        if on_mismatch == "error":
            _check_config_matches(weights, meta["config"], wanted)
        warnings.warn(
            f"checkpoint {str(weights)!r} was trained with a different config ("
            + "; ".join(differences)
            + "); retraining and overwriting it",
            stacklevel=2,
        )
    model = build_fn(wanted)
    if not isinstance(model, nn.Module):
        raise TypeError(f"build_fn returned a {type(model).__name__}, not an nn.Module")
    extra = train_fn(model)
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(
            f"train_fn must return None or a dict of metadata, got {type(extra).__name__}"
        )
    save_checkpoint(model, weights, wanted, extra)
    return model.eval(), False


# --------------------------------------------------------------------------- cached arrays


def cached_arrays(
    path: str | Path,
    config: dict[str, Any],
    compute: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """Arrays saved at ``path`` (``.safetensors``) if computed with ``config``; else computed.

    The load-if-present pattern for results that are not models, e.g. the teacher's scores of
    notebook 03: ``compute()`` returns a dict of numpy arrays, saved with ``config`` in the JSON
    beside them. Returns ``(arrays, loaded)``. A cache made with another config is recomputed
    and overwritten (with a warning naming the differences); a corrupt one raises ValueError.
    """
    import numpy as np
    from safetensors.numpy import load_file as load_numpy
    from safetensors.numpy import save_file as save_numpy

    weights = _weights_path(path)
    wanted = _as_config_dict(config)
    meta_file = metadata_path(weights)
    if weights.is_file() and meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
            saved = meta["config"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"cached arrays' metadata {str(meta_file)!r} is corrupt ({err}); "
                             f"{_delete_hint(weights)}") from err
        differences = config_differences(saved, wanted)
        if not differences:
            try:
                return dict(load_numpy(str(weights))), True
            except Exception as err:  # safetensors raises SafetensorError on bad files
                raise ValueError(f"cached arrays {str(weights)!r} are unreadable ({err}); "
                                 f"{_delete_hint(weights)}") from err
        warnings.warn(f"cached arrays {str(weights)!r} were computed with a different config ("
                      + "; ".join(differences) + "); recomputing them", stacklevel=2)
    arrays = compute()
    if not isinstance(arrays, dict) or not all(isinstance(v, np.ndarray)
                                               for v in arrays.values()):
        raise TypeError("compute must return a dict of numpy arrays")
    weights.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(weights, lambda tmp: save_numpy(
        {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp)))
    text = json.dumps({"format": "fastslow-arrays", "config": wanted}, indent=1)
    _write_atomic(meta_file, lambda tmp: tmp.write_text(text))
    return arrays, False
