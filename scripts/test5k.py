#!/usr/bin/env python3
"""The 5K protocol, measured once with the release models: results/test5k.json.

The 5K protocol (:func:`fastslow_lib.data.protocols.load_test5k`: 5,000 images, the 1,000 test
images with a binding twin and a one-object neighbour of each, and images drawn like the test
split; 25,000 captions, every one a query) is COCO 5K's size and, like a real gallery, full of
near-duplicates. What it keeps, each on the largest query set that can be afforded:

* **every Fast-type release model on all 25,000 queries** (cheap): each query's rank of its
  image (the re-ranking bound, :func:`~fastslow_lib.rerank.shortlist_loss_bound`, and the
  students against Fast) and whether its top-1 image makes the caption true (consistent@1);
* **Slow on everything** (the release Slow against all 5,000 images) on
  :data:`~fastslow_lib.data.protocols.TEST5K_SLOW_QUERIES` queries: Slow's rank of each
  query's image, consistent@1, and, per Fast model and K, which queries the re-ranked top-1
  gets right (a look-up in Slow's scores, :func:`~fastslow_lib.rerank.lookup_reranked_ranks`);
* **every Slow-type release model re-scoring Fast's top**
  :data:`~fastslow_lib.data.protocols.TEST5K_SHORTLIST_K` on
  :data:`~fastslow_lib.data.protocols.TEST5K_SHORTLIST_QUERIES` queries (the ablations:
  upsampling, direction, captioning against ITM): the re-ranked rank of each query's image and
  consistent@1. The exhaustive
  queries are among them, and the file says how often Slow on everything's top-1 lay outside
  Fast's top 100 there (where the two measurements could differ);
* the cost: Slow on everything and Fast + Slow(K) timed side by side in this run, per query.

Resumable: every model's scores are cached under ``checkpoints/release-cache/test5k/`` in
blocks, keyed on the weights, the protocol and the queries, so an interrupted run continues
where it stopped, and a rerun after a new student costs seconds. Notebooks 02-04 check the file
against the release manifest before they use it; the claims table reads it.

    python scripts/test5k.py [--preset cpu] [--threads 2]

About 70 minutes on 2 cores (Slow on everything: 5M decoder pairs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fastslow_course.experiment import write_result
from fastslow_course.release import Releases, chosen_student, manifest
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.cache import file_fingerprint
from fastslow_lib.core.checkpoint import WEIGHTS_NAME, cached_arrays
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import hits_as_bits, hits_at, proportion_interval
from fastslow_lib.core.metrics import r1_ceiling
from fastslow_lib.core.paths import repo_root
from fastslow_lib.core.progress import progress
from fastslow_lib.core.timing import Timer
from fastslow_lib.data import RetrievalProtocol
from fastslow_lib.data.protocols import (
    TEST5K_IMAGES,
    TEST5K_SHORTLIST_K,
    TEST5K_SHORTLIST_QUERIES,
    TEST5K_SLOW_QUERIES,
    TEST5K_VERSION,
    load_test5k,
    nested_query_subsets,
    parts_5k,
)
from fastslow_lib.fast.evaluate import embed_images, embed_texts
from fastslow_lib.fast.index import VectorIndex
from fastslow_lib.rerank import SlowGallery, lookup_reranked_ranks, rerank

#: The K of notebook 04's curve.
KS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)
#: Fast-type release models scored on every query (the students of notebook 03 among them).
FAST_MODELS = ("fast", "fast_distilled", "fast_hard_negatives", "fast_ranked",
               "fast_binding_twins")
#: Slow-type release models that re-score Fast's short lists (notebook 02's ablations).
SLOW_MODELS = ("slow", "slow_coarse_only", "slow_forward_only", "itm")
#: Queries per cached block of Slow on everything / of the short lists.
BLOCK, SHORT_BLOCK = 100, 1000


def cache_dir(preset_name: str):
    path = repo_root() / "checkpoints" / "release-cache" / f"test5k-v{TEST5K_VERSION}-{preset_name}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fast_orders(model, tok, protocol: RetrievalProtocol, max_len: int, device) -> np.ndarray:
    """Fast's ranking of the whole gallery for every query, ``(Q, N)`` int32, best first."""
    img = embed_images(model, protocol.gallery, device=device)
    out = np.zeros((len(protocol.queries), len(protocol.gallery)), dtype=np.int32)
    for s in progress(range(0, len(protocol.queries), 2500), desc="Fast ranks"):
        txt = embed_texts(model, tok, protocol.queries[s : s + 2500], max_len=max_len,
                          device=device)
        out[s : s + 2500] = np.argsort(-(txt @ img.T).numpy(), axis=1, kind="stable")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--slow-queries", type=int, default=TEST5K_SLOW_QUERIES,
                        help="queries for Slow on everything (a smaller run for a quick look)")
    parser.add_argument("--shortlist-queries", type=int, default=TEST5K_SHORTLIST_QUERIES)
    parser.add_argument("--out", default=None, help="default: results/test5k.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preset, device = get_preset(args.preset), pick_device()
    rel = Releases(preset, device, mode="release")
    world, tok = rel.world, rel.tokenizer
    max_len = preset.release_budgets().fast_train.max_len
    released = manifest(rel.root)["models"]
    student = chosen_student(rel.root)
    split = load_test5k(world)
    p5 = RetrievalProtocol.from_split(split)
    n_q = len(p5.queries)
    slow_ids, short_ids = nested_query_subsets(n_q, (args.slow_queries, args.shortlist_queries))
    where = cache_dir(preset.name)
    protocol_key = {"world": world.config.key(), "version": TEST5K_VERSION,
                    "images": len(p5.gallery), "queries": n_q, "max_len": max_len}

    def weights(name: str) -> str:
        return file_fingerprint(rel.folder(name) / WEIGHTS_NAME)

    # --- Fast-type models, every query -----------------------------------------------------
    fast_out: dict[str, dict] = {}
    orders: dict[str, np.ndarray] = {}
    for name in FAST_MODELS:
        if name not in released:
            print(f"{name}: no release model (make reproduce ONLY={name}); skipped")
            continue
        model = rel.get(name)[0].eval()
        arrays, _ = cached_arrays(
            where / f"fast_{name}.safetensors", {**protocol_key, "weights": weights(name)},
            lambda m=model: _fast_arrays(m, tok, p5, max_len, device))
        ranks, top1 = arrays["ranks"][:, 0].astype(np.int64), arrays["ranks"][:, 1]
        orders[name] = arrays["top"].astype(np.int64)
        fast_out[name] = {"sha256": released[name]["sha256"]["model.safetensors"],
                          "ranks": ranks.tolist(),
                          "consistent_bits": hits_as_bits(p5.truth[np.arange(n_q), top1])}
        print(f"{name:20s} R@1 {proportion_interval(hits_at(ranks, 1))}, R@10 "
              f"{proportion_interval(hits_at(ranks, 10))}, R@100 "
              f"{proportion_interval(hits_at(ranks, 100))} on {n_q:,} queries", flush=True)

    # --- Slow on everything, TEST5K_SLOW_QUERIES queries --------------------------------------
    slow = rel.get("slow")[0].eval()
    gallery = SlowGallery(slow, p5.gallery, device=device)
    blocks = []
    bar = progress(total=len(slow_ids) * len(p5.gallery), desc="Slow on everything")
    slow_seconds = 0.0
    for b0 in range(0, len(slow_ids), BLOCK):
        ids = slow_ids[b0 : b0 + BLOCK]
        t0 = time.perf_counter()
        arrays, loaded = cached_arrays(
            where / f"slow_all_{b0:05d}.safetensors",
            {**protocol_key, "weights": weights("slow"), "query_ids": ids.tolist()},
            lambda ids=ids: {"scores": gallery.scores(tok, [p5.queries[i] for i in ids],
                                                      max_len=max_len).astype(np.float32)})
        if not loaded:
            slow_seconds += time.perf_counter() - t0
        bar.update(len(ids) * len(p5.gallery))
        blocks.append(arrays["scores"])
    bar.close()
    S = np.concatenate(blocks)
    sub_gt = p5.gt[slow_ids]
    slow_order = np.argsort(-S, axis=1, kind="stable")
    slow_ranks = 1 + np.argmax(slow_order == sub_gt[:, None], axis=1)
    slow_top1 = slow_order[:, 0]
    print(f"Slow on everything: R@1 {proportion_interval(hits_at(slow_ranks, 1))} on "
          f"{len(slow_ids):,} queries", flush=True)
    reranked: dict[str, dict[str, str]] = {}
    reranked_consistent: dict[str, dict[str, str]] = {}
    for name in ("fast", student):
        full = np.concatenate([orders[name][slow_ids], _rest(orders[name][slow_ids],
                                                             len(p5.gallery))], axis=1)
        reranked[name], reranked_consistent[name] = {}, {}
        for k in KS:
            r = lookup_reranked_ranks(full, S, sub_gt, k)
            reranked[name][str(k)] = hits_as_bits(hits_at(r, 1))
            cand = full[:, :k]
            top = cand[np.arange(len(cand)), np.argmax(np.take_along_axis(S, cand, 1), axis=1)]
            reranked_consistent[name][str(k)] = hits_as_bits(p5.truth[slow_ids, top])
    outside = ~(orders["fast"][slow_ids] == slow_top1[:, None]).any(axis=1)

    # --- every Slow-type model on Fast's short lists, TEST5K_SHORTLIST_QUERIES queries ------
    short_out: dict[str, dict] = {}
    lists = {"fast": orders["fast"][short_ids]}
    for name in SLOW_MODELS:
        if name not in released:
            print(f"{name}: no release model (make reproduce ONLY={name}); skipped")
            continue
        model = rel.get(name)[0].eval()
        g = gallery if name == "slow" else SlowGallery(model, p5.gallery, device=device)
        short_out[name] = {"sha256": released[name]["sha256"]["model.safetensors"]}
        for fast_name in ("fast",):
            cand = lists[fast_name]
            parts = []
            for b0 in progress(range(0, len(short_ids), SHORT_BLOCK), desc=f"{name} short lists"):
                ids = short_ids[b0 : b0 + SHORT_BLOCK]
                arrays, _ = cached_arrays(
                    where / f"short_{name}_{fast_name}_{b0:05d}.safetensors",
                    {**protocol_key, "weights": weights(name), "fast": weights(fast_name),
                     "query_ids": ids.tolist(), "k": TEST5K_SHORTLIST_K},
                    lambda ids=ids, c=cand[b0 : b0 + SHORT_BLOCK], g=g: {
                        "scores": _short_scores(g, tok, [p5.queries[i] for i in ids], c,
                                                max_len)})
                parts.append(arrays["scores"])
            sc = np.concatenate(parts)
            inner = np.argsort(-sc, axis=1, kind="stable")
            ranked = np.take_along_axis(cand, inner, 1)
            hit = ranked == p5.gt[short_ids][:, None]
            fast_ranks = np.asarray(fast_out[fast_name]["ranks"])[short_ids]
            ranks = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, fast_ranks)
            entry = {"ranks": ranks.tolist(),
                     "consistent_bits": hits_as_bits(p5.truth[short_ids, ranked[:, 0]])}
            if name == "slow":
                entry["reranked_hits"] = {
                    str(k): hits_as_bits(hits_at(_within_top(cand, sc, p5.gt[short_ids], k), 1))
                    for k in KS}
            short_out[name][fast_name] = entry
            print(f"{name:18s} re-scoring {fast_name}'s top {TEST5K_SHORTLIST_K}: R@1 "
                  f"{proportion_interval(hits_at(ranks, 1))} on {len(short_ids):,} queries",
                  flush=True)
        if g is not gallery:
            del g

    # --- cost, side by side in this run ------------------------------------------------------
    timing = _timing(gallery, rel.get("fast")[0].eval(), tok, p5, slow_ids, max_len, device)

    truth_counts = p5.truth.sum(axis=1)
    record = {
        "world": world.config.key(), "version": TEST5K_VERSION,
        "protocol": {"images": len(p5.gallery), "queries": n_q,
                     "parts": parts_5k(world.test, TEST5K_IMAGES),
                     "ceiling_R@1": round(r1_ceiling(p5.truth), 3),
                     "true_of_one_image": round(100 * float((truth_counts == 1).mean()), 3),
                     "mean_true_images": round(float(truth_counts.mean()), 4)},
        "Ks": list(KS), "student": student, "shortlist_k": TEST5K_SHORTLIST_K,
        "slow_query_ids": slow_ids.tolist(), "shortlist_query_ids": short_ids.tolist(),
        "fast": fast_out,
        "slow_all": {"sha256": released["slow"]["sha256"]["model.safetensors"],
                     "ranks": slow_ranks.tolist(),
                     "consistent_bits": hits_as_bits(p5.truth[slow_ids, slow_top1]),
                     "top1_outside_fast_top100": int(outside.sum()),
                     "seconds": round(slow_seconds, 1) if slow_seconds else None,
                     "reranked_hits": reranked, "reranked_consistent": reranked_consistent},
        "shortlists": short_out,
        "timing": timing,
    }
    path = write_result(Path(args.out) if args.out else "test5k", record, preset=preset,
                        device=device)
    print("wrote", path)


