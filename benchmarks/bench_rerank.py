"""Benchmark: Slow on everything against Fast + Slow re-ranking of Fast's top K.

Run: ``.venv/bin/python benchmarks/bench_rerank.py [--sizes 1000 10000] [--k 10]
[--queries 64] [--base-queries 200] [--threads 2]``. Prints a table and writes
``results/bench_rerank.json``.

The gallery is the test split (1,000 images) plus generated distractor images drawn like it
(:func:`fastslow_lib.data.generate_distractors`) up to each size N. Both sides start from what
is computed offline, once per gallery: Fast's image embeddings in the index, and Slow's image
side (:class:`fastslow_lib.rerank.SlowGallery`: every decoder layer's cross-attention keys and
values). Per query, then:

* **Slow on everything**: both decoders score the query against all N cached images
  (:meth:`SlowGallery.scores`). Its batched scorer sorts queries by length into blocks of 8, so
  its cost per query is measured on ``--base-queries`` queries (default 200) at the first size;
  at each larger size, 8 queries are timed and the base cost grows by the same ratio (8 queries
  alone pad to the longest of them: their own time per query would flatter re-ranking);
* **Fast + Slow(K)** (:func:`fastslow_lib.rerank.rerank`): encode the query with Fast, search
  the index for the top K, score those K with Slow, sort; timed per stage on ``--queries``
  queries, in blocks of 16 queries.

Speed-up = (Slow-on-everything seconds per query) / (Fast+Slow seconds per query), beside the
ideal N / K and the **limit** the device's own stage times leave: Slow on everything over
(text encoding + index search + K x a pair's share of Slow on everything), the best re-ranking
could do if a pair of the short list cost what a pair of Slow on everything does. The
course's target: at least 0.6 N / K at N = 1,000 and 10,000 (calibrated on a 2-core CPU; on a
GPU the fixed stages and kernel launches weigh more, see notebook 04, section 9). The release
models are used so the recall column means something (the weights do not change the cost).
Wall-clock on whatever else the machine runs; the ratio is from one run.

``scripts/gpu_figures.sh`` runs this on a GPU with ``--query-block 16`` and ``200`` (the
committed ``results/bench_rerank_gpu_qb16.json`` and ``_qb200.json``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fastslow_course.experiment import write_result
from fastslow_course.release import manifest, release_dir, release_model
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.timing import StageTimer, synchronize
from fastslow_lib.data import generate_distractors, load_world
from fastslow_lib.fast.evaluate import embed_images
from fastslow_lib.fast.index import VectorIndex
from fastslow_lib.rerank import SlowGallery, rerank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=64, help="queries timed for Fast+Slow")
    parser.add_argument("--base-queries", type=int, default=200,
                        help="queries timing Slow on everything at the first size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--query-block", type=int, default=16,
                        help="queries Slow re-scores per decoder call (rerank's query_block)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default=None, help="default: cuda, then mps, then cpu")
    parser.add_argument("--out", type=Path, default=None, help="default results/bench_rerank.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else pick_device()
    preset = get_preset(args.preset)
    world = load_world(preset.world)
    tok = world.tokenizer()
    # The release models (data/release/; FASTSLOW_TRAIN=full trains them at the release budget).
    fast, _, _ = release_model("fast", preset, device=device, world=world)
    slow, _, _ = release_model("slow", preset, device=device, world=world)
    max_len = preset.release_budgets().fast_train.max_len
    test = world.test
    extra_n = max(args.sizes) - len(test)
    extra = generate_distractors(world.config, extra_n)[0] if extra_n > 0 else test.images[:0]
    all_images = np.concatenate([test.images, extra])
    rng = np.random.default_rng(0)
    picked = rng.choice(len(test.captions), size=args.queries, replace=False)
    queries = [test.captions[i] for i in picked]
    truth = test.caption_image[picked]
    base_queries = [test.captions[i] for i in rng.choice(len(test.captions), size=args.base_queries,
                                                         replace=False)]

    rows = []
    for n in args.sizes:
        images = all_images[:n]
        t0 = time.perf_counter()
        index = VectorIndex(fast.embed_dim, "flat", device=device)
        index.add(embed_images(fast, images, device=device).numpy())
        gallery = SlowGallery(slow, images, device=device)
        synchronize(device)
        offline = time.perf_counter() - t0
        # Slow on everything: seconds per query (see the module docstring).
        if n == args.sizes[0]:
            gallery.scores(tok, queries[:1], max_len=max_len)  # warm-up
            synchronize(device)
            t0 = time.perf_counter()
            gallery.scores(tok, base_queries, max_len=max_len)
            synchronize(device)
            base_per_query = (time.perf_counter() - t0) / len(base_queries)
        t0 = time.perf_counter()
        gallery.scores(tok, queries[:8], max_len=max_len)
        synchronize(device)
        eight = time.perf_counter() - t0
        if n == args.sizes[0]:
            eight_base = eight
        slow_per_query = base_per_query * eight / eight_base
        # Fast + Slow(K): per stage.
        rerank(queries[:16], fast_model=fast, tokenizer=tok, index=index, gallery=gallery,
               k=args.k, query_block=args.query_block)  # warm-up
        runs = []
        for _ in range(3):  # the median of 3 runs
            timer = StageTimer(device)
            out = rerank(queries, fast_model=fast, tokenizer=tok, index=index, gallery=gallery,
                         k=args.k, query_block=args.query_block, timer=timer)
            runs.append({name: s / len(queries) for name, s in timer.totals().items()})
        stages = sorted(runs, key=lambda r: sum(r.values()))[1]
        fs_per_query = sum(stages.values())
        fixed = stages.get("text encoding", 0.0) + stages.get("index search", 0.0)  # per query
        rows.append({
            "N": n, "K": args.k, "offline_s": round(offline, 2),
            "slow_all_ms_per_query": 1e3 * slow_per_query,
            "fast_slow_ms_per_query": 1e3 * fs_per_query,
            "stages_ms_per_query": {k: 1e3 * v for k, v in stages.items()},
            "speedup": slow_per_query / fs_per_query,
            "ideal": n / args.k,
            "limit": slow_per_query / (fixed + args.k * slow_per_query / n),
            "fraction_of_ideal": slow_per_query / fs_per_query / (n / args.k),
            "fast_slow_R@1": float(100 * np.mean(out.ids[:, 0] == truth)),
            "slow_gallery_MB": gallery.nbytes() / 2**20,
        })
        print(f"N={n}: offline {offline:.1f} s, Slow-all {1e3 * slow_per_query:.1f} ms/query, "
              f"Fast+Slow(K={args.k}) {1e3 * fs_per_query:.2f} ms/query", flush=True)
        del gallery, index

    print(f"\n{'N':>7} {'Slow-all ms/q':>14} {'Fast+Slow ms/q':>15} {'speed-up':>9} "
          f"{'ideal N/K':>10} {'of ideal':>9} {'limit':>7} {'of limit':>9}")
    for r in rows:
        print(f"{r['N']:>7} {r['slow_all_ms_per_query']:>14.1f}"
              f" {r['fast_slow_ms_per_query']:>15.2f} {r['speedup']:>8.0f}x"
              f" {r['ideal']:>9.0f}x {r['fraction_of_ideal']:>9.2f}"
              f" {r['limit']:>6.0f}x {r['speedup'] / r['limit']:>9.2f}")
    print("\nFast+Slow per stage (ms per query):")
    for r in rows:
        print(f"  N={r['N']}: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                           r["stages_ms_per_query"].items()))
    result = {
        "threads": args.threads, "query_block": args.query_block,
        "preset": preset.name, "queries": args.queries, "base_queries": args.base_queries,
        "rows": rows,
        # the weights timed (a claims row compares them with today's release models)
        "models": {n: manifest(release_dir(preset))["models"][n]["sha256"]["model.safetensors"]
                   for n in ("fast", "slow")},
    }
    out_path = write_result(args.out or "bench_rerank", result, device=device, indent=1)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
