"""Benchmark: time to generate the embedded world's training split, with and without the cache.

Run: ``.venv/bin/python benchmarks/bench_world.py [--preset cpu] [--threads 1]``. Prints a table
and writes ``results/bench_world.json``. The README quotes its figures with the machine named.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from fastslow_course.experiment import provenance, write_result
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data import generate_split, load_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = get_preset(args.preset).world

    t0 = time.perf_counter()
    train = generate_split(cfg, "train")
    gen_train = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        load_world(cfg, tmp)
        gen_all = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_world(cfg, tmp)
        cached = time.perf_counter() - t0

    rows = {
        "train split generated (s)": gen_train,
        "every split + probe generated and cached (s)": gen_all,
        "every split + probe read from the cache (s)": cached,
        "generation / cache read": gen_all / cached,
    }
    print(f"machine: {provenance()['machine']}; preset {args.preset}; {len(train)} training images")
    for k, v in rows.items():
        print(f"  {k:<48} {v:8.2f}")
    out = {
        "preset": args.preset,
        "threads": args.threads,
        "n_train_images": len(train),
        "train_generation_s": round(gen_train, 3),
        "all_generation_s": round(gen_all, 3),
        "cache_read_s": round(cached, 3),
        "cpu_count": os.cpu_count(),
    }
    path = write_result("bench_world", out, indent=1)
    print(f"wrote {path.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
