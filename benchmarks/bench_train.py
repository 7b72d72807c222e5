"""Benchmark: how long the course's two main trainings take on this machine.

Run: ``.venv/bin/python benchmarks/bench_train.py [--preset cpu] [--device cuda] [--only fast]``.
Prints a table and writes ``results/bench_train.json`` (or ``--out``).

Trains, from scratch and without touching ``checkpoints/``, the Fast dual encoder (notebook 01)
and the Slow captioner (notebook 02) of a preset with exactly the budget the notebooks use, and
reports wall-clock seconds, steps per second and the quality reached (Fast: validation Recall@1
after the last epoch; Slow: the mean loss of the last epoch), so that a run on a GPU can be set
beside the CPU figures the README states. On a 2-core CPU the cpu preset takes about 2.5 minutes
for Fast and 5 for Slow.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fastslow_course.experiment import provenance, write_result
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.seed import seed_everything
from fastslow_lib.core.timing import synchronize
from fastslow_lib.data import load_world
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.training import train_fast
from fastslow_lib.slow.model import SlowConfig, SlowModel
from fastslow_lib.slow.training import train_slow


def main() -> None:
    """Train Fast and/or Slow of ``--preset`` on ``--device``; print and save the timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default=None, help="default: cuda, then mps, then cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["fast", "slow"], default=None)
    parser.add_argument("--out", type=Path, default=None, help="default results/bench_train.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else pick_device()
    preset = get_preset(args.preset)
    t0 = time.perf_counter()
    world = load_world(preset.world)
    world_s = time.perf_counter() - t0
    tok = world.tokenizer()
    rows = {}
    if args.only in (None, "fast"):
        cfg = preset.fast_train
        seed_everything(cfg.seed)
        model = DualEncoder(FastConfig(vocab_size=len(tok), max_len=cfg.max_len,
                                       **preset.fast_model))
        hist = train_fast(model, world, tok, cfg, device=device)
        synchronize(device)
        rows["fast"] = {"seconds": hist["seconds"], "steps": hist["steps"],
                        "steps_per_s": hist["steps"] / hist["seconds"],
                        "parameters": model.num_parameters(),
                        "quality": {"val_R@1": hist["val_R@1"][-1]}}
        print(f"Fast: {hist['seconds']:.1f} s, {hist['steps']} steps, "
              f"val R@1 {hist['val_R@1'][-1]:.1f}", flush=True)
    if args.only in (None, "slow"):
        cfg = preset.slow_train
        seed_everything(cfg.seed)
        model = SlowModel(SlowConfig(vocab_size=len(tok), max_len=cfg.max_len,
                                     image_size=world.config.image_size, **preset.slow_model))
        hist = train_slow(model, world, tok, cfg, device=device)
        synchronize(device)
        rows["slow"] = {"seconds": hist["seconds"], "steps": hist["steps"],
                        "steps_per_s": hist["steps"] / hist["seconds"],
                        "parameters": model.num_parameters(),
                        "quality": {"final_loss": hist["final_loss"]}}
        print(f"Slow: {hist['seconds']:.1f} s, {hist['steps']} steps, "
              f"final loss {hist['final_loss']:.3f}", flush=True)

    stamp = provenance(device=device)
    print(f"\nTraining the {preset.name} preset on {stamp['machine']}, {stamp['device']}"
          f" (world loaded or generated in {world_s:.1f} s)")
    print(f"{'model':<6}{'params':>10}{'steps':>8}{'seconds':>10}{'steps/s':>10}  quality")
    for name, r in rows.items():
        quality = ", ".join(f"{k} {v:.3f}" for k, v in r["quality"].items())
        print(f"{name:<6}{r['parameters']:>10,}{r['steps']:>8}{r['seconds']:>10.1f}"
              f"{r['steps_per_s']:>10.2f}  {quality}")
    out = {"threads": args.threads, "preset": preset.name, "world_seconds": world_s, "rows": rows}
    path = write_result(args.out or "bench_train", out, device=device, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
