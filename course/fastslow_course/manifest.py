"""What the release models are, and how their files are checked against the manifest.

:data:`fastslow_lib.registry.REGISTRY` lists every release model (parents first);
``data/release/MANIFEST.json`` keeps
the sha256 of each one's files, and :func:`verify_release` checks them, naming any missing or
altered file and how to restore or rebuild it. :mod:`fastslow_course.release` loads, trains
and reproduces the models themselves.

Taught in notebooks/01_fast.ipynb (section "Release models").
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fastslow_lib.config.presets import Preset
from fastslow_lib.core.checkpoint import CONFIG_NAME, TRAINING_NAME, WEIGHTS_NAME
from fastslow_lib.core.paths import repo_root
from fastslow_lib.registry import REGISTRY

__all__ = ["FILES", "MANIFEST_NAME", "STUDENTS", "SLOW_VAL_QUERIES",
           "TRAIN_MODES", "chosen_student", "manifest", "rebuild_hint",
           "release_dir", "sha256_file", "show_path", "train_mode", "verify_release"]

MANIFEST_NAME = "MANIFEST.json"
FILES = (CONFIG_NAME, WEIGHTS_NAME, TRAINING_NAME)
#: ``FASTSLOW_TRAIN``: ``release`` (default: load the committed models) or ``full`` (train them
#: at the release budget on this machine).
TRAIN_MODES = ("release", "full")
#: Validation queries a Slow-type model scores against the whole validation gallery.
SLOW_VAL_QUERIES = 100


#: The distilled students (notebook 03): the one with the best validation R@1 is the course's
#: distilled Fast, the one notebook 04 re-ranks with (:func:`chosen_student`).
STUDENTS: tuple[str, ...] = ("fast_distilled", "fast_ranked")


def chosen_student(root: str | Path) -> str:
    """The release student with the best validation R@1 in ``root``'s manifest (ties: the
    first of :data:`STUDENTS`). Chosen on validation, never on the test queries."""
    models = manifest(root)["models"]
    have = [n for n in STUDENTS if n in models]
    if not have:
        raise FileNotFoundError(f"no distilled student in {show_path(Path(root) / MANIFEST_NAME)}: "
                                "run `make reproduce ONLY=fast_distilled`")
    return max(have, key=lambda n: (models[n]["validation"]["val_R@1"], -STUDENTS.index(n)))


def train_mode() -> str:
    """``$FASTSLOW_TRAIN`` (default ``release``); anything else is a clear error."""
    mode = os.environ.get("FASTSLOW_TRAIN", "release").strip() or "release"
    if mode not in TRAIN_MODES:
        raise ValueError(f"FASTSLOW_TRAIN={mode!r} is not one of {TRAIN_MODES}: 'release' loads "
                         "the committed release models, 'full' trains them at full budget")
    return mode


def release_dir(preset: Preset, mode: str = "release") -> Path:
    """Where ``preset``'s release models live: ``data/release`` for ``cpu`` (committed),
    ``checkpoints/release-<preset>`` for other presets; ``checkpoints/full-<preset>`` in
    ``full`` mode. ``$FASTSLOW_RELEASE_DIR`` overrides the release folder. A world whose
    captions leave things out (``caption_detail`` below 1, notebook 03) has its own release
    models in a subfolder, ``captions-<detail in percent>`` (:func:`world_subfolder`)."""
    sub = world_subfolder(preset)
    if mode == "full":
        base = repo_root() / "checkpoints" / f"full-{preset.name}"
    elif os.environ.get("FASTSLOW_RELEASE_DIR", "").strip():
        base = Path(os.environ["FASTSLOW_RELEASE_DIR"].strip())
    elif preset.name == "cpu":
        base = repo_root() / "data" / "release"
    else:
        base = repo_root() / "checkpoints" / f"release-{preset.name}"
    return base / sub if sub else base


def world_subfolder(preset: Preset) -> str:
    """``""`` for a preset's own world; ``captions-60`` for its world at ``caption_detail``
    0.6 (the release models trained on that world live there)."""
    detail = preset.world.caption_detail
    return "" if detail >= 1 else f"captions-{round(detail * 100)}"


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes (hex), read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(root: str | Path) -> dict[str, Any]:
    """The release manifest in ``root`` (``{"models": {}}`` when there is none yet)."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return {"models": {}}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}): restore it with "
                         f"`git checkout -- {path}` or rebuild it with `make reproduce`") from err
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ValueError(f"{path} has no 'models' table: restore it with `git checkout` "
                         "or rebuild it with `make reproduce`")
    return data


def rebuild_hint(name: str, root: Path) -> str:
    """How to restore or rebuild release model ``name`` (for error messages)."""
    return (f"restore the committed files with `git checkout -- {show_path(root / name)}` or "
            f"rebuild the model with `make reproduce ONLY={name}`")


def show_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (for messages)."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except (ValueError, FileNotFoundError):
        return str(path)


def verify_release(name: str, root: str | Path) -> dict[str, Any]:
    """The manifest entry of release model ``name`` after checking every file's sha256.

    A model the manifest does not list, a missing file or an altered one raises
    (FileNotFoundError / ValueError) naming the file and how to restore or rebuild it.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown release model {name!r}; expected one of {sorted(REGISTRY)}")
    root = Path(root)
    entry = manifest(root)["models"].get(name)
    hint = rebuild_hint(name, root)
    if entry is None:
        where = show_path(root / MANIFEST_NAME)
        raise FileNotFoundError(f"release model {name!r} is not in {where}: {hint}")
    for fname, digest in entry["sha256"].items():
        path = root / name / fname
        if not path.is_file():
            raise FileNotFoundError(f"release model {name!r}: {show_path(path)} is missing; {hint}")
        actual = sha256_file(path)
        if actual != digest:
            raise ValueError(f"release model {name!r}: {show_path(path)} was altered (sha256 "
                             f"{actual[:12]}..., the manifest says {digest[:12]}...); {hint}")
    return entry
