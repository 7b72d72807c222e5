"""Does the release recipe reproduce? Retrain one release model and compare it with the manifest.

``scripts/reproduce.py --check NAME`` calls :func:`check_reproduction`: the model is retrained
from scratch in a scratch folder (its parents copied from the committed ones, checked against
the manifest), and its validation R@1 is compared with the manifest's. CPU training is not
bit-for-bit repeatable across machines, so a retrain is another run of the recipe, and the
tolerance is where another run should land:

* by default, inside the exact 95% interval of the committed figure over the same validation
  queries (its sampling noise, a stand-in for run-to-run differences);
* with ``--seeds`` (two or more other seeds), inside the 95% **prediction interval** of the
  recipe's runs, the committed figure and the other seeds'
  (:func:`~fastslow_lib.core.intervals.prediction_interval`): the measured seed-to-seed spread,
  wider or narrower than the sampling interval as the recipe is. Both verdicts are kept.

A larger gap means the recipe did not reproduce. The committed folder is never touched.

Taught in notebooks/01_fast.ipynb (section "Release models") beside :mod:`.release`.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_course.manifest import sha256_file, show_path, verify_release
from fastslow_course.release import Releases, as_device, git_commit, write_manifest
from fastslow_lib.config.checks import check_int
from fastslow_lib.config.presets import Preset, get_preset
from fastslow_lib.core.checkpoint import WEIGHTS_NAME, write_atomic
from fastslow_lib.core.device import describe_device, machine_name
from fastslow_lib.core.intervals import prediction_interval, proportion_interval
from fastslow_lib.core.paths import repo_root
from fastslow_lib.registry import REGISTRY

__all__ = ["check_reproduction", "train_at_seed"]


def _ancestors(name: str) -> list[str]:
    out: list[str] = []
    for parent in REGISTRY[name].parents:
        out += [a for a in _ancestors(parent) + [parent] if a not in out]
    return out


def check_reproduction(name: str, preset: Preset | None = None, *,
                       device: torch.device | str | None = None,
                       scratch: str | Path | None = None, record_to: str | Path | None = None,
                       seeds: Sequence[int] = (), log: Callable[[str], None] = print
                       ) -> dict[str, Any]:
    """Retrain release model ``name`` from scratch and compare it with the committed one.

    Its parents are the committed ones (checked against the manifest, copied into ``scratch``,
    default ``checkpoints/reproduce-check``); ``name`` itself is trained there at the release
    budget. The tolerance: each validation R@1 of the retrained model must fall inside the
    exact 95% interval of the manifest's figure over the same validation queries (run-to-run
    differences of CPU training are of that order; a larger gap means the recipe did not
    reproduce). Returns the record (also kept in ``record_to``, default
    ``results/reproduce_check.json``, beside the other models' last checks).

    ``seeds``: the same recipe retrained at each of these other seeds too (in
    ``scratch/seed-N``), their figures kept under ``seed_runs``. With two or more, each figure
    also gets the 95% prediction interval of the recipe's runs (the committed figure and the
    seeds'; ``seed_interval``), and the verdict (``within``) is decided by it instead of the
    sampling interval (``within_sampling`` keeps that one).
    """
    preset = preset or get_preset()
    if name not in REGISTRY:
        raise ValueError(f"unknown release model {name!r}; expected one of {sorted(REGISTRY)}")
    seeds = [check_int(s, "seed", minimum=0) for s in seeds]
    own_seed = _training_seed(preset, name)
    if own_seed in seeds or len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds {seeds} must be distinct and other than the committed seed "
                         f"{own_seed} of {name!r} (the check retrains that one itself)")
    committed = Releases(preset, as_device(device), mode="release")
    entry = verify_release(name, committed.root)  # type: ignore[arg-type]
    root = Path(scratch) if scratch is not None else repo_root() / "checkpoints" / \
        "reproduce-check"
    _prepare_scratch(name, committed, root)
    rel = Releases(preset, committed.device, mode="full", root=root, world=committed.world)
    log(f"retraining {name!r} in {show_path(root / name)} (parents: "
        f"{_ancestors(name) or 'none'}) on {describe_device(rel.device)} ({machine_name()})")
    start = time.perf_counter()
    _, history, _ = rel.get(name)
    seconds = time.perf_counter() - start
    figures = rel.validation(name)
    spec = REGISTRY[name]
    checks = {}
    for key, value in entry["validation"].items():
        if not key.startswith("val_R@1"):
            continue
        n = (int(key.removeprefix("val_R@1_").removesuffix("q")) if key != "val_R@1" else
             (preset.release_budgets().video.fast_train if spec.clips else
              preset.release_budgets().fast_train).val_queries)
        hits = int(round(value * n / 100))
        interval = proportion_interval(np.r_[np.ones(hits), np.zeros(n - hits)])
        checks[key] = {"committed": value, "reproduced": figures[key], "queries": n,
                       "interval": [round(interval.low, 2), round(interval.high, 2)],
                       "within": bool(interval.low <= figures[key] <= interval.high)}
    seed_runs: dict[str, dict[str, float]] = {}
    for seed in seeds:
        _prepare_scratch(name, committed, root / f"seed-{seed}")
        other = Releases(preset, committed.device, mode="full", root=root / f"seed-{seed}",
                         world=committed.world, seeds={name: seed})
        log(f"retraining {name!r} at seed {seed} in {show_path(root / f'seed-{seed}' / name)}")
        other.get(name)
        seed_runs[str(seed)] = {k: v for k, v in other.validation(name).items() if k in checks}
    for key, c in checks.items():
        c["within_sampling"] = c["within"]
        if len(seed_runs) >= 2:  # the recipe's own spread: committed + other seeds
            spread = prediction_interval([c["committed"]] + [r[key] for r in seed_runs.values()])
            c["seed_interval"] = [round(spread.low, 2), round(spread.high, 2)]
            c["within"] = bool(spread.low <= c["reproduced"] <= spread.high)
    record = {"model": name, "checks": checks, "within": all(c["within"] for c in checks.values()),
              "training_seconds": round(float(history["seconds"]), 1),
              "committed_training_seconds": entry["training_seconds"],
              "committed_machine": entry["machine"], "seconds": round(seconds, 1),
              "machine": machine_name(), "device": describe_device(rel.device),
              "commit": git_commit(), "date": dt.date.today().isoformat(),
              "sha256_equal": sha256_file(root / name / WEIGHTS_NAME) ==
              entry["sha256"][WEIGHTS_NAME], "seed": own_seed,
              # which committed weights this check was against (a retrain supersedes it)
              "committed_sha256": entry["sha256"][WEIGHTS_NAME]}
    if seeds:
        record["seed_runs"] = seed_runs
    path = Path(record_to) if record_to is not None else \
        repo_root() / "results" / "reproduce_check.json"
    old = json.loads(path.read_text()) if path.is_file() else {"checks": []}
    old["checks"] = [c for c in old["checks"] if c["model"] != name] + [record]
    write_atomic(path, json.dumps(old, indent=1) + "\n")
    for key, c in checks.items():
        log(f"{name} {key}: committed {c['committed']:g}, reproduced {c['reproduced']:g}; "
            f"95% interval of the committed {c['interval']}: "
            f"{'within' if c['within_sampling'] else 'OUTSIDE'}")
        if seeds:
            log(f"{name} {key} at seeds {', '.join(seed_runs)}: "
                f"{', '.join(f'{run[key]:g}' for run in seed_runs.values())}")
        if "seed_interval" in c:
            log(f"{name} {key}: 95% prediction interval of the recipe's runs "
                f"{c['seed_interval']}: {'within' if c['within'] else 'OUTSIDE'} (the verdict)")
    return record


def _training_seed(preset: Preset, name: str) -> int:
    """The seed release model ``name`` is trained with (every budget of a preset shares one)."""
    seeds = preset.release_budgets().seeds()
    if len(seeds) != 1:
        raise ValueError(f"the release budgets of preset {preset.name!r} use several seeds "
                         f"{seeds}; cannot tell {name!r}'s")
    return seeds[0]


def _prepare_scratch(name: str, committed: Releases, root: Path) -> None:
    """An empty ``root/name`` beside copies of its committed ancestors (checked) and a manifest."""
    if (root / name).exists():
        shutil.rmtree(root / name)
    root.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"models": {}}
    for parent in _ancestors(name):
        data["models"][parent] = verify_release(parent, committed.root)  # type: ignore[arg-type]
        if (root / parent).exists():
            shutil.rmtree(root / parent)
        shutil.copytree(committed.folder(parent), root / parent)
    write_manifest(root, data)


def train_at_seed(name: str, committed: Releases, root: Path, seed: int) -> Releases:
    """Release model ``name`` trained at ``seed`` in ``root/name``, its ancestors the committed
    ones (copied beside it, checked against ``committed``'s manifest): another run of the same
    recipe. Its recipe's inputs (the teacher's scores of its own batches) are cached in
    ``root/inputs``, apart from the release's. Resumable: a model already trained there under
    the same key is reused, a parent already copied is kept when its weights match the
    manifest. Returns the :class:`Releases` that holds it (``mode="full"``: it trains what is
    missing)."""
    seed = check_int(seed, "seed", minimum=0)
    root.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"models": {}}
    for parent in _ancestors(name):
        data["models"][parent] = entry = verify_release(parent, committed.root)  # type: ignore[arg-type]
        here = root / parent / WEIGHTS_NAME
        if not here.is_file() or sha256_file(here) != entry["sha256"][WEIGHTS_NAME]:
            if (root / parent).exists():
                shutil.rmtree(root / parent)
            shutil.copytree(committed.folder(parent), root / parent)
    write_manifest(root, data)
    rel = Releases(committed.preset, committed.device, mode="full", root=root,
                   world=committed.world, seeds={name: seed}, cache_dir=root / "inputs")
    rel.get(name)
    return rel
