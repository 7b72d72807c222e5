#!/usr/bin/env python3
"""Slow teaches a converged Fast: every student starts from the release Fast's weights.

Notebook 03's students each train from scratch with plain Fast's budget, so the teacher's term
competes with InfoNCE from the first step, and the look-alike batches change half of every batch
throughout. The paper, and the literature the issue cites (LoopITR, CPRD), add the teacher to a
dual encoder that has already learned. Here every arm starts from the **release Fast** (trained
until its validation R@1 flattened) and trains ``--epochs`` more epochs at ``--lr`` (a linear
warm-up, then cosine decay, the one loop), with InfoNCE on the true pairs in every arm:

* ``continued``: InfoNCE alone, random batches: the baseline at equal budget;
* ``continued_groups``: look-alike batches from the first epoch, no teacher (signal (a)'s control);
* ``continued_a``: the same batches plus signal (a), the KL to the release Slow's softmax over each
  caption's group (the release student's weight and temperature);
* ``continued_hard``: random batches plus each caption's Fast-mined hard negatives with a hard
  label (signal (b)'s control);
* ``continued_b``: the same candidates, the teacher's softmax over them (signal (b));
* ``continued_a_soft``, ``continued_b_soft``: signals (a) and (b) with the teacher's targets
  softened (``SOFT_TAU``), so that they say more than the controls' hard labels.

The groups are the release student's (mined by the release Fast); the teacher scores the
captions these epochs show once (cached beside the checkpoints); signal (b)'s candidates and
scores are the release ones. Each model is scored like notebook 03's students (all 5,000 test
captions, the probe) and compared with ``continued``, paired over the same queries:
``results/warm_student.json``. Checkpoints: ``checkpoints/warm_student/seed-N/ARM`` (keyed on the
budget, the arm and the parents' weights, so a rerun loads them).

    python scripts/trial_warm_student.py [--preset cpu] [--threads 2] [--seeds 0 1] [--epochs 6]

About 25 minutes per seed on 2 cores (seven students of six epochs, and the teacher's scores of
the captions those epochs show).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_course.experiment import write_result
from fastslow_course.release import Releases, manifest
from fastslow_lib.config.presets import get_preset
from fastslow_lib.config.training import DistillConfig, FastTrainConfig
from fastslow_lib.core.cache import Recipe, load_or_train, training_key
from fastslow_lib.core.checkpoint import WEIGHTS_NAME
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import hits_at, paired_difference_interval, proportion_interval
from fastslow_lib.core.paths import repo_root
from fastslow_lib.distill.groups import (
    GroupBatchSampler,
    distillation_extra_loss,
    get_teacher_scores,
    make_groups,
)
from fastslow_lib.distill.ranking import ranking_extra_loss
from fastslow_lib.fast.evaluate import student_outcomes
from fastslow_lib.fast.training import build_dual_encoder, train_fast

#: The arms: look-alike batches?, signal (a)'s weight, signal (b) (None, "hard", "teacher").
ARMS: dict[str, dict[str, Any]] = {
    "continued": {"groups": False, "a_weight": 0.0, "b": None},
    "continued_groups": {"groups": True, "a_weight": 0.0, "b": None},
    "continued_a": {"groups": True, "a_weight": 1.0, "b": None},
    "continued_hard": {"groups": False, "a_weight": 0.0, "b": "hard"},
    "continued_b": {"groups": False, "a_weight": 0.0, "b": "teacher"},
    # The same two signals with the teacher's targets softened (SOFT_TAU instead of the release
    # temperature): at the release temperature they are nearly one-hot, i.e. nearly the controls.
    "continued_a_soft": {"groups": True, "a_weight": 1.0, "b": None, "tau": "soft"},
    "continued_b_soft": {"groups": False, "a_weight": 0.0, "b": "teacher", "tau": "soft"},
}

#: The softened arms' temperature: where the mean entropy of the teacher's target over a
#: look-alike group reaches half of uniform's (notebook 03, section 3, prints it: the release
#: Slow's scores of training captions, never the test). The release temperature (2) leaves the
#: average target at a top probability above 0.95.
SOFT_TAU = 25.0


def continued_student(
    rel: Releases, arm: str, cfg: FastTrainConfig, dcfg: DistillConfig, groups: np.ndarray,
    teacher: np.ndarray | None, ranking: tuple[np.ndarray, np.ndarray],
    parents: dict[str, Path], checkpoint: Path, device,
) -> tuple[torch.nn.Module, dict]:
    """Arm ``arm``: the release Fast trained ``cfg.epochs`` more epochs; loaded when it matches."""
    spec, world = ARMS[arm], rel.world
    fast = rel.get("fast")[0]
    rcfg = replace(rel.preset.release_budgets().ranking, teacher=spec["b"] == "teacher")
    if spec.get("tau") == "soft":
        dcfg, rcfg = replace(dcfg, tau=SOFT_TAU), replace(rcfg, tau=SOFT_TAU)

    def build(saved: dict) -> torch.nn.Module:
        model = build_dual_encoder(saved)
        model.load_state_dict(fast.state_dict())   # the warm start
        return model

    def train(model: torch.nn.Module) -> dict:
        sampler = extra = None
        if spec["groups"]:
            sampler = GroupBatchSampler(groups, cfg.batch_size, n_images=len(world.train),
                                        group_share=dcfg.group_share, start_epoch=0,
                                        seed=cfg.seed)
            if spec["a_weight"] > 0:
                extra = distillation_extra_loss(teacher, sampler, weight=spec["a_weight"],
                                                tau=dcfg.tau)
        if spec["b"] is not None:
            extra = ranking_extra_loss(world.train, ranking[0],
                                       ranking[1] if rcfg.teacher else None, rcfg)
        return {"history": train_fast(model, world, rel.tokenizer, cfg, device=device,
                                      extra_loss=extra, batch_sampler=sampler,
                                      desc=f"{arm}, seed {cfg.seed}")}

    key = {**training_key(fast.config.to_dict(), cfg, world.config.key()), "arm": spec,
           "distill": dcfg.to_dict(), "ranking": rcfg.to_dict()}
    model, history, _ = load_or_train(checkpoint, Recipe(key, build, train, parents),
                                      device=device)
    return model, history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preset, device = get_preset(args.preset), pick_device()
    rel = Releases(preset, device, mode="release")
    world, tok, b = rel.world, rel.tokenizer, preset.release_budgets()
    fast, slow = rel.get("fast")[0], rel.get("slow")[0]
    released = manifest(rel.root)["models"]
    max_len = b.fast_train.max_len
    results: dict[str, dict] = {
        "fast": student_outcomes(fast.eval(), tok, world, max_len=max_len, device=device)}
    results["fast"]["sha256"] = released["fast"]["sha256"]["model.safetensors"]
    candidates, ranking_scores = rel.ranking_inputs()
    parents = {"init": rel.folder("fast") / WEIGHTS_NAME,
               "teacher": rel.folder("slow") / WEIGHTS_NAME}
    for seed in args.seeds:
        cfg = replace(b.fast_train, epochs=args.epochs, lr=args.lr, seed=seed)
        dcfg = replace(b.distill, start_epoch=0)
        out = repo_root() / "checkpoints" / "warm_student" / f"seed-{seed}"
        groups = make_groups(dcfg, fast, world.train, seed=seed, device=device)
        teacher = None
        for arm in args.arms:
            spec = ARMS[arm]
            if spec["a_weight"] > 0 and teacher is None:
                teacher, _ = get_teacher_scores(world, tok, slow, parents["teacher"], groups, cfg,
                                                out / f"teacher_scores_{preset.name}.safetensors",
                                                device=device)

            model, history = continued_student(
                rel, arm, cfg, dcfg, groups, teacher, (candidates, ranking_scores), parents,
                out / arm, device)
            row = student_outcomes(model.eval(), tok, world, max_len=max_len, device=device)
            row.update({"val_R@1_per_epoch": [round(v, 2) for v in history["val_R@1"]],
                        "train_seconds": round(float(history["seconds"]), 1)})
            results[f"{arm}_seed{seed}"] = row
            print(f"{arm} seed {seed}: val R@1 {row['val_R@1_per_epoch']}", flush=True)
    hits = {name: hits_at(np.array(row["test_ranks"]), 1) for name, row in results.items()}
    for name, row in results.items():
        print(f"{name:24s} test R@1 {proportion_interval(hits[name])}  probe "
              f"{proportion_interval(row['probe'])}  position "
              f"{proportion_interval(row['probe_position'])}")
    for seed in args.seeds:
        base = f"continued_seed{seed}"
        for arm in args.arms:
            name = f"{arm}_seed{seed}"
            if base in hits and name != base:
                print(f"seed {seed}: {arm} - continued, test R@1 "
                      f"{paired_difference_interval(hits[name], hits[base]).signed()}")
        if base in hits:
            print(f"seed {seed}: continued - release Fast "
                  f"{paired_difference_interval(hits[base], hits['fast']).signed()}")
    record = {"seeds": args.seeds,
              "arms": {a: ARMS[a] for a in args.arms}, "epochs": args.epochs, "lr": args.lr,
              "distill": replace(b.distill, start_epoch=0).to_dict(), "soft_tau": SOFT_TAU,
              "ranking": b.ranking.to_dict(), "world": world.config.key(), "results": results}
    path = write_result("warm_student", record, preset=preset, device=device)
    print("wrote", path.relative_to(repo_root()))


if __name__ == "__main__":
    main()
