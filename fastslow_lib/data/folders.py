"""Where generated worlds are kept: one folder per config, one cached item per split.

Generating a world draws and captions every image or clip; reading the result back only
loads arrays, so :func:`~fastslow_lib.data.world.load_world` (the image world,
notebooks/00_data.ipynb) and :func:`~fastslow_lib.data.clips.load_clip_world` (the clip world,
notebooks/05_video.ipynb) keep what they generate here, through the library's one array cache
(:func:`fastslow_lib.core.checkpoint.cached_item`). The layout, the same for both worlds::

    <cache dir>/<prefix>-<config key>/
        config.json            the config, for a reader (the folder name is its hash)
        <name>.safetensors     the item's arrays (pixels, caption owners)
        <name>.json            its key and the rest (scenes or scripts, captions, meanings)
        tokenizer/             the training captions' tokenizer (notebook 00)

An item counts as cached once its ``.json`` exists, and that file is written last (through a
temporary name), so an interrupted save is regenerated instead of read half-written. A cache
that cannot be read raises an OSError naming the item and the folder, and saying to delete
the folder; it is never silently regenerated over.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from transformers import PreTrainedTokenizerFast

from fastslow_lib.config.world import ClipConfig, WorldConfig
from fastslow_lib.core.checkpoint import cached_item, write_atomic
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data.tokenizer import build_tokenizer, load_tokenizer, save_tokenizer

__all__ = [
    "cache_folder",
    "check_loader_config",
    "cached_or_generated",
    "cached_tokenizer",
    "default_cache_dir",
]

T = TypeVar("T")

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
    write_atomic(folder / "config.json", json.dumps(asdict(config), indent=1))
    return folder


def cached_or_generated(
    folder: Path | None,
    name: str,
    what: str,
    generate: Callable[[], T],
    pack: Callable[[T], tuple[dict[str, np.ndarray], dict[str, Any]]],
    unpack: Callable[[dict[str, np.ndarray], dict[str, Any]], T],
) -> T:
    """The item ``name`` of the world folder ``folder``, read if cached there, else generated and
    cached (:func:`fastslow_lib.core.checkpoint.cached_item`, keyed by the folder's config key).

    ``pack`` turns the item into ``(arrays, meta)``, ``unpack`` the other way round;
    ``folder=None`` generates without caching. An item that cannot be read raises an OSError
    naming ``what`` and saying to delete the folder.
    """
    path = folder / f"{name}.safetensors" if folder is not None else None
    key = {"folder": folder.name if folder is not None else None, "item": name}
    return cached_item(path, key, generate, pack, unpack, what=what,
                       hint=f"delete the folder {str(folder)!r} to regenerate it")


def cached_tokenizer(folder: Path | None,
                     captions: list[str] | Callable[[], list[str]]) -> PreTrainedTokenizerFast:
    """The tokenizer of ``captions``, read from ``folder/tokenizer`` or built and saved there.

    Shared by the image world and the clip world; ``folder=None`` builds it without caching.
    ``captions`` may be a function returning them: it is called only when the tokenizer is
    built (a world then reads its training split only if it must).
    """
    where = folder / "tokenizer" if folder is not None else None
    if where is not None and (where / "tokenizer.json").exists():
        return load_tokenizer(where)
    tok = build_tokenizer(captions() if callable(captions) else captions)
    if where is not None:
        save_tokenizer(tok, where)
    return tok
