"""The release models: trained once at full budget, committed, loaded by the notebooks.

A notebook can afford about a minute of training per model on a laptop: enough to watch the
loss fall, not enough for the paper's effects to appear. So the course ships **release models**
trained at full budget (:class:`~fastslow_lib.config.training.ReleaseBudgets`, a preset's
``release``), one Hugging Face model folder each under ``data/release/`` (``config.json`` +
``model.safetensors`` + ``training.json``), listed in ``data/release/MANIFEST.json`` with the
sha256 of every file, the budget, the training seconds, the machine and the validation figures.

* :func:`release_model` is what a notebook calls: the release model, its files checked against
  the manifest (a missing or altered file is a clear error naming it and how to rebuild it).
  With ``FASTSLOW_TRAIN=full`` it trains the model at the release budget instead (under
  ``checkpoints/full-<preset>/``), for a reproducer who wants to see it happen.
* :func:`reproduce` (``make reproduce``) trains every release model from scratch into the
  release folder, skipping a model whose folder already matches its config and parents
  (so it resumes across sittings), and writes the manifest.
* :func:`fastslow_course.reproduce_check.check_reproduction`
  (``scripts/reproduce.py --check NAME``) retrains a model in a scratch folder, beside the
  committed one, and says whether its validation figures fall inside the 95% interval of the
  manifest's (``results/reproduce_check.json``).

Every model comes from the registry (:mod:`fastslow_lib.registry`: its recipe, through the one
:func:`fastslow_lib.core.cache.load_or_train`); a child's key holds its parents' weight hashes.
``Model.from_pretrained("data/release/NAME")`` loads a folder without any of this.

Taught in notebooks/01_fast.ipynb (section "Release models"); every later notebook uses it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_course.manifest import (
    FILES,
    MANIFEST_NAME,
    SLOW_VAL_QUERIES,
    STUDENTS,
    TRAIN_MODES,
    chosen_student,
    manifest,
    rebuild_hint,
    release_dir,
    sha256_file,
    show_path,
    train_mode,
    verify_release,
    world_subfolder,
)
from fastslow_lib.config.presets import Preset, get_preset
from fastslow_lib.core.cache import file_fingerprint
from fastslow_lib.core.checkpoint import (
    WEIGHTS_NAME,
    cached_arrays,
    read_metadata,
    write_atomic,
)
from fastslow_lib.core.device import describe_device, machine_name, pick_device
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data.datasets import RetrievalProtocol
from fastslow_lib.data.world import World
from fastslow_lib.fast.evaluate import retrieval_report
from fastslow_lib.registry import REGISTRY, Models
from fastslow_lib.rerank import SlowGallery
from fastslow_lib.slow.model import SlowModel
from fastslow_lib.slow.scoring import slow_scores

__all__ = ["MANIFEST_NAME", "STUDENTS", "Releases", "as_device",
           "chosen_student", "git_commit", "library_diff_hash", "manifest", "write_manifest",
           "release_dir", "release_model", "release_test_scores", "reproduce", "train_mode",
           "verify_release"]

@dataclass
class Releases(Models):
    """The release models of one preset on one device: the registry's models in the release
    folder, checked against the manifest, with their kept test scores and validation figures.

    ``Releases(preset)`` in a notebook; :func:`release_model` is the one-call form. ``mode``
    is ``release`` (load only, each model's files checked against the manifest first) or
    ``full`` (train at the release budget when missing, under ``checkpoints/full-<preset>``).
    ``seeds``: a model's training seed other than its budget's (the same recipe at another
    seed: :func:`~fastslow_course.reproduce_check.check_reproduction`'s ``seeds``).
    """

    mode: str = field(default_factory=train_mode)

    def __post_init__(self) -> None:
        if self.mode not in TRAIN_MODES:
            raise ValueError(f"mode must be one of {TRAIN_MODES}, got {self.mode!r}")
        if self.root is None:
            self.root = release_dir(self.preset, self.mode)
        self.may_train = self.mode == "full"
        self.budgets = self.preset.release_budgets()
        if self.cache_dir is None:  # recipes' inputs (mined negatives, the teacher's scores)
            self.cache_dir = repo_root() / "checkpoints" / "release-cache" / \
                world_subfolder(self.preset)
        super().__post_init__()

    def before_load(self, name: str) -> None:
        """In ``release`` mode, check ``name``'s files against the manifest first."""
        if not self.may_train:
            verify_release(name, self.root)  # type: ignore[arg-type]

    def rebuild_hint(self, name: str) -> str:
        """How to restore or rebuild release model ``name``."""
        return rebuild_hint(name, self.root)  # type: ignore[arg-type]

    def test_scores(self, name: str = "slow") -> tuple[dict[str, np.ndarray], bool]:
        """Release Slow-type model ``name`` on the course's test queries: ``(arrays, loaded)``.

        The preset's ``slow_queries`` test captions (``query_subset(n, seed=0)``: the subset
        every notebook compares models on) against the whole test gallery, each decoder
        direction apart: ``arrays`` holds ``query_ids`` and one ``(queries, images)`` array per
        decoder (``forward``, ``backward``; a matching model's, or a video model's sum of both,
        is ``score``). Scoring them
        takes minutes on a laptop CPU, so they are cached beside the models
        (``<release folder>/scores/NAME_test.safetensors``, committed for the ``cpu`` preset
        and refreshed by :func:`reproduce`), keyed by the model's weights, the world and the
        query subset; a notebook scores a few queries live and checks them against the cache
        (notebooks 02 and 04; ``video_slow``'s in notebook 05).
        """
        spec = REGISTRY[name]
        if spec.kind != "slow":
            raise ValueError(f"test_scores is for the Slow-type release models, not {name!r}")
        if spec.clips:  # notebook 05: the clip world, its own query count and tokenizer
            world, tok = self.clips, self.clips.tokenizer()
            n_queries = self.preset.video.slow_queries
            max_len = self.budgets.video.slow_train.max_len
        else:
            world, tok = self.world, self.tokenizer
            n_queries, max_len = self.preset.slow_queries, self.budgets.slow_train.max_len
        test = RetrievalProtocol.from_split(world.test)  # type: ignore[union-attr]
        query_ids = test.query_subset(min(n_queries, len(test.queries)), seed=0)
        model = self.get(name)[0]
        directions = [d for d, _ in model.decoders()] if isinstance(model, SlowModel) else []
        config = {"model": file_fingerprint(self.folder(name)), "world": world.config.key(),  # type: ignore[union-attr]
                  "query_ids": query_ids.tolist(), "max_len": max_len}

        def compute() -> dict[str, np.ndarray]:
            texts = [test.queries[q] for q in query_ids]
            if spec.clips:  # the video model scores through its gallery (both directions)
                gallery = SlowGallery(model, test.gallery, device=self.device)
                return {"query_ids": query_ids, "score": gallery.scores(tok, texts,
                                                                       max_len=max_len)}
            score = partial(slow_scores, model, tok, texts, test.gallery,
                            max_len=max_len, device=self.device)
            if not directions:  # a matching model: one logit per pair
                return {"query_ids": query_ids, "score": score()}
            return {"query_ids": query_ids, **{d: score(directions=(d,)) for d in directions}}

        cache = self.root / "scores" / f"{name}_test.safetensors"  # type: ignore[operator]
        return cached_arrays(cache, config, compute)

    def validation(self, name: str) -> dict[str, float]:
        """The validation figures the manifest keeps for ``name`` (a rerun should match them).

        Fast-type models: validation R@1 after the last epoch (from the training history);
        Slow-type models: R@1 of :data:`SLOW_VAL_QUERIES` validation queries against the whole
        validation gallery. Both also give the final training loss.
        """
        spec = REGISTRY[name]
        model, history, _ = self.get(name)
        out = {"final_loss": round(float(history["final_loss"]), 4)}
        if spec.kind == "fast":
            out["val_R@1"] = round(float(history["val_R@1"][-1]), 2)
            return out
        split = self.clips.val if spec.clips else self.world.val  # type: ignore[union-attr]
        tok = self.clips.tokenizer() if spec.clips else self.tokenizer
        val = RetrievalProtocol.from_split(split)
        val = val.restrict(val.query_subset(min(SLOW_VAL_QUERIES, len(val.queries)), seed=0))
        scores = slow_scores(model, tok, val.queries, val.gallery, device=self.device,
                             max_len=self.budgets.slow_train.max_len)
        out[f"val_R@1_{len(val.queries)}q"] = round(retrieval_report(scores, val)["R@1"], 2)
        return out


def release_model(name: str, preset: Preset | None = None, *,
                  device: torch.device | str | None = None, world: World | None = None,
                  ) -> tuple[torch.nn.Module, dict, dict | None]:
    """Release model ``name`` for a notebook: ``(model, history, manifest entry)``.

    Loaded from ``data/release/NAME`` after checking its files against the manifest; with
    ``FASTSLOW_TRAIN=full``, trained at the release budget instead (the entry is then None).
    """
    rel = Releases(preset or get_preset(), as_device(device), world=world)
    model, history, _ = rel.get(name)
    entry = manifest(rel.root)["models"].get(name) if rel.mode == "release" else None  # type: ignore[arg-type]
    return model, history, entry


def release_test_scores(name: str = "slow", preset: Preset | None = None, *,
                        device: torch.device | str | None = None, world: World | None = None,
                        ) -> tuple[dict[str, np.ndarray], bool]:
    """:meth:`Releases.test_scores` in one call, for a notebook: ``(arrays, loaded)``."""
    return Releases(preset or get_preset(), as_device(device), world=world).test_scores(name)


def as_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a ``torch.device`` (None: the best one, cuda -> mps -> cpu)."""
    if isinstance(device, torch.device):
        return device
    return pick_device(device)


def git_commit() -> str:
    """The library's commit (12 hex digits; ``+changes`` when fastslow_lib/ differs from it)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo_root(),
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fastslow_lib"],
                               cwd=repo_root(), capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out + ("+changes" if dirty else "")


def library_diff_hash() -> str | None:
    """sha256 (16 hex digits) of fastslow_lib/'s uncommitted changes against HEAD (the diff
    and every untracked file's name and bytes); ``None`` where the library is committed."""
    root = repo_root()

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args, "--", "fastslow_lib"], cwd=root,
                              capture_output=True, check=True).stdout

    try:
        diff = git("diff", "HEAD", "--binary")
        untracked = git("ls-files", "--others", "--exclude-standard").decode().split()
    except (OSError, subprocess.CalledProcessError):
        return None
    if not diff and not untracked:
        return None
    h = hashlib.sha256(diff)
    for name in sorted(untracked):
        h.update(name.encode() + b"\0" + (root / name).read_bytes())
    return h.hexdigest()[:16]


