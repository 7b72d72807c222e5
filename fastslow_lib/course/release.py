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
* :func:`fastslow_lib.course.reproduce_check.check_reproduction`
  (``scripts/reproduce.py --check NAME``) retrains a model in a scratch folder, beside the
  committed one, and says whether its validation figures fall inside the 95% interval of the
  manifest's (``results/reproduce_check.json``).

Every model comes from the library's one getter for it (so one load-or-train:
:func:`fastslow_lib.core.cache.load_or_train`); a child's key holds its parents' weight hashes.
``Model.from_pretrained("data/release/NAME")`` loads a folder without any of this.

Taught in notebooks/01_fast.ipynb (section "Release models"); every later notebook uses it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_lib.config.presets import Preset, get_preset
from fastslow_lib.config.training import ReleaseBudgets
from fastslow_lib.core.cache import file_fingerprint
from fastslow_lib.core.checkpoint import (
    WEIGHTS_NAME,
    cached_arrays,
    read_metadata,
)
from fastslow_lib.core.device import describe_device, machine_name, pick_device
from fastslow_lib.core.paths import repo_root
from fastslow_lib.core.progress import progress
from fastslow_lib.course.manifest import (
    ABLATIONS,
    FILES,
    MANIFEST_NAME,
    RELEASES,
    SLOW_VAL_QUERIES,
    STUDENTS,
    TRAIN_MODES,
    ReleaseSpec,
    chosen_student,
    manifest,
    rebuild_hint,
    release_dir,
    sha256_file,
    show_path,
    train_mode,
    verify_release,
)
from fastslow_lib.data.clips import ClipWorld, load_clip_world
from fastslow_lib.data.datasets import RetrievalProtocol
from fastslow_lib.data.world import World, binding_twins, load_world
from fastslow_lib.distill import get_distilled_model, get_ranking_student, ranking_candidates
from fastslow_lib.fast.evaluate import retrieval_report
from fastslow_lib.fast.training import get_fast_model
from fastslow_lib.rerank import SlowGallery
from fastslow_lib.slow.matching import get_matching_model, mine_hard_negatives
from fastslow_lib.slow.model import SlowModel
from fastslow_lib.slow.scoring import slow_scores
from fastslow_lib.slow.training import get_slow_model
from fastslow_lib.video.training import get_video_fast_model, get_video_slow_model

__all__ = ["MANIFEST_NAME", "RELEASES", "STUDENTS", "ReleaseSpec", "Releases", "as_device",
           "chosen_student", "git_commit", "manifest", "write_manifest",
           "release_dir", "release_model", "release_test_scores", "reproduce", "train_mode",
           "verify_release"]

#: How the ITM baseline's hard negatives are mined by the release Fast (its parent ``miner``):
#: the key of ``itm`` in place of the negatives' bytes, which float rounding can reorder on
#: another CPU.
ITM_MINING: dict[str, Any] = {"by": "miner", "k": 8, "pool": 32}
#: The same for signal (b)'s candidates (:meth:`Releases.ranking_inputs`; ``negatives`` is the
#: ranking budget's).
RANKING_INPUTS: dict[str, Any] = {"by": "miner", "pool": 32}
#: The upper bound's negatives: :func:`~fastslow_lib.data.world.binding_twins` of the training
#: split with this seed (deterministic: no model involved).
TWINS: dict[str, Any] = {"by": "binding_twins", "seed": 0}


