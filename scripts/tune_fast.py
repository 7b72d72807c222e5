#!/usr/bin/env python3
"""What was tuned for the Fast dual encoder, measured: a small sweep on the cpu world.

Every trial trains Fast with the cpu preset's budget (epochs, batch size) and changes one
setting: the learning rate, the initial temperature, or the text encoder (ModernBERT with
rotary positions against BERT with learned absolute positions). Trials are judged on the
**validation** split (Recall@1 over its 5,000 captions) and on the compositional probe; the test
split is left for notebook 01. Results go to ``results/tune_fast.json`` with the machine named;
notebook 01 shows them as a table.

    python scripts/tune_fast.py [--threads 2] [--only NAME ...]

About 3 minutes per 6-epoch trial on 2 cores (all seven trials: about 30 minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from fastslow_course.experiment import result_path, write_result
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.metrics import text_to_image_metrics
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.fast.evaluate import fast_pair_scorer, fast_scores, probe_accuracy, twin_cosines
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.training import train_fast

#: name -> (FastTrainConfig overrides, FastConfig overrides). "chosen" is the cpu preset.
TRIALS: dict[str, tuple[dict, dict]] = {
    "chosen": ({}, {}),
    "lr 1e-3": ({"lr": 1e-3}, {}),
    "lr 6e-3": ({"lr": 6e-3}, {}),
    "init temperature 0.2": ({}, {"init_temperature": 0.2}),
    "BERT text tower": ({}, {"text_encoder": "bert"}),
    "BERT text tower, 12 epochs": ({"epochs": 12}, {"text_encoder": "bert"}),
    "12 epochs": ({"epochs": 12}, {}),
    "batch 64 (twice the steps)": ({"batch_size": 64}, {}),
}


def run_trial(name: str, world, tok, threads: int) -> dict:
    """Train one trial from scratch (seed 0) and measure it on val and the probe."""
    preset = get_preset("cpu")
    train_over, model_over = TRIALS[name]
    cfg = dataclasses.replace(preset.fast_train, **train_over)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    model = DualEncoder(FastConfig(vocab_size=len(tok), max_len=cfg.max_len,
                                   **{**preset.fast_model, **model_over}))
    history = train_fast(model, world, tok, cfg)
    val = RetrievalProtocol.from_split(world.val)
    scores = fast_scores(model, tok, val, max_len=cfg.max_len)
    probe = probe_accuracy(fast_pair_scorer(model, tok, max_len=cfg.max_len), world.probe)
    cos = twin_cosines(model, tok, world.probe, max_len=cfg.max_len)
    return {
        "train": train_over, "model": model_over,
        "epochs": cfg.epochs, "lr": cfg.lr, "steps": history["steps"],
        "train_seconds": round(history["seconds"], 1),
        "val_R@1_per_epoch": [round(v, 2) for v in history["val_R@1"]],
        "val_R@1": round(text_to_image_metrics(scores, val.gt)["R@1"], 2),
        "probe": round(probe["probe"], 2),
        **{k: round(v, 2) for k, v in probe.items() if k != "probe"},
        "text_twin_cosine_colour": round(cos["text_colour"], 4),
        "final_temperature": round(history["temperature"][-1], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=sorted(TRIALS), default=None)
    args = parser.parse_args()
    world = load_world(get_preset("cpu").world)
    tok = world.tokenizer()
    out_path = result_path("tune_fast")
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results.setdefault("trials", {})
    results.setdefault("machine", None)  # the provenance's place (write_result stamps it)
    for name in args.only or list(TRIALS):
        start = time.perf_counter()
        results["trials"][name] = run_trial(name, world, tok, args.threads)
        row = results["trials"][name]
        print(f"{name:28s} val R@1 {row['val_R@1']:5.1f}  probe {row['probe']:5.1f}  "
              f"({row['train_seconds']:.0f} s training, {time.perf_counter() - start:.0f} s)",
              flush=True)
        results["threads"] = args.threads
        results["selection"] = "validation split (1,000 images, 5,000 captions) and the probe"
        write_result(out_path, results, indent=2)
    print("wrote", out_path.relative_to(repo_root()))


if __name__ == "__main__":
    main()