def _entry(rel: Releases, name: str, seconds: float | None) -> dict[str, Any]:
    spec = REGISTRY[name]
    folder = rel.folder(name)
    meta = read_metadata(folder)
    _, history, _ = rel.get(name)
    train = meta["config"]["train"]
    return {
        "what": spec.what,
        "notebook": spec.notebook,
        "class": meta["model_class"],
        "parents": {p: sha256_file(rel.folder(p) / WEIGHTS_NAME) for p in spec.parents},
        "key": meta["config"],
        "budget": {"epochs": train["epochs"], "batch_size": train["batch_size"],
                   "steps": history["steps"], "pairs_seen": history["steps"] * train["batch_size"],
                   "seed": train["seed"]},
        "training_seconds": round(float(seconds if seconds is not None else history["seconds"]),
                                  1),
        "teacher_seconds": (round(history["teacher_seconds"], 1)
                            if history.get("teacher_seconds") is not None else None),
        "device": describe_device(rel.device),
        "machine": machine_name(),
        "commit": git_commit(),
        **({"diff_sha256": diff} if (diff := library_diff_hash()) else {}),
        "torch": torch.__version__,
        "date": dt.date.today().isoformat(),
        "validation": rel.validation(name),
        "sha256": {f: sha256_file(folder / f) for f in FILES},
    }