@dataclass
class Releases:
    """The release models of one preset on one device: load, train and describe them.

    ``Releases(preset)`` in a notebook; :func:`release_model` is the one-call form. ``mode``
    is ``release`` (load only) or ``full`` (train at the release budget when missing).
    """

    preset: Preset = field(default_factory=get_preset)
    device: torch.device = field(default_factory=pick_device)
    mode: str = field(default_factory=train_mode)
    root: Path | None = None
    world: World | None = None
    #: Model name -> a training seed other than its budget's (the same recipe at another seed:
    #: :func:`~fastslow_lib.course.reproduce_check.check_reproduction`'s ``seeds``).
    seeds: Mapping[str, int] = field(default_factory=dict)
    _models: dict[str, tuple[torch.nn.Module, dict, bool]] = field(default_factory=dict)
    _inputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in TRAIN_MODES:
            raise ValueError(f"mode must be one of {TRAIN_MODES}, got {self.mode!r}")
        unknown = sorted(set(self.seeds) - set(RELEASES))
        if unknown:
            raise ValueError(f"seeds name unknown release models {unknown}; expected some of "
                             f"{sorted(RELEASES)}")
        self.root = Path(self.root) if self.root is not None else release_dir(self.preset,
                                                                               self.mode)
        if self.world is None:
            self.world = load_world(self.preset.world)

    @property
    def budgets(self) -> ReleaseBudgets:
        """The release budgets of the preset."""
        return self.preset.release_budgets()

    @cached_property
    def tokenizer(self):
        """The image world's tokenizer."""
        return self.world.tokenizer()  # type: ignore[union-attr]

    @cached_property
    def clips(self) -> ClipWorld:
        """The clip world of notebook 05 (loaded when a video model is asked for)."""
        return load_clip_world(self.preset.clips)

    def folder(self, name: str) -> Path:
        """The model folder of release model ``name``."""
        return self.root / name  # type: ignore[operator]

    def get(self, name: str) -> tuple[torch.nn.Module, dict, bool]:
        """``(model, history, loaded)`` of release model ``name`` (see the module docstring)."""
        if name not in RELEASES:
            raise ValueError(f"unknown release model {name!r}; expected one of {sorted(RELEASES)}")
        if name not in self._models:
            may_train = self.mode == "full"
            if not may_train:
                verify_release(name, self.root)  # type: ignore[arg-type]
            for parent in RELEASES[name].parents:
                self.get(parent)
            self._models[name] = self._load_or_train(name, may_train)
        return self._models[name]

    def _load_or_train(self, name: str, may_train: bool) -> tuple[torch.nn.Module, dict, bool]:
        p, b = self.preset, self.budgets
        if name in self.seeds:
            b = b.with_seed(self.seeds[name])
        kw = {"device": self.device, "may_train": may_train,
              "rebuild_hint": rebuild_hint(name, self.root)}  # type: ignore[arg-type]
        world, tok, out = self.world, self.tokenizer, self.folder(name)
        if name == "fast":
            return get_fast_model(world, tok, p.fast_model, b.fast_train, out, **kw)
        if name == "slow":
            return get_slow_model(world, tok, p.slow_model, b.slow_train, out, **kw)
        if name in ABLATIONS:
            return get_slow_model(world, tok, {**p.slow_model, **ABLATIONS[name]}, b.slow_train,
                                  out, **kw)
        if name == "itm":
            return get_matching_model(world, tok, p.slow_model, b.itm_train, out,
                                      self.itm_negatives,
                                      init_from=self.folder("slow_forward_only"),
                                      parents={"miner": self.folder("fast")},
                                      negatives_key=ITM_MINING, **kw)
        if name == "fast_distilled":
            fast, slow = self.get("fast")[0], self.get("slow")[0]
            cache = repo_root() / "checkpoints" / "release-cache"
            paths = {"fast": self.folder("fast"), "slow": self.folder("slow"), "student": out,
                     "teacher_scores": cache / f"teacher_scores_{p.name}.safetensors"}
            model, info, loaded = get_distilled_model(
                world, tok, p, fast, slow, cache, train_cfg=b.fast_train, distill_cfg=b.distill,
                paths=paths, **kw)  # type: ignore[arg-type]
            return model, {**info["history"], "teacher_seconds": info.get("teacher_seconds")}, \
                loaded
        if name in ("fast_ranked", "fast_hard_negatives"):
            teacher = name == "fast_ranked"
            cfg = replace(b.ranking, teacher=teacher)
            parents = {"miner": self.folder("fast"), **({"teacher": self.folder("slow")}
                                                        if teacher else {})}
            inputs = {"candidates": {**RANKING_INPUTS, "negatives": cfg.negatives},
                      "teacher_scores": {"by": "teacher"} if teacher else None}
            return get_ranking_student(world, tok, p.fast_model, b.fast_train, cfg, out,
                                       lambda: self.ranking_inputs()[0],
                                       (lambda: self.ranking_inputs()[1]) if teacher else None,
                                       parents=parents, inputs_key=inputs, **kw)
        if name == "fast_binding_twins":
            return get_ranking_student(
                world, tok, p.fast_model, b.fast_train, b.twins, out,
                lambda: self.twin_candidates()[0], None, parents={},
                inputs_key={"candidates": TWINS, "teacher_scores": None,
                            "candidate_images": TWINS},
                images=lambda: self.twin_candidates()[1], **kw)
        if name.startswith("video_fast_"):
            return get_video_fast_model(self.clips, self.clips.tokenizer(), b.video, out,
                                        temporal=name.removeprefix("video_fast_"),
                                        init_from=self.folder("fast"), **kw)
        if name == "video_slow":
            return get_video_slow_model(self.clips, self.clips.tokenizer(), b.video, out,
                                        init_from=self.folder("slow"), **kw)
        raise AssertionError(name)

    def itm_negatives(self) -> np.ndarray:
        """Each training caption's hard negatives, mined by the release Fast model
        (:data:`ITM_MINING`)."""
        fast = self.get("fast")[0]
        return mine_hard_negatives(fast, self.tokenizer, self.world.train,  # type: ignore[union-attr]
                                   k=ITM_MINING["k"], pool=ITM_MINING["pool"],
                                   max_len=self.budgets.fast_train.max_len, device=self.device)

    def twin_candidates(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """The upper bound's inputs: ``(candidates, twin images, stats)``.

        ``candidates[c] = (own image, index of the caption's twin in the twin images or -1)``
        (:func:`fastslow_lib.data.world.binding_twins`, seed ``TWINS["seed"]``); ``stats``
        counts them (how many captions have a twin; twins per swap kind). Made once per
        ``Releases`` (about a minute: the twins are rendered).
        """
        if "twins" not in self._inputs:
            split = self.world.train  # type: ignore[union-attr]
            images, twin_of, kinds, _ = binding_twins(split, seed=TWINS["seed"])
            cand = np.stack([split.caption_image.astype(np.int64), twin_of], axis=1)
            stats = {"twin_images": int(len(images)),
                     "captions_with_a_twin": int((twin_of >= 0).sum()),
                     "captions": int(len(twin_of)),
                     "twins_by_kind": {k: kinds.count(k) for k in sorted(set(kinds))}}
            self._inputs["twins"] = (cand, images, stats)
        return self._inputs["twins"]

    def ranking_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """Signal (b)'s candidates (each training caption's image, then its hard negatives by
        the release Fast) and the release Slow's scores of them, cached under
        ``checkpoints/release-cache`` keyed on both models' weights."""
        b, world = self.budgets, self.world
        cache = repo_root() / "checkpoints" / "release-cache" / \
            f"ranking_teacher_{self.preset.name}.safetensors"
        config = {"miner": file_fingerprint(self.folder("fast")),
                  "teacher": file_fingerprint(self.folder("slow")),
                  "negatives": b.ranking.negatives, "world": world.config.key()}  # type: ignore[union-attr]

        def compute() -> dict[str, np.ndarray]:
            fast, slow = self.get("fast")[0], self.get("slow")[0]
            split, max_len = world.train, b.fast_train.max_len  # type: ignore[union-attr]
            cand = ranking_candidates(fast, self.tokenizer, split, negatives=b.ranking.negatives,
                                      pool=RANKING_INPUTS["pool"],
                                      max_len=max_len, device=self.device)
            gallery = SlowGallery(slow, split.images, device=self.device)
            scores = np.zeros(cand.shape, dtype=np.float32)
            for s in progress(range(0, len(cand), 512), desc="teacher scores of candidates"):
                texts = list(split.captions[s : s + 512])
                scores[s : s + 512] = gallery.candidate_scores(self.tokenizer, texts,
                                                               cand[s : s + 512], max_len=max_len)
            return {"candidates": cand, "scores": scores}

        arrays, _ = cached_arrays(cache, config, compute)
        return arrays["candidates"], arrays["scores"]

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
        spec = RELEASES[name]
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
        spec = RELEASES[name]
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


def _entry(rel: Releases, name: str, seconds: float | None) -> dict[str, Any]:
    spec = RELEASES[name]
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
        "torch": torch.__version__,
        "date": dt.date.today().isoformat(),
        "validation": rel.validation(name),
        "sha256": {f: sha256_file(folder / f) for f in FILES},
    }


def write_manifest(root: Path, data: dict[str, Any]) -> None:
    """Write ``root``'s manifest atomically (models in :data:`RELEASES` order, total size)."""
    path = root / MANIFEST_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    models = {n: data["models"][n] for n in RELEASES if n in data["models"]}
    total = sum((root / n / WEIGHTS_NAME).stat().st_size for n in models)
    text = json.dumps({**data, "models": models, "total_weight_bytes": total}, indent=1)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def reproduce(names: Iterable[str] | None = None, preset: Preset | None = None, *,
              device: torch.device | str | None = None, root: str | Path | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train every release model (or ``names``) at full budget into the release folder.

    A model whose folder matches its config and parents is kept (resuming across sittings);
    the manifest is rewritten after each model. Returns the manifest.
    """
    preset = preset or get_preset()
    wanted = list(RELEASES) if names is None else list(names)
    unknown = sorted(set(wanted) - set(RELEASES))
    if unknown:
        raise ValueError(f"unknown release models {unknown}; expected some of {sorted(RELEASES)}")
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