def _fast_arrays(model, tok, p5: RetrievalProtocol, max_len: int, device) -> dict:
    """``top``: each query's Fast top :data:`TEST5K_SHORTLIST_K` ids; ``ranks``: ``(Q, 2)``,
    each query's 1-based rank of its image and its top-1 image."""
    order = fast_orders(model, tok, p5, max_len, device)
    ranks = 1 + np.argmax(order == p5.gt[:, None], axis=1)
    return {"top": np.ascontiguousarray(order[:, :TEST5K_SHORTLIST_K]).astype(np.int64),
            "ranks": np.stack([ranks, order[:, 0]], axis=1).astype(np.int64)}


def _rest(top: np.ndarray, n: int) -> np.ndarray:
    """The images missing from each row of ``top``, in id order (Fast's order beyond the short
    list does not matter for a look-up at K <= its length)."""
    out = np.zeros((len(top), n - top.shape[1]), dtype=top.dtype)
    for i, row in enumerate(top):
        mask = np.ones(n, dtype=bool)
        mask[row] = False
        out[i] = np.flatnonzero(mask)
    return out


def _within_top(cand: np.ndarray, scores: np.ndarray, gt: np.ndarray, k: int) -> np.ndarray:
    """1-based rank of ``gt`` once ``scores`` re-order the first ``k`` of ``cand`` (Fast's
    rank beyond them; ``k + 1`` stands for "outside the list" where it is not in ``cand``)."""
    inner = np.argsort(-scores[:, :k], axis=1, kind="stable")
    ranked = np.concatenate([np.take_along_axis(cand[:, :k], inner, 1), cand[:, k:]], axis=1)
    hit = ranked == gt[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, cand.shape[1] + 1)


