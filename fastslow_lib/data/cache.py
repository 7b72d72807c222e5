"""The on-disk cache of generated worlds: one folder per config, two files per cached item.

Generating a world draws and captions every image or clip; reading the result back only
loads arrays, so :func:`~fastslow_lib.data.world.load_world` (the image world,
notebooks/00_data.ipynb) and :func:`~fastslow_lib.data.clips.load_clip_world` (the clip world,
notebooks/05_video.ipynb) keep what they generate here. The layout, the same for both worlds::

    <cache dir>/<prefix>-<config key>/
        config.json            the config, for a reader (the folder name is its hash)
        <name>.npz             the item's arrays (pixels, caption owners)
        <name>.json            the rest (scenes or scripts, captions, caption meanings)
        tokenizer/             the training captions' tokenizer (notebook 00)

An item counts as cached once its ``.npz`` exists, and that file is written last (through a
temporary name), so an interrupted save is regenerated instead of read half-written. A cache
that cannot be read raises an OSError naming the item and the folder, and saying to delete
the folder; it is never silently regenerated over.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from transformers import PreTrainedTokenizerFast

from fastslow_lib.config.world import ClipConfig, WorldConfig
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data.tokenizer import build_tokenizer, load_tokenizer, save_tokenizer

__all__ = [
    "cache_folder",
    "check_loader_config",
    "cached_or_generated",
    "cached_tokenizer",
    "default_cache_dir",
    "load_arrays",
    "save_arrays",
]

T = TypeVar("T")

#: What a damaged or foreign cache file raises while it is read back.
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)


def default_cache_dir() -> Path:
    """``$FASTSLOW_DATA`` if set, else ``data/cache`` in the repository (or the cwd)."""
    env = os.environ.get("FASTSLOW_DATA")
    if env:
        return Path(env)
    try:
        return repo_root() / "data" / "cache"
    except FileNotFoundError:
        return Path.cwd().resolve() / "data" / "cache"


def check_loader_config(config: object, expected: type, loader: str, preset_field: str) -> None:
    """A clear TypeError unless ``config`` is an ``expected`` config (a preset name is not: the
    preset look-up happens above the data layer)."""
    if isinstance(config, str):
        raise TypeError(f"{loader} takes a {expected.__name__}, not the preset name {config!r}; "
                        f"pass get_preset({config!r}).{preset_field} (fastslow_lib.config.presets)")
    if not isinstance(config, expected):
        raise TypeError(f"{loader} takes a {expected.__name__} as config, got "
                        f"{type(config).__name__}")


def cache_folder(
    cache_dir: str | Path | None, prefix: str, config: WorldConfig | ClipConfig
) -> Path:
    """``<cache_dir>/<prefix>-<config.key()>``, created, with ``config.json`` written in it.

    ``cache_dir=None`` means :func:`default_cache_dir`.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"{prefix}-{config.key()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(asdict(config), indent=1))
    return folder


def save_arrays(folder: Path, name: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``folder/name.npz`` (the arrays) and ``folder/name.json`` (``meta``), npz last."""
    tmp = folder / f"{name}.tmp.npz"
    np.savez(tmp, **arrays)
    (folder / f"{name}.json").write_text(json.dumps(meta))
    os.replace(tmp, folder / f"{name}.npz")


def _unreadable(folder: Path, what: str, error: BaseException) -> OSError:
    return OSError(f"the cached {what} in {folder} is unreadable ({error!r}); delete the folder "
                   f"to regenerate it")


def load_arrays(folder: Path, name: str, what: str) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the metadata :func:`save_arrays` wrote under ``name``.

    ``what`` names the item for the error a damaged file raises (e.g. ``"world split 'test'"``).
    """
    try:
        with np.load(folder / f"{name}.npz") as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads((folder / f"{name}.json").read_text())
    except _UNREADABLE as e:
        raise _unreadable(folder, what, e) from e
    return arrays, meta


def cached_or_generated(
    folder: Path | None,
    name: str,
    what: str,
    generate: Callable[[], T],
    pack: Callable[[T], tuple[dict[str, np.ndarray], dict[str, Any]]],
    unpack: Callable[[dict[str, np.ndarray], dict[str, Any]], T],
) -> T:
    """The item ``name`` read from ``folder`` if cached there, else generated (and cached).

    ``pack`` turns the item into ``(arrays, meta)`` for :func:`save_arrays`, ``unpack`` the
    other way round. ``folder=None`` generates without caching. A cached item that cannot be
    read or unpacked raises an OSError naming ``what`` and the folder.
    """
    if folder is not None and (folder / f"{name}.npz").exists():
        arrays, meta = load_arrays(folder, name, what)
        try:
            return unpack(arrays, meta)
        except _UNREADABLE as e:
            raise _unreadable(folder, what, e) from e
    item = generate()
    if folder is not None:
        save_arrays(folder, name, *pack(item))
    return item


def cached_tokenizer(folder: Path | None, captions: list[str]) -> PreTrainedTokenizerFast:
    """The tokenizer of ``captions``, read from ``folder/tokenizer`` or built and saved there.

    Shared by the image world and the clip world; ``folder=None`` builds it without caching.
    """
    where = folder / "tokenizer" if folder is not None else None
    if where is not None and (where / "tokenizer.json").exists():
        return load_tokenizer(where)
    tok = build_tokenizer(captions)
    if where is not None:
        save_tokenizer(tok, where)
    return tok