def write_manifest(root: Path, data: dict[str, Any]) -> None:
    """Write ``root``'s manifest atomically (models in :data:`REGISTRY` order, total size).

    The total counts the weights on disk: an entry whose folder was removed (to have
    :func:`reproduce` train it again) stays until that model is trained, and adds nothing."""
    path = root / MANIFEST_NAME
    models = {n: data["models"][n] for n in REGISTRY if n in data["models"]}
    total = sum(f.stat().st_size for n in models if (f := root / n / WEIGHTS_NAME).is_file())
    text = json.dumps({**data, "models": models, "total_weight_bytes": total}, indent=1)
    write_atomic(path, text + "\n")


def reproduce(names: Iterable[str] | None = None, preset: Preset | None = None, *,
              device: torch.device | str | None = None, root: str | Path | None = None,
              log: Callable[[str], None] = print, allow_dirty: bool = False) -> dict[str, Any]:
    """Train every release model (or ``names``) at full budget into the release folder.

    A model whose folder matches its config and parents is kept (resuming across sittings);
    the manifest is rewritten after each model. Returns the manifest.

    Every entry names the library's commit. With uncommitted changes in ``fastslow_lib/`` it
    refuses to start (the code that trained a release model must be in the history), unless
    ``allow_dirty``: the entry then says ``+changes`` and records the changes' hash
    (``diff_sha256``, :func:`library_diff_hash`).
    """
    if not allow_dirty and git_commit().endswith("+changes"):
        raise RuntimeError(
            "fastslow_lib/ has uncommitted changes (git status -- fastslow_lib): a release "
            "model is stamped with the commit that trained it, so commit them first (or pass "
            "--allow-dirty to record the changes' hash beside the commit)")
    preset = preset or get_preset()
    wanted = list(REGISTRY) if names is None else list(names)
    unknown = sorted(set(wanted) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown release models {unknown}; expected some of {sorted(REGISTRY)}")
    rel = Releases(preset, as_device(device), mode="full",
                   root=Path(root) if root is not None else release_dir(preset))
    rel.root.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    data = manifest(rel.root)  # type: ignore[arg-type]
    data.update({"preset": preset.name, "budgets": rel.budgets.to_dict(),
                 "world": preset.world.key()})
    log(f"release models of preset {preset.name!r} in {show_path(rel.root)} "  # type: ignore[arg-type]
        f"on {describe_device(rel.device)} ({machine_name()})")
    for name in wanted:
        start = time.perf_counter()
        _, history, loaded = rel.get(name)
        old = data["models"].get(name)
        keep = loaded and old is not None and _files_match(rel.root, name)  # type: ignore[arg-type]
        if not keep:
            data["models"][name] = _entry(rel, name, None if loaded else history["seconds"])
            write_manifest(rel.root, data)  # type: ignore[arg-type]
        entry = data["models"][name]
        log(f"{name:24s} {'kept' if keep else ('loaded' if loaded else 'trained')} in "
            f"{time.perf_counter() - start:6.0f} s; training {entry['training_seconds']:.0f} s; "
            f"validation {entry['validation']}")
    for name in ("slow", "video_slow"):  # the notebooks' kept scores follow their model
        if name in wanted:
            _, loaded = rel.test_scores(name)
            log(f"{name + ' test scores':24s} {'kept' if loaded else 'computed'}")
    write_manifest(rel.root, data)  # type: ignore[arg-type]
    return data


def _files_match(root: Path, name: str) -> bool:
    try:
        verify_release(name, root)
    except (FileNotFoundError, ValueError):
        return False
    return True

