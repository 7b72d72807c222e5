#!/usr/bin/env python3
"""Distillation sweep: the student under several distillation settings, at Fast's budget.

Writes ``results/distill_sweep.json``, which notebook 03 shows (and checks against the preset).
Every variant trains a Fast student from the same initialisation with the same InfoNCE budget as
notebook 01's Fast (6 epochs x 78 batches of 128), and differs only in how batches are built and
in the distillation term (:class:`fastslow_lib.distill.DistillConfig`). The preset's own setting
is trained through the registry's ``fast_distilled`` recipe
(:func:`~fastslow_lib.distill.distilled_recipe`) at the demonstration budget.

Each student is measured on all 5,000 test queries x 1,000 images, on the 200-query subset of
notebooks 02 and 04, on the probe, and on **look-alike accuracy**: for validation captions, how
often the model ranks the caption's own image first among its group of look-alike validation
images (groups built by plain Fast, as for training). Slow and plain Fast are measured the same
way, so the table shows how much of the teacher's advantage each student took.

    python scripts/distill_sweep.py [--only NAME ...]
    python scripts/distill_sweep.py --epochs 12 [--only NAME ...]

About 3.5 minutes per variant on 2 cores (plus 2 minutes per new set of teacher scores).

``--epochs N`` asks whether distillation pays once the budget is longer: plain Fast and every
student are trained from scratch for N epochs (the same N for all; the curriculum's first
group epoch scales with it, 3 of 6 becoming N / 2), the look-alike groups come from that Fast,
and the results go to ``results/distill_sweep_<N>ep.json`` (the preset's checkpoints are left
alone). Notebook 03 (section 7) and notebook 02 (section 8) read ``distill_sweep_12ep.json``.

Every run also records ``lookalike_false_negatives_%``: how many training captions are true of
another image of their look-alike group.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from fastslow_course.experiment import result_path, write_result
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.metrics import text_to_image_metrics
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.data.truth import truth_matrix
from fastslow_lib.distill import (
    GroupBatchSampler,
    distillation_extra_loss,
    get_teacher_scores,
    lookalike_groups,
    make_groups,
    teacher_scores,
)
from fastslow_lib.fast.evaluate import (
    embed_images,
    embed_texts,
    fast_pair_scorer,
    fast_scores,
    probe_accuracy,
)
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.training import train_fast
from fastslow_lib.registry import Models

#: name -> changes to the preset's DistillConfig.
VARIANTS: dict[str, dict] = {
    "look-alike batches, no teacher (w=0)": {"start_epoch": 0, "weight": 0.0},
    "look-alikes from epoch 0, w=1, tau=2": {"start_epoch": 0},
    "look-alike groups only, w=1, tau=1": {"start_epoch": 0, "group_share": 1.0, "tau": 1.0},
    "random groups only, w=1, tau=20": {"groups": "random", "start_epoch": 0, "group_share": 1.0,
                                       "tau": 20.0},
    "curriculum, w=0.3": {"weight": 0.3},
    "curriculum, groups only, tau=1": {"group_share": 1.0, "tau": 1.0},
    "preset": {},
}


def group_index(n_images: int, groups: np.ndarray) -> np.ndarray:
    """``group_of[i]``: the group holding image ``i``, or -1 for an image left out."""
    group_of = np.full(n_images, -1)
    for g, members in enumerate(groups):
        group_of[members] = g
    return group_of


def group_false_negatives(split, groups: np.ndarray) -> float:
    """% of ``split``'s captions that are also true of another image of their image's group.

    By the scene descriptions (``truth_matrix``): how often InfoNCE on look-alike batches would
    push a caption away from an image it describes.
    """
    group_of = group_index(len(split), groups)
    hits = total = 0
    for c, image in enumerate(split.caption_image):
        g = group_of[image]
        if g < 0:
            continue
        others = [split.scenes[j] for j in groups[g] if j != image]
        hits += bool(truth_matrix([split.forms[c]], others).any())
        total += 1
    return 100.0 * hits / total


def lookalike_accuracy(score_fn, split, groups: np.ndarray) -> float:
    """% of captions whose own image scores highest among its group's images."""
    group_of = group_index(len(split), groups)
    caps = np.flatnonzero(group_of[split.caption_image] >= 0)
    members = groups[group_of[split.caption_image[caps]]]
    scores = score_fn(caps, members)  # (n_caps, group_size)
    own = members == split.caption_image[caps][:, None]
    return float(100 * np.mean(own[np.arange(len(caps)), scores.argmax(1)]))


def fast_group_scores(model, tok, split, max_len):
    img = embed_images(model, split.images)
    txt = embed_texts(model, tok, list(split.captions), max_len=max_len)

    def score(caps, members):
        return torch.einsum("cd,cgd->cg", txt[caps], img[members]).numpy()

    return score


