#!/usr/bin/env python3
"""How much captions say, and what it does to Fast, Slow and distillation (caption_detail.json).

For each caption detail (``fastslow_course.caption_detail.DETAILS``; a world per detail,
``Preset.with_caption_detail``):

* the world: captions true of one image, images per caption, the R@1 ceiling (1K and 5K
  protocols), InfoNCE's false negatives per training batch;
* where the world's release models exist (``data/release`` at detail 1,
  ``data/release/captions-NN`` below it; ``make reproduce`` / ``scripts/reproduce.py
  --caption-detail D``): every Fast-type model on every query of both protocols (R@1 against the
  labelled image, consistent@1), each student against Fast and each teacher's student against
  its control without a teacher on the same queries (paired intervals), and Slow re-ranking
  the top K of Fast and of each teacher's student on 5,000 queries of each protocol (Slow
  scores the union of the short lists once), with the smallest K within 1 point of Slow
  re-ranking Fast's top 100, by the labelled image and by consistent@1.

Resumable: models' outcomes and Slow's scores are cached under
``checkpoints/release-cache/<world>/caption_detail/``, keyed by the weights and the protocol.

    python scripts/caption_detail.py [--details 1.0 0.8 0.6] [--threads 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fastslow_course.caption_detail import (
    CONTROL_OF,
    DETAILS,
    KS,
    fast_outcomes,
    hits_record,
    paired,
    reranked_hits,
    slow_on_shortlists,
    teacher_mass,
    world_stats,
)
from fastslow_course.experiment import write_result
from fastslow_course.manifest import release_dir, world_subfolder
from fastslow_course.release import Releases, manifest
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.cache import file_fingerprint
from fastslow_lib.core.checkpoint import cached_arrays
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import proportion_interval, smallest_within
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.data.protocols import load_test5k, nested_query_subsets
from fastslow_lib.distill.groups import get_teacher_scores, make_groups
from fastslow_lib.rerank import SlowGallery

#: Fast-type release models measured (the students of notebook 03 and their controls).
FAST_TYPE = ("fast", "fast_distilled", "fast_lookalike_batches", "fast_ranked",
             "fast_hard_negatives")
#: Queries Slow re-ranks short lists for, per protocol (the 5K protocol's as many as
#: ``results/test5k.json`` re-ranks at full detail).
SLOW_QUERIES = {"1k": 5000, "5k": 5000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--details", nargs="+", type=float, default=list(DETAILS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="default: results/caption_detail.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base, device = get_preset(args.preset), pick_device()
    worlds = [measure_world(base if d >= 1 else base.with_caption_detail(d), device)
              for d in args.details]
    path = write_result(args.out or "caption_detail", {"slow_queries": SLOW_QUERIES,
                                                       "Ks": list(KS), "worlds": worlds},
                        preset=base, device=device)
    print("wrote", path)
    return 0


def measure_world(preset, device) -> dict:
    """One world's statistics and, where they exist, its release models' outcomes."""
    world = load_world(preset.world)
    protocols = {"1k": RetrievalProtocol.from_split(world.test),
                 "5k": RetrievalProtocol.from_split(load_test5k(world))}
    budgets = preset.release_budgets()
    entry = world_stats(world, protocols["1k"], protocols["5k"], budgets.fast_train.batch_size)
    d = preset.world.caption_detail
    print(f"caption detail {d}: {entry}", flush=True)
    root = release_dir(preset)
    released = manifest(root)["models"] if (root / "MANIFEST.json").is_file() else {}
    names = [n for n in FAST_TYPE if n in released]
    entry["release"] = {n: released[n]["sha256"]["model.safetensors"] for n in names}
    if "fast" not in released:
        print(f"  no release models in {root}: world statistics only", flush=True)
        return entry
    rel = Releases(preset, device, world=world, mode="release")
    tok, max_len = rel.tokenizer, budgets.fast_train.max_len
    cache = repo_root() / "checkpoints" / "release-cache" / world_subfolder(preset) / \
        "caption_detail"
    entry["protocols"] = {}
    for pname, proto in protocols.items():
        key = {"world": world.config.key(), "protocol": pname, "queries": len(proto.queries),
               "images": len(proto.gallery), "max_len": max_len}
        outs = {}
        for n in names:
            model = rel.get(n).model.eval()
            outs[n], _ = cached_arrays(
                cache / f"{pname}_{n}.safetensors",
                {**key, "weights": file_fingerprint(rel.folder(n))},
                lambda m=model, p=proto: fast_outcomes(m, tok, p, max_len=max_len, device=device))
        rows = np.arange(len(proto.queries))
        result = {"models": {}, "vs_fast": {}}
        for n in names:
            result["models"][n] = hits_record(outs[n]["ranks"],
                                              proto.truth[rows, outs[n]["top1"]])
            print(f"  {pname} {n:20s} R@1 {result['models'][n]['R@1']['value']:.1f}, "
                  f"consistent@1 {result['models'][n]['consistent@1']['value']:.1f}", flush=True)
        fast_hits = outs["fast"]["ranks"] == 1
        fast_cons = proto.truth[rows, outs["fast"]["top1"]]
        ambiguous = proto.truth.sum(axis=1) > 1
        # the teacher's own share: each student against its control without a teacher
        result["vs_control"] = {
            n: {"control": c,
                "labelled": paired(outs[n]["ranks"] == 1, outs[c]["ranks"] == 1),
                "consistent": paired(proto.truth[rows, outs[n]["top1"]],
                                     proto.truth[rows, outs[c]["top1"]])}
            for n, c in CONTROL_OF.items() if n in outs and c in outs}
        for n in names[1:]:
            hits, cons = outs[n]["ranks"] == 1, proto.truth[rows, outs[n]["top1"]]
            result["vs_fast"][n] = {"labelled": paired(hits, fast_hits),
                                    "consistent": paired(cons, fast_cons)}
            # where the gain sits: captions true of one image, or of several
            for part, mask in (("one_image", ~ambiguous), ("several_images", ambiguous)):
                if mask.sum() >= 2:
                    result["vs_fast"][n][part] = {
                        "queries": int(mask.sum()),
                        "labelled": paired(hits[mask], fast_hits[mask]),
                        "consistent": paired(cons[mask], fast_cons[mask])}
        if "slow" in released:  # re-ranking: Fast and the teachers' students (not the controls)
            students = [n for n in names if n not in CONTROL_OF.values()]
            result["slow"] = _slow_part(rel, proto, outs, students, key, cache / pname, pname)
        entry["protocols"][pname] = result
    if "slow" in released:
        entry["teacher"] = _teacher_part(rel, names)
    return entry


def _teacher_part(rel, names) -> dict:
    """Where each signal's teacher targets put their mass (true but unlabelled images)."""
    world, b = rel.world, rel.budgets
    out: dict = {}
    if "fast_distilled" in names:
        fast = rel.get("fast").model.eval()
        groups = make_groups(b.distill, fast, world.train, seed=b.fast_train.seed,
                             device=rel.device)
        scores, _ = get_teacher_scores(
            world, rel.tokenizer, rel.get("slow").model.eval(), rel.folder("slow"), groups,
            b.fast_train, rel.cache_dir / f"teacher_scores_{rel.preset.name}.safetensors",
            start_epoch=b.distill.start_epoch, device=rel.device)
        group_of = np.empty(len(world.train), dtype=np.int64)
        for g, members in enumerate(groups):
            group_of[members] = g
        candidates = groups[group_of[world.train.caption_image]]
        out["in_batch_groups"] = teacher_mass(scores, candidates, world.train, b.distill.tau)
    if "fast_ranked" in names:
        candidates, scores = rel.ranking_inputs()
        out["ranking_candidates"] = teacher_mass(scores, candidates, world.train, b.ranking.tau)
    for signal, m in out.items():
        print(f"  teacher ({signal}): mass on own {m['own']}, true but unlabelled "
              f"{m['true_unlabelled']}, false {m['false']}", flush=True)
    return out