def _short_scores(gallery: SlowGallery, tok, texts: list[str], cand: np.ndarray,
                  max_len: int, query_block: int = 16) -> np.ndarray:
    """Each text scored against its own candidates, in blocks of similar length."""
    order = np.argsort([len(t.split()) for t in texts], kind="stable")
    out = np.zeros(cand.shape, dtype=np.float32)
    for s in range(0, len(texts), query_block):
        rows = order[s : s + query_block]
        out[rows] = gallery.candidate_scores(tok, [texts[i] for i in rows], cand[rows],
                                             max_len=max_len)
    return out


def _timing(gallery: SlowGallery, fast, tok, p5: RetrievalProtocol, slow_ids: np.ndarray,
            max_len: int, device) -> dict:
    """Per-query milliseconds of Slow on everything and of Fast + Slow(K), measured here."""
    index = VectorIndex(fast.embed_dim, "flat", device=device)
    index.add(embed_images(fast, p5.gallery, device=device).numpy())
    queries = [p5.queries[i] for i in slow_ids[:64]]
    with Timer(device) as t_all:
        gallery.scores(tok, queries[:16], max_len=max_len)
    slow_ms = 1e3 * t_all.seconds / 16
    out = {"slow_all_ms": round(slow_ms, 2), "slow_all_queries": 16, "rerank_queries": 64,
           "fast_plus_slow_ms": {}}
    for k in (5, 10, 20, 30, 50, 100):
        rerank(queries, fast_model=fast, tokenizer=tok, index=index, gallery=gallery, k=k,
               max_len=max_len)   # warm-up
        with Timer(device) as t:
            rerank(queries, fast_model=fast, tokenizer=tok, index=index, gallery=gallery, k=k,
                   max_len=max_len)
        out["fast_plus_slow_ms"][str(k)] = round(1e3 * t.seconds / len(queries), 3)
    print("timing (ms per query):", out, flush=True)
    return out


if __name__ == "__main__":
    main()
