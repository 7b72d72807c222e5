#!/usr/bin/env python3
"""Fast + Slow re-ranking with the method package alone (no course tooling needed).

    pip install -e .                      # the method: fastslow_lib (not course/)
    python examples/rerank.py             # tiny world: trains a small Fast and Slow (seconds)
    python examples/rerank.py --release data/release --preset cpu   # the course's release models

Fast embeds the gallery into a vector index and finds each query's top ``k``; Slow re-scores
only those ``k`` (notebooks/04_rerank.ipynb teaches it). Models come from the registry
(``fastslow_lib.registry.create_model``): loaded from their Hugging Face folders when they match
their recipe, else trained at the preset's short budgets.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import fastslow_lib as fs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="world and sizes (default: tiny)")
    parser.add_argument("--release", type=Path, default=None,
                        help="a folder of trained models (e.g. data/release); default: train "
                             "small ones in a temporary folder")
    parser.add_argument("--k", type=int, default=10, help="Fast's short list (default 10)")
    parser.add_argument("--queries", type=int, default=50, help="test captions to search")
    args = parser.parse_args(argv)
    fs.seed_everything(0)
    preset, device = fs.get_preset(args.preset), fs.pick_device()
    world = fs.load_world(preset.world)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.release if args.release is not None else Path(scratch)
        models = fs.Models(preset, device, root, world=world,
                           budgets=None if args.release is not None else preset.live_budgets(),
                           may_train=args.release is None)
        fast, slow = models.get("fast").model, models.get("slow").model
        tok, test = models.tokenizer, fs.RetrievalProtocol.from_split(world.test)
        index = fs.VectorIndex(fast.config.embed_dim)
        index.add(fs.embed_images(fast, test.gallery, device=device).numpy())
        gallery = fs.SlowGallery(slow, test.gallery, device=device)
        ids = test.query_subset(min(args.queries, len(test.queries)), seed=0)
        result = fs.rerank([test.queries[q] for q in ids], fast_model=fast, tokenizer=tok,
                           index=index, gallery=gallery, k=args.k)
    truth = test.gt[ids]
    fast_r1 = float(np.mean(result.fast_ids[:, 0] == truth)) * 100
    both_r1 = float(np.mean(result.ids[:, 0] == truth)) * 100
    print(f"{len(ids)} queries, {len(test.gallery)} images, k = {args.k}: "
          f"R@1 Fast {fast_r1:.1f}, Fast + Slow({args.k}) {both_r1:.1f}")
    print(f'"{test.queries[ids[0]]}" -> image {result.ids[0, 0]} (true: {truth[0]})')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