def evaluate(model, tok, world, max_len, val_groups) -> dict:
    protocol = RetrievalProtocol.from_split(world.test)
    scores = fast_scores(model, tok, protocol, max_len=max_len)
    out = {f"test_{k}": v for k, v in text_to_image_metrics(scores, protocol.gt).items()}
    q = protocol.query_subset(200, seed=0)
    out.update({f"sub200_{k}": v for k, v in
                text_to_image_metrics(scores[q], protocol.gt[q]).items()})
    out.update(probe_accuracy(fast_pair_scorer(model, tok, max_len=max_len), world.probe))
    out["lookalike_acc"] = lookalike_accuracy(fast_group_scores(model, tok, world.val, max_len),
                                              world.val, val_groups)
    return {k: round(float(v), 2) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", default=None, help="variant names to (re)run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None,
                        help="a longer equal budget for Fast and every student (see above)")
    parser.add_argument("--out", default=None, metavar="NAME",
                        help="write results/NAME.json (default: distill_sweep, or "
                        "distill_sweep_<E>ep with --epochs E); an exercise's own run names its "
                        "own file and leaves the committed one alone")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    preset = get_preset("cpu")
    world = load_world(preset.world)
    tok = world.tokenizer()
    cfg = preset.fast_train
    root = repo_root()
    ckpt = root / "checkpoints" / "distill-sweep"
    # The live Fast and Slow, and the demonstration student they teach (the registry's recipes
    # at the preset's live budgets; the student at the demonstration's).
    budgets = preset.live_budgets()
    live = Models(preset, torch.device("cpu"), ckpt, world=world, budgets=budgets)
    student = Models(preset, torch.device("cpu"), ckpt / "student", world=world, parents=live,
                     budgets=dataclasses.replace(budgets, fast_train=preset.distill_demo()),
                     cache_dir=ckpt)
    out_path = result_path("distill_sweep")
    longer = args.epochs is not None and args.epochs != cfg.epochs
    if longer:
        if args.epochs < 2:
            raise SystemExit(f"--epochs must be at least 2, got {args.epochs}")
        start_scale = args.epochs / cfg.epochs
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
        out_path = result_path(f"distill_sweep_{args.epochs}ep")
    if args.out is not None:
        try:
            out_path = result_path(args.out.removesuffix(".json"))
        except ValueError as e:
            parser.error(f"--out: {e}")
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    result.update({"preset": preset.name, "preset_distill": preset.distill.to_dict(),
                   "fast_train": cfg.to_dict()})
    runs = result.setdefault("runs", {})

    if longer:  # a plain Fast at the longer budget, trained here and not saved
        torch.manual_seed(cfg.seed)
        fast = DualEncoder(FastConfig(vocab_size=len(tok), max_len=cfg.max_len,
                                      **preset.fast_model))
        fast_history = train_fast(fast, world, tok, cfg)
    else:
        fast, fast_history, _ = live.get("fast")
    slow = live.get("slow").model
    val_groups = lookalike_groups(fast, world.val, preset.distill.group_size, seed=cfg.seed)
    train_groups = make_groups(preset.distill, fast, world.train, seed=cfg.seed)
    result["lookalike_false_negatives_%"] = round(group_false_negatives(world.train,
                                                                        train_groups), 2)
    print(f"training captions true of another image of their look-alike group: "
          f"{result['lookalike_false_negatives_%']:.2f}%", flush=True)
    if args.only is None or "Fast" in args.only:
        runs["Fast"] = {"config": None, "val_R@1": fast_history["val_R@1"],
                        **evaluate(fast, tok, world, cfg.max_len, val_groups)}

        def slow_group(caps, members):
            table = teacher_scores(slow, tok, world.val, val_groups, caps, max_len=cfg.max_len,
                                   desc="Slow on validation groups")
            return table[caps]

        runs["Slow"] = {"config": None,
                        "lookalike_acc": round(lookalike_accuracy(slow_group, world.val,
                                                                  val_groups), 2)}
        print("Fast", runs["Fast"], "\nSlow", runs["Slow"], flush=True)
        write_result(out_path, result, indent=1)

    for name, changes in VARIANTS.items():
        if args.only is not None and name not in args.only:
            continue
        dcfg = dataclasses.replace(preset.distill, **changes)
        if longer:
            dcfg = dataclasses.replace(dcfg, start_epoch=round(dcfg.start_epoch * start_scale))
        start = time.perf_counter()
        if name == "preset" and not longer:
            model, history, _ = student.get("fast_distilled")
        else:
            same = (dcfg.groups, dcfg.group_size) == (preset.distill.groups,
                                                       preset.distill.group_size)
            groups = train_groups if same else make_groups(dcfg, fast, world.train,
                                                           seed=cfg.seed)
            cache = ckpt / ("teacher_cpu" + ("" if dcfg.groups == "lookalike"
                                             else f"_{dcfg.groups}")
                            + (f"_{cfg.epochs}ep" if longer else "") + ".safetensors")
            teacher, _ = get_teacher_scores(world, tok, slow, live.folder("slow"),
                                            groups, cfg, cache)
            torch.manual_seed(cfg.seed)
            model = DualEncoder(FastConfig(vocab_size=len(tok), max_len=cfg.max_len,
                                           **preset.fast_model))
            sampler = GroupBatchSampler(groups, cfg.batch_size, n_images=len(world.train),
                                        group_share=dcfg.group_share,
                                        start_epoch=dcfg.start_epoch, seed=cfg.seed)
            extra = distillation_extra_loss(teacher, sampler, weight=dcfg.weight, tau=dcfg.tau)
            history = train_fast(model, world, tok, cfg, extra_loss=extra, batch_sampler=sampler)
        runs[name] = {"config": dcfg.to_dict(), "seconds": round(time.perf_counter() - start, 1),
                      "val_R@1": [round(v, 2) for v in history["val_R@1"]],
                      **evaluate(model, tok, world, cfg.max_len, val_groups)}
        print(name, runs[name], flush=True)
        write_result(out_path, result, indent=1)
    write_result(out_path, result, indent=1)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