def _slow_part(rel, proto, outs, names, key, cache: Path, pname: str) -> dict:
    """Slow re-ranking each model's top K on :data:`SLOW_QUERIES` queries."""
    (ids,) = nested_query_subsets(len(proto.queries), (SLOW_QUERIES[pname],))
    tok, max_len = rel.tokenizer, rel.budgets.fast_train.max_len
    slow = rel.get("slow").model.eval()
    gallery = SlowGallery(slow, proto.gallery, device=rel.device)
    tops = [outs[n]["top"][ids] for n in names]
    weights = {n: file_fingerprint(rel.folder(n)) for n in (*names, "slow")}
    arrays, _ = cached_arrays(
        cache.with_name(f"{cache.name}_slow.safetensors"),
        {**key, "weights": weights, "query_ids": ids.tolist()},
        lambda: dict(zip(("candidates", "scores"),
                         slow_on_shortlists(gallery, tok, proto, ids, tops, max_len=max_len),
                         strict=True)))
    gt, truth = proto.gt[ids], proto.truth[ids]
    hits = {n: reranked_hits(outs[n]["top"][ids], arrays["candidates"], arrays["scores"], gt,
                             truth) for n in names}
    reference = hits["fast"][max(KS)]  # Slow re-ranking Fast's top 100: Slow's stand-in
    out: dict = {"queries": len(ids),
                 "slow_top100": {m: proportion_interval(reference[m]).to_dict()
                                 for m in ("labelled", "consistent")},
                 "models": {}}
    for n in names:
        # the smallest K within 1 point of the reference, by the labelled image and by
        # consistent@1 (where captions fit several images, the measure that means something)
        k, _ = smallest_within({k: h["labelled"] for k, h in hits[n].items()},
                               reference["labelled"], 1.0)
        k_consistent, _ = smallest_within({k: h["consistent"] for k, h in hits[n].items()},
                                          reference["consistent"], 1.0)
        out["models"][n] = {
            "K_within_1_point": k, "K_within_1_point_consistent": k_consistent,
            "by_K": {str(k): {m: proportion_interval(h[m]).value for m in ("labelled",
                                                                            "consistent")}
                     for k, h in hits[n].items()}}
        print(f"  {pname} {n:20s} + Slow: smallest K within 1 point of Slow(Fast top 100): {k} "
              f"(consistent@1: {k_consistent})", flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
