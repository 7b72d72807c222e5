#!/usr/bin/env python3
"""Train the Fast dual encoder on several processes with DistributedDataParallel.

    torchrun --nproc_per_node 2 scripts/train_ddp.py --preset tiny [--out FOLDER]

Every process trains its slice of each global batch of the preset's Fast budget
(``fastslow_lib.scale.distributed.train_fast_ddp``: the same seed, optimiser, schedule and batch
order as ``train_fast``); rank 0 saves the weights as a course checkpoint (a model
folder: ``model.safetensors``, ``training.json``, ``config.json``; default
``checkpoints/fast_ddp_<preset>``) and prints the final loss and the seconds. On the CPU
(gloo) each process uses one torch thread; with CUDA each process uses GPU ``LOCAL_RANK``
(nccl). Note: BatchNorm normalises with each rank's slice, not the global batch (see the
docstring of fastslow_lib/scale/distributed.py).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download (before transformers loads)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from fastslow_lib.config.presets import PRESETS, get_preset  # noqa: E402
from fastslow_lib.core.cache import training_key  # noqa: E402
from fastslow_lib.core.checkpoint import save_checkpoint  # noqa: E402
from fastslow_lib.core.paths import repo_root  # noqa: E402
from fastslow_lib.data import load_world  # noqa: E402
from fastslow_lib.fast.model import DualEncoder, FastConfig  # noqa: E402
from fastslow_lib.scale.distributed import cleanup, setup, train_fast_ddp  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="world and budget (default: $FASTSLOW_PRESET, else cpu)")
    parser.add_argument("--out", type=Path, default=None,
                        help="model folder to write on rank 0")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where the world is cached (default: the course's data cache)")
    parser.add_argument("--validate", action="store_true",
                        help="validation Recall@1 on rank 0 after every epoch")
    args = parser.parse_args(argv)
    if args.out is not None and args.out.suffix:
        parser.error(f"--out is a model folder (no suffix), got {str(args.out)!r}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Set up the process group, train, save on rank 0, clean up."""
    args = parse_args(argv)
    info = setup()
    try:
        if info.device.type == "cpu":
            torch.set_num_threads(1)  # one core per process
        preset = get_preset(args.preset)
        out = args.out or repo_root() / "checkpoints" / f"fast_ddp_{preset.name}"
        # Rank 0 generates and caches the world and tokenizer first; the others then read them
        # (all ranks writing the same cache files at once could corrupt them).
        if info.is_main:
            world = load_world(preset.world, args.cache_dir)
            tok = world.tokenizer()
        dist.barrier()
        if not info.is_main:
            world = load_world(preset.world, args.cache_dir)
            tok = world.tokenizer()
        cfg = preset.fast_train
        model_config = FastConfig(vocab_size=len(tok), max_len=cfg.max_len, **preset.fast_model)
        torch.manual_seed(cfg.seed)
        model = DualEncoder(model_config)  # DDP copies rank 0's weights to every rank
        if info.is_main:
            print(f"preset {preset.name}: {len(world.train)} training images, global batch "
                  f"{cfg.batch_size} = {info.world_size} ranks x "
                  f"{cfg.batch_size // max(info.world_size, 1)}, {cfg.epochs} epochs, "
                  f"backend {info.backend}, device {info.device}", flush=True)
        history = train_fast_ddp(model, world, tok, cfg, device=info.device,
                                 validate=args.validate)
        if info.is_main:
            config = training_key(model_config.to_dict(), cfg, world.config.key())
            save_checkpoint(model, out, config, extra={"history": history, "ddp": True})
            summary = {key: history[key] for key in
                       ("final_loss", "seconds", "steps", "world_size", "batch_per_rank")}
            if args.validate:
                summary["val_R@1"] = history["val_R@1"][-1]
            print(json.dumps(summary, indent=1))
            print(f"saved {out}", flush=True)
        dist.barrier()
    finally:
        cleanup()


if __name__ == "__main__":
    main()
