#!/usr/bin/env python3
"""Slow on every test caption: notebook 04's smallest K, paired over all the test queries.

Notebook 04 compares re-ranking with Slow on everything over a fixed subset of test queries
(``preset.slow_queries``, 200 here), because Slow on everything costs a decoder pass per image
per query. 200 paired queries decide little about a one-point margin: the paired intervals
there are a few points wide, and the smallest K they certify can differ between two Fast models
by chance. This script pays Slow on everything once for **every** test caption (5,000 x 1,000
pairs with the release Slow, through the same :class:`~fastslow_lib.rerank.SlowGallery` as the
notebook), and re-ranks the release Fast's and the chosen student's top K at each K by look-up
(:func:`~fastslow_lib.rerank.lookup_reranked_ranks`).

``results/rerank_all_queries.json`` keeps what notebook 04 needs and nothing it cannot check:
the three models' weight hashes; Slow on everything's rank of each query's image; and, per Fast
model and K, which queries the re-ranked top-1 gets right (a string of 0/1, one per query, in
the test split's order). The notebook checks them on its own 200 queries against the scores it
holds and computes the intervals. Slow's score matrix is cached (not committed) at
``checkpoints/release-cache/slow_all_test_<preset>.safetensors``, keyed on Slow's weights, so a
rerun for another student costs seconds.

    python scripts/rerank_all_queries.py [--preset cpu] [--threads 2]

About 25 minutes on 2 cores (Slow on everything at about 0.3 s per query).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fastslow_course.experiment import write_result
from fastslow_course.release import Releases, chosen_student, manifest
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.cache import file_fingerprint
from fastslow_lib.core.checkpoint import WEIGHTS_NAME, cached_arrays
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import (
    hits_as_bits,
    hits_at,
    proportion_interval,
    smallest_within,
)
from fastslow_lib.core.metrics import ranks_of_gt
from fastslow_lib.core.paths import repo_root
from fastslow_lib.core.progress import progress
from fastslow_lib.data import RetrievalProtocol
from fastslow_lib.fast.evaluate import fast_scores
from fastslow_lib.rerank import SlowGallery, lookup_reranked_ranks, shortlist_loss_bound

#: The K of notebook 04's curve.
KS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preset, device = get_preset(args.preset), pick_device()
    rel = Releases(preset, device, mode="release")
    world, tok = rel.world, rel.tokenizer
    max_len = preset.release_budgets().fast_train.max_len
    student = chosen_student(rel.root)
    names = {"Fast": "fast", "distilled Fast": student}
    slow = rel.get("slow")[0].eval()
    test = RetrievalProtocol.from_split(world.test)

    def compute() -> dict[str, np.ndarray]:
        gallery = SlowGallery(slow, test.gallery, device=device)
        bar = progress(total=len(test.queries) * len(test.gallery), desc="Slow on everything")
        out = gallery.scores(tok, test.queries, max_len=max_len, progress_bar=bar)
        bar.close()
        return {"scores": out.astype(np.float32)}

    cache = (repo_root() / "checkpoints" / "release-cache" /
             f"slow_all_test_{preset.name}.safetensors")
    key = {"slow": file_fingerprint(rel.folder("slow") / WEIGHTS_NAME),
           "world": world.config.key(), "max_len": max_len, "queries": len(test.queries)}
    start = time.perf_counter()
    arrays, loaded = cached_arrays(cache, key, compute)
    seconds = time.perf_counter() - start
    S = arrays["scores"]
    # The kept scores of notebook 04's subset (made with the release Slow) must agree.
    kept = rel.test_scores("slow")[0]
    torch.testing.assert_close(torch.from_numpy(S[kept["query_ids"]]),
                               torch.from_numpy(kept["forward"] + kept["backward"]),
                               rtol=1e-5, atol=2e-3)
    slow_ranks = ranks_of_gt(S, test.gt)
    slow_hits = hits_at(slow_ranks, 1)
    released = manifest(rel.root)["models"]
    models: dict[str, dict] = {}
    for label, name in names.items():
        model = rel.get(name)[0].eval()
        order = np.argsort(-fast_scores(model, tok, test, max_len=max_len, device=device),
                           axis=1, kind="stable")
        fast_ranks = 1 + np.argmax(order == test.gt[:, None], axis=1)
        hits = {k: hits_at(lookup_reranked_ranks(order, S, test.gt, k), 1) for k in KS}
        k_paired, gaps = smallest_within(hits, slow_hits, 1.0)
        k_bound, _ = shortlist_loss_bound(fast_ranks, KS)
        print(f"{label:15s} ({name}): R@1 {proportion_interval(hits_at(fast_ranks, 1))}; "
              f"+ Slow(10) {proportion_interval(hits[10])}, minus Slow {gaps[10].signed()}; "
              f"smallest K within 1 point: paired {k_paired}, bound {k_bound}")
        models[label] = {"release": name, "sha256": released[name]["sha256"]["model.safetensors"],
                         "fast_ranks": fast_ranks.tolist(),
                         "reranked_hits": {str(k): hits_as_bits(h) for k, h in hits.items()}}
    print(f"Slow on everything: R@1 {proportion_interval(slow_hits)} on {len(test.queries):,} "
          f"queries ({'loaded' if loaded else f'{seconds:.0f} s'})")
    record = {"world": world.config.key(),
              "queries": len(test.queries), "gallery": len(test.gallery), "Ks": list(KS),
              "slow_sha256": released["slow"]["sha256"]["model.safetensors"],
              "slow_seconds": None if loaded else round(seconds, 1),
              "slow_all_ranks": slow_ranks.tolist(), "models": models}
    path = write_result("rerank_all_queries", record, preset=preset, device=device)
    print("wrote", path.relative_to(repo_root()))


if __name__ == "__main__":
    main()
