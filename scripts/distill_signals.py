#!/usr/bin/env python3
"""Notebook 03's distillation signals, scored on the release models: results/distill_signals.json.

Every student has plain Fast's architecture, data, seed and release budget (InfoNCE on the true
pairs in all of them); they differ in one term:

* ``fast``: plain Fast, the converged baseline (its validation curve is flat; notebook 01);
* ``fast_distilled``: signal (a), the paper's: look-alike batches, the student's softmax over
  each group matched to the teacher's (:mod:`fastslow_lib.distill.groups`);
* ``fast_ranked``: signal (b): random batches, plus the teacher's ranking of each caption's own
  image among the hard negatives Fast mined for it (:mod:`fastslow_lib.distill.ranking`);
* ``fast_hard_negatives``: (b)'s control: the same candidates, a hard label, no teacher;
* ``fast_binding_twins``: the upper bound, no teacher: for 64 captions of every batch, the
  caption's binding twin (its image with one binding swapped, the probe's kind of pair,
  :func:`~fastslow_lib.data.world.binding_twins`) as a hard negative. What a dual encoder of
  this shape learns of bindings when it is shown them directly.

For each, on all 5,000 test captions against the 1,000 test images: the rank of every query
(paired intervals against Fast come from them), R@1 per caption kind (places alone, or
relations between objects), the probe per kind, and the teacher's accuracy on exactly the
queries the model gets wrong (does Slow rank the true image above the model's wrong top 1?).
Each row keeps the sha256 of the weights it scored; notebook 03 checks them against the
release manifest.

    python scripts/distill_signals.py [--preset cpu] [--threads 2]

About a minute on 2 cores (scoring only; the models come from data/release/).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fastslow_course.experiment import write_result
from fastslow_course.release import Releases, manifest
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import hits_at, paired_difference_interval, proportion_interval
from fastslow_lib.core.metrics import ranks_of_gt
from fastslow_lib.data import RetrievalProtocol
from fastslow_lib.data.captions import CAPTION_KINDS, caption_kind
from fastslow_lib.fast.evaluate import fast_pair_scorer, fast_scores, probe_outcomes
from fastslow_lib.slow.scoring import slow_pair_scores

#: Release model -> what it is, in the order notebook 03 shows them.
STUDENTS: dict[str, str] = {
    "fast": "Fast (converged, no teacher)",
    "fast_distilled": "(a) in-batch softmax over look-alike groups",
    "fast_ranked": "(b) the teacher's ranking of Fast's hard negatives",
    "fast_hard_negatives": "(b)'s control: the same hard negatives, no teacher",
    "fast_binding_twins": "upper bound: each caption's binding twin as a negative, no teacher",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device()
    preset = get_preset(args.preset)
    rel = Releases(preset, device, mode="release")
    world, tok = rel.world, rel.tokenizer
    max_len = preset.release_budgets().fast_train.max_len
    test = RetrievalProtocol.from_split(world.test)
    kinds = np.array([caption_kind(f) for f in world.test.forms])
    released = manifest(rel.root)["models"]
    slow = rel.get("slow")[0]
    results: dict[str, dict] = {}
    missing = [name for name in STUDENTS if name not in released]
    for name, what in STUDENTS.items():
        if name in missing:
            print(f"{name}: no release model yet (make reproduce ONLY={name})")
            continue
        model, history, _ = rel.get(name)
        scores = fast_scores(model, tok, test, max_len=max_len, device=device)
        ranks = ranks_of_gt(scores, test.gt)
        probe = probe_outcomes(fast_pair_scorer(model, tok, max_len=max_len, device=device),
                               world.probe)
        # The teacher on exactly this model's mistakes: Slow's score of the true image against
        # that of the model's wrong top 1, for every query the model gets wrong.
        wrong = np.flatnonzero(ranks > 1)
        top1 = scores[wrong].argmax(axis=1)
        texts = [test.queries[q] for q in wrong]
        s_true = slow_pair_scores(slow, tok, texts, test.gallery[test.gt[wrong]],
                                  max_len=max_len, device=device)
        s_top = slow_pair_scores(slow, tok, texts, test.gallery[top1], max_len=max_len,
                                 device=device)
        results[name] = {
            "what": what, "sha256": released[name]["sha256"]["model.safetensors"],
            "test_R@1": proportion_interval(hits_at(ranks, 1)).to_dict(),
            "test_R@5": round(100 * float(np.mean(ranks <= 5)), 2),
            "test_R@10": round(100 * float(np.mean(ranks <= 10)), 2),
            "R@1_by_caption_kind": {k: round(100 * float(np.mean(ranks[kinds == k] == 1)), 2)
                                    for k in CAPTION_KINDS},
            "probe": {k: round(100 * float(v.mean()), 2) for k, v in probe.items()},
            "val_R@1_per_epoch": [round(float(v), 2) for v in history["val_R@1"]],
            "errors": int(len(wrong)),
            "teacher_right_on_errors_%": round(100 * float(np.mean(s_true > s_top)), 2)
            if len(wrong) else None,
            "outcomes": {"test_ranks": ranks.tolist(),
                         **{k: v.tolist() for k, v in probe.items()},
                         "teacher_right_on_errors": (s_true > s_top).astype(int).tolist()},
        }
        if name != "fast":
            base = hits_at(np.asarray(results["fast"]["outcomes"]["test_ranks"]), 1)
            results[name]["minus_fast_R@1"] = paired_difference_interval(
                hits_at(ranks, 1), base).to_dict()
        print(name, f"R@1 {proportion_interval(hits_at(ranks, 1))}",
              results[name].get("minus_fast_R@1", ""), flush=True)
    # Signal (b)'s targets, as the students saw them: how often the teacher puts the caption's own
    # image first among its candidates, and the mean probability its softmax gives that image.
    candidates, teacher_scores = rel.ranking_inputs()
    tau = preset.release_budgets().ranking.tau
    p_own = torch.softmax(torch.from_numpy(teacher_scores) / tau, dim=1)[:, 0].numpy()
    targets = {"captions": int(len(candidates)), "negatives": int(candidates.shape[1] - 1),
               "teacher_own_first": (teacher_scores.argmax(axis=1) == 0).astype(int).tolist(),
               "mean_p_own_at_tau": round(float(p_own.mean()), 4), "tau": tau}
    # The upper bound's negatives: how many captions have a binding twin, and of which kind.
    twins = rel.twin_candidates()[2] if "fast_binding_twins" in released else None
    out = {
        "preset": preset.name,
        "world": world.config.key(), "queries": len(test.queries), "gallery": len(test.gallery),
        "caption_kinds": {k: int((kinds == k).sum()) for k in CAPTION_KINDS},
        "ranking": preset.release_budgets().ranking.to_dict(),
        "results": results, "not_built": missing, "ranking_targets": targets,
        "twins": preset.release_budgets().twins.to_dict(), "twins_made": twins,
    }
    path = write_result(args.out or "distill_signals", out, device=device)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
