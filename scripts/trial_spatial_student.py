#!/usr/bin/env python3
"""A student that keeps places: does Slow's teacher help a Fast whose image vector keeps where?

Every student of notebook 03 averages its last feature map into one vector, and every one stays
at chance on the probe's position swaps. Here the vision tower **flattens** the map instead
(``vision_kwargs["global_pool"] = "flatten"``: 2 x 2 cells x 128 channels at 64 pixels), so its
vector can say which feature is where. Two models of that architecture, with plain Fast's data,
seed and release budget:

* ``spatial``: InfoNCE alone, the baseline;
* ``spatial_distilled``: plus signal (a), exactly as the release ``fast_distilled`` (the same
  look-alike groups, mined by the release Fast, and the same cached teacher scores of the
  release Slow).

Both are trained at each of ``--seeds`` (the seed of the budget: initialisation, batches, and
the look-alike groups, so the teacher scores its captions again for a new seed), scored like
notebook 03's students (all 5,000 test captions, the probe) and compared with each other and with
the release Fast, paired over the same queries; written to ``results/spatial_student.json``,
which notebook 03 reads. The checkpoints go to ``checkpoints/spatial_student/seed-N/`` (keyed
like every model, so a rerun loads them).

    python scripts/trial_spatial_student.py [--preset cpu] [--threads 2] [--seeds 0 1]

About 15 minutes per seed on 2 cores (two students at Fast's release budget, and the teacher's
scores for a new seed's groups).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch

from fastslow_course.experiment import write_result
from fastslow_course.release import Releases, manifest
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import hits_at, paired_difference_interval, proportion_interval
from fastslow_lib.core.paths import repo_root
from fastslow_lib.fast.config import DEFAULT_VISION_KWARGS
from fastslow_lib.fast.evaluate import student_outcomes
from fastslow_lib.registry import Models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preset, device = get_preset(args.preset), pick_device()
    rel = Releases(preset, device, mode="release")
    world, tok, b = rel.world, rel.tokenizer, preset.release_budgets()
    vision = {**DEFAULT_VISION_KWARGS, **preset.fast_model.get("vision_kwargs", {}),
              "global_pool": "flatten"}
    spatial = replace(preset, fast_model={**preset.fast_model, "vision_kwargs": vision})
    fast = rel.get("fast").model
    released = manifest(rel.root)["models"]
    max_len = b.fast_train.max_len
    results: dict[str, dict] = {
        "fast": student_outcomes(fast.eval(), tok, world, max_len=max_len, device=device)}
    results["fast"]["sha256"] = released["fast"]["sha256"]["model.safetensors"]
    for seed in args.seeds:
        sb = b.with_seed(seed)
        out = repo_root() / "checkpoints" / "spatial_student" / f"seed-{seed}"
        models, history = {}, {}
        # The registry's recipes with the spatial towers: plain in out/fast, and the student
        # of the release Fast and Slow in out/fast_distilled (the release teacher's scores are
        # reused at the release seed).
        cache = rel.cache_dir if seed == b.fast_train.seed else out
        store = Models(spatial, device, out, world=world, budgets=sb, parents=rel,
                       cache_dir=cache)
        models["spatial"], history["spatial"], _ = Models(spatial, device, out, world=world,
                                                          budgets=sb).get("fast")
        models["spatial_distilled"], history["spatial_distilled"], _ = store.get(
            "fast_distilled")
        for name, model in models.items():
            row = student_outcomes(model.eval(), tok, world, max_len=max_len, device=device)
            h = history[name]
            row.update({"val_R@1_per_epoch": [round(v, 2) for v in h["val_R@1"]],
                        "train_seconds": round(float(h["seconds"]), 1)})
            results[f"{name}_seed{seed}"] = row
    hits = {}
    for name, row in results.items():
        hits[name] = hits_at(np.array(row["test_ranks"]), 1)
        print(f"{name:24s} test R@1 {proportion_interval(hits[name])}  probe position "
              f"{proportion_interval(row['probe_position'])}")
    for seed in args.seeds:
        a, c = f"spatial_distilled_seed{seed}", f"spatial_seed{seed}"
        teacher = paired_difference_interval(hits[a], hits[c]).signed()
        pooling = paired_difference_interval(hits[c], hits["fast"]).signed()
        print(f"seed {seed}: distilled - plain R@1 {teacher}; plain - release Fast {pooling}")
    record = {"seeds": args.seeds, "vision_kwargs": vision, "fast_train": b.fast_train.to_dict(),
              "distill": b.distill.to_dict(), "world": world.config.key(), "results": results}
    path = write_result("spatial_student", record, preset=preset, device=device)
    print("wrote", path.relative_to(repo_root()))


if __name__ == "__main__":
    main()
