#!/usr/bin/env python3
"""Train and evaluate Fast on Flickr30K or COCO (Karpathy splits), towers pretrained or not.

    python scripts/train_real.py --split-file dataset_flickr30k.json --images flickr30k-images/ \\
        --vision lite0 --text minilm --preset gpu --image-size 224

Loads the train (with ``restval``), val and test splits (``--max-items`` keeps the first n images
of each, for a quick run), trains the Fast dual encoder with the preset's budget
(``--epochs``, ``--batch-size``, ``--lr`` override it) and reports text-to-image and image-to-text
Recall@1/5/10 on the test split (all its captions against all its images: Flickr30K's and COCO's
1k / 5k test protocols). Writes the weights to
``checkpoints/real_<dataset>_<vision>_<text>/`` (a model folder) and the figures to
``results/real_<dataset>_<vision>_<text>.json`` (machine, device, budget, metrics).
Nothing is downloaded: see ``fastslow_lib.scale.real_training`` and the README.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download (before transformers loads)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from fastslow_course.experiment import stamped, write_result  # noqa: E402
from fastslow_lib.config.presets import PRESETS, get_preset  # noqa: E402
from fastslow_lib.core.checkpoint import save_checkpoint  # noqa: E402
from fastslow_lib.core.device import pick_device  # noqa: E402
from fastslow_lib.core.paths import repo_root  # noqa: E402
from fastslow_lib.data.karpathy import load_karpathy  # noqa: E402
from fastslow_lib.scale.real_training import (  # noqa: E402
    TEXT_CHOICES,
    VISION_CHOICES,
    RealData,
    train_and_evaluate_real,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split-file", type=Path, required=True,
                        help="dataset_flickr30k.json or dataset_coco.json (Karpathy splits)")
    parser.add_argument("--images", type=Path, required=True, help="the image folder")
    parser.add_argument("--vision", choices=VISION_CHOICES, default="scratch",
                        help="vision tower: from scratch, or ImageNet EfficientNet-Lite0")
    parser.add_argument("--text", choices=TEXT_CHOICES, default="scratch",
                        help="text tower: from scratch (word-level), or MiniLM (WordPiece)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="budget and tower sizes (default: $FASTSLOW_PRESET, else cpu)")
    parser.add_argument("--image-size", type=int, default=64, help="square image side (pixels)")
    parser.add_argument("--max-items", type=int, default=None,
                        help="keep the first n images of each split (a quick run)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None,
                        help="default: the preset's, or 1e-4 when a tower is pretrained")
    parser.add_argument("--root", type=Path, default=None,
                        help="where checkpoints/ and results/ go (default: the repository)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Load, train, evaluate, save; print the test metrics; return the written record."""
    args = parse_args(argv)
    preset = get_preset(args.preset)
    root = args.root or repo_root()
    device = pick_device()
    data = RealData(*(load_karpathy(args.split_file, args.images, split,
                                    image_size=args.image_size, max_items=args.max_items)
                      for split in ("train", "val", "test")))
    pretrained = args.vision != "scratch" or args.text != "scratch"
    changes = {"epochs": args.epochs, "batch_size": args.batch_size,
               "lr": args.lr if args.lr is not None else (1e-4 if pretrained else None)}
    cfg = replace(preset.fast_train, **{k: v for k, v in changes.items() if v is not None})
    out = train_and_evaluate_real(data, vision=args.vision, text=args.text, cfg=cfg,
                                  fast_model=preset.fast_model,
                                  weights_dir=root / "checkpoints", device=device)
    dataset = data.test.name.split("-")[0]
    name = f"real_{dataset}_{args.vision}_{args.text}"
    record = stamped({
        "preset": preset.name, "dataset": dataset,
        "vision": args.vision, "text": args.text, "image_size": args.image_size,
        "images": {s: len(getattr(data, s)) for s in ("train", "val", "test")},
        "train": out["train"], "train_seconds": round(out["history"]["seconds"], 1),
        "val_R@1": out["history"]["val_R@1"], "test": out["test"],
    }, device=device)
    save_checkpoint(out["model"], root / "checkpoints" / name,
                    out["model"].config, extra={"run": record})
    path = write_result(name, record, device=device, indent=2, results_dir=root / "results")
    t = out["test"]
    print(f"{dataset} test ({record['images']['test']} images): text-to-image R@1 {t['R@1']:.1f} "
          f"R@5 {t['R@5']:.1f} R@10 {t['R@10']:.1f}; image-to-text R@1 {t.get('i2t_R@1', 0):.1f}; "
          f"trained {record['train_seconds']:.0f} s on {record['device']}; wrote {path}")
    return record


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
