#!/usr/bin/env python3
"""Train the release models at full budget (`make reproduce`): resumable, one model at a time.

Every release model of the preset (default ``cpu``: the committed ``data/release/``) is trained
from scratch, parents before children, unless its folder already matches its config and
parents; ``data/release/MANIFEST.json`` is rewritten after each model, so an interrupted run
resumes where it stopped. Progress bars show each model's training.

    python scripts/reproduce.py                 # every release model
    python scripts/reproduce.py --only fast     # one (its parents are loaded or trained first)
    python scripts/reproduce.py --list          # what there is, and what the manifest says
    python scripts/reproduce.py --check fast    # retrain beside the committed one, compare
    python scripts/reproduce.py --check fast --seeds 1 2   # ... and at two other seeds
    python scripts/reproduce.py --caption-detail 0.6 --compact  # store that world in float16

After the models, the kept results that depend on them are refreshed when they no longer match
the manifest: ``results/test5k.json`` (the 5K protocol, ``scripts/test5k.py``; resumable, its
scores cached by the weights they came from). ``--no-results`` skips that step.

``--check`` leaves data/release/ alone: the model is retrained under checkpoints/reproduce-check/
(its parents copied from the committed ones) and its validation figures are compared with the
manifest's 95% intervals; results/reproduce_check.json keeps the outcome. ``--seeds`` retrains
the same recipe at other seeds as well and keeps their figures beside it: the tolerance counts
the validation queries' sampling noise only, and a model whose figures move more than that
from seed to seed shows it there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from fastslow_course.compact import compact_release
from fastslow_course.release import (
    Releases,
    as_device,
    manifest,
    release_dir,
    reproduce,
)
from fastslow_course.reproduce_check import check_reproduction
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.seed import seed_everything
from fastslow_lib.registry import REGISTRY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None, help="preset (default: $FASTSLOW_PRESET or cpu)")
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(REGISTRY),
                        metavar="NAME", help=f"models to (re)build, of {sorted(REGISTRY)}")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--list", action="store_true", help="list the release models and exit")
    parser.add_argument("--check", nargs="+", default=None, choices=sorted(REGISTRY),
                        metavar="NAME", help="retrain NAME in a scratch folder and compare its "
                        "validation figures with the manifest's")
    parser.add_argument("--seeds", nargs="+", type=int, default=(), metavar="SEED",
                        help="with --check: retrain at these other seeds too and record their "
                        "figures (the seed-to-seed spread beside the tolerance)")
    parser.add_argument("--caption-detail", type=float, default=None, metavar="D",
                        help="the release models of the world whose captions say D of their "
                        "scene (0 < D < 1; their own folder, data/release/captions-<100 D>)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="train although fastslow_lib/ has uncommitted changes (the "
                        "manifest records their hash beside the commit)")
    parser.add_argument("--compact", action="store_true",
                        help="train nothing: store the world's release models (or --only's) "
                        "in float16, validation measured again as stored (fastslow_course."
                        "compact: the caption-detail worlds, for the size budget)")
    parser.add_argument("--no-results", action="store_true",
                        help="do not refresh the kept results files (results/test5k.json)")
    args = parser.parse_args(argv)
    if args.seeds and not args.check:
        parser.error("--seeds needs --check NAME")
    preset = get_preset(args.preset)
    if args.caption_detail is not None:
        if not 0 < args.caption_detail < 1:
            parser.error(f"--caption-detail must be in (0, 1), got {args.caption_detail}")
        preset = preset.with_caption_detail(args.caption_detail)
    if args.list:
        models = manifest(release_dir(preset))["models"]
        for name, spec in REGISTRY.items():
            e = models.get(name)
            state = (f"{e['training_seconds']:.0f} s on {e['machine']}; {e['validation']}"
                     if e else "not built")
            print(f"{name:24s} {spec.what} ({spec.notebook}): {state}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(0)
    start = time.perf_counter()
    if args.check:
        records = [check_reproduction(name, preset, device=args.device, seeds=args.seeds)
                   for name in args.check]
        print(f"done in {time.perf_counter() - start:.0f} s")
        return 0 if all(r["within"] for r in records) else 1
    if args.compact:
        rel = Releases(preset, as_device(args.device), mode="release", root=release_dir(preset))
        compact_release(args.only or list(manifest(rel.root)["models"]), rel)
        print(f"done in {time.perf_counter() - start:.0f} s")
        return 0
    reproduce(args.only or None, preset, device=args.device, allow_dirty=args.allow_dirty)
    if not args.no_results and preset.world.caption_detail >= 1:
        refresh_kept_results(preset, args.threads)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


def refresh_kept_results(preset, threads: int | None) -> None:
    """Rerun ``scripts/test5k.py`` when ``results/test5k.json`` does not match the release
    models (or is missing); it resumes from its cached scores."""
    from fastslow_course.test5k import Kept5K

    try:
        Kept5K.load(preset)
        print("results/test5k.json matches the release models: kept")
        return
    except (FileNotFoundError, ValueError, KeyError) as why:
        print(f"results/test5k.json: {why}")
    command = [sys.executable, str(Path(__file__).with_name("test5k.py")), "--preset", preset.name]
    if threads:
        command += ["--threads", str(threads)]
    subprocess.run(command, check=True)


if __name__ == "__main__":
    sys.exit(main())
