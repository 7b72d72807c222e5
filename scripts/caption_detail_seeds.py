#!/usr/bin/env python3
"""The caption-detail curve at other seeds (results/caption_detail_seeds.json).

``scripts/caption_detail.py`` measures each world's release models, trained at the release
seed. Where a student's gain over Fast is near the course's target or near zero, one seed
cannot tell a gain of the recipe from a lucky run. This script retrains, for the worlds named
(default: caption detail 0.8, the best regime of the release seed), the recipe's other runs:

* each teacher's student and its control without a teacher (``fast_distilled``,
  ``fast_lookalike_batches``) at each seed, their parents the world's release Fast and Slow
  (``checkpoints/caption-detail-seeds/<world>/seed-N/``);
* Fast itself at each seed (``.../fast-seed-N/``), so that the students of seed N are compared
  with the Fast of seed N as well as with the release Fast;

and measures every model on every query of both protocols (R@1 against the labelled image,
consistent@1), writing per seed the paired intervals of student minus Fast and student minus
its control. The release seed's figures are measured the same way beside them.

Resumable: trained models are reused (their folders are keyed by recipe, seed and parents), the
outcomes cached under the same folder, keyed by the weights. Each model trains at the release
budget (minutes on 2 cores; its training.json records the seconds).

    python scripts/caption_detail_seeds.py [--details 0.8] [--seeds 1 2] [--models ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fastslow_course.caption_detail import CONTROL_OF, fast_outcomes, paired
from fastslow_course.experiment import write_result
from fastslow_course.manifest import sha256_file, world_subfolder
from fastslow_course.release import Releases
from fastslow_course.reproduce_check import train_at_seed
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.cache import file_fingerprint
from fastslow_lib.core.checkpoint import WEIGHTS_NAME, cached_arrays
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import proportion_interval
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.data.protocols import load_test5k

#: Trained in this order (name outer, seed inner): the students first, Fast last.
MODELS = ("fast_distilled", "fast_lookalike_batches", "fast")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--details", nargs="+", type=float, default=[0.8])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="default: results/caption_detail_seeds.json")
    args = parser.parse_args(argv)
    for d in args.details:
        if not 0 < d < 1:
            parser.error(f"--details must be in (0, 1) (worlds whose captions leave things "
                         f"out), got {d}")
    if args.threads:
        torch.set_num_threads(args.threads)
    base, device = get_preset(args.preset), pick_device()
    worlds = [seed_runs(base.with_caption_detail(d), device, args.seeds, args.models)
              for d in args.details]
    path = write_result(args.out or "caption_detail_seeds",
                        {"seeds": args.seeds, "worlds": worlds}, preset=base, device=device)
    print("wrote", path)
    return 0


def seed_runs(preset, device, seeds: list[int], names: list[str]) -> dict:
    """One world's models at the release seed and at ``seeds``, measured on both protocols."""
    world = load_world(preset.world)
    committed = Releases(preset, device, world=world, mode="release")
    base_seed = committed.budgets.fast_train.seed
    if base_seed in seeds:
        raise ValueError(f"seeds {seeds} must not include the release seed {base_seed}")
    root = repo_root() / "checkpoints" / "caption-detail-seeds" / world_subfolder(preset)
    stores: dict[tuple[int, str], Releases] = {(base_seed, n): committed for n in MODELS}
    for name in names:  # train (or reuse) every model at every seed
        for seed in seeds:
            where = root / (f"fast-seed-{seed}" if name == "fast" else f"seed-{seed}")
            print(f"caption detail {preset.world.caption_detail:g}: {name} at seed {seed} "
                  f"in {where}", flush=True)
            stores[seed, name] = train_at_seed(name, committed, where, seed)
    protocols = {"1k": RetrievalProtocol.from_split(world.test),
                 "5k": RetrievalProtocol.from_split(load_test5k(world))}
    tok, max_len = committed.tokenizer, committed.budgets.fast_train.max_len
    outcomes: dict[tuple[str, int, str], tuple[np.ndarray, np.ndarray]] = {}
    for pname, proto in protocols.items():
        rows = np.arange(len(proto.queries))
        for (seed, n), rel in stores.items():
            out, _ = cached_arrays(
                root / "outcomes" / f"{pname}_{n}_seed{seed}.safetensors",
                {"world": world.config.key(), "protocol": pname, "max_len": max_len,
                 "queries": len(proto.queries), "weights": file_fingerprint(rel.folder(n))},
                lambda n=n, rel=rel, p=proto: fast_outcomes(rel.get(n).model.eval(), tok, p,
                                                            max_len=max_len, device=device))
            outcomes[pname, seed, n] = (out["ranks"] == 1, proto.truth[rows, out["top1"]])
    entry: dict = {"caption_detail": preset.world.caption_detail, "world": world.config.key(),
                   "release_seed": base_seed, "runs": {}}
    for seed in [base_seed, *sorted(seeds)]:
        run: dict = {"sha256": {n: sha256_file(rel.folder(n) / WEIGHTS_NAME)
                                for (s, n), rel in stores.items() if s == seed},
                     "protocols": {}}
        for pname in protocols:
            have = {n: outcomes[pname, s, n] for (p, s, n) in outcomes if p == pname and s == seed}
            release_fast = outcomes[pname, base_seed, "fast"]
            part: dict = {"models": {n: {"R@1": proportion_interval(h).to_dict(),
                                         "consistent@1": proportion_interval(c).to_dict()}
                                     for n, (h, c) in have.items()}}
            for student, control in CONTROL_OF.items():
                if student not in have:
                    continue
                part[student] = {
                    "vs_fast": _pair(have[student], have.get("fast")),
                    "vs_release_fast": _pair(have[student], release_fast),
                    "vs_control": _pair(have[student], have.get(control))}
                print(f"  seed {seed} {pname} {student}: minus Fast of its seed "
                      f"{_show(part[student]['vs_fast'])}; minus the release Fast "
                      f"{_show(part[student]['vs_release_fast'])}; minus its control "
                      f"{_show(part[student]['vs_control'])}", flush=True)
            run["protocols"][pname] = part
        entry["runs"][str(seed)] = run
    return entry


def _pair(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray] | None
          ) -> dict | None:
    """``a - b`` by the labelled image and by consistent@1 (paired intervals); None without b."""
    if b is None:
        return None
    return {"labelled": paired(a[0], b[0]), "consistent": paired(a[1], b[1])}


def _show(p: dict | None) -> str:
    if p is None:
        return "(not trained)"
    d = p["labelled"]
    return f"{d['value']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"


if __name__ == "__main__":
    raise SystemExit(main())
