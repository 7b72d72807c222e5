#!/usr/bin/env python3
"""Slow trial runner: train one captioner configuration, score a query subset, print the numbers.

Trains :class:`fastslow_lib.slow.model.SlowModel` on the cpu world with Fast's budget
(6 epochs x 156 steps of 64, AdamW lr 2e-3, warm-up + cosine), then scores N test queries against
the whole 1,000-image test gallery (exhaustively, batched), the compositional probe, and N
queries of the small-object split. Used to choose the cpu preset's Slow model (see ``SlowConfig``);
notebook 02 trains and evaluates the chosen one.

    python scripts/trial_slow.py ['{"layer_strides": [32, 32, 32]}'] [--queries 100] [--threads 2]
    python scripts/trial_slow.py --epochs 15 --queries 200 --json results/slow_budget.json \
        --name "15 epochs of 64"

About 4 minutes of training and 1.5 minutes of scoring per 100 queries on 2 cores.

``--json PATH --name NAME`` adds the run's figures under ``NAME`` to ``PATH`` (other runs kept):
``results/slow_budget.json`` holds the budget runs notebook 02 shows (section 8), where the
position bindings the cpu preset's 6 epochs miss appear with a longer budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fastslow_course.experiment import write_result
from fastslow_lib.config.presets import get_preset
from fastslow_lib.config.training import SlowTrainConfig
from fastslow_lib.core.metrics import text_to_image_metrics
from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.fast.evaluate import probe_accuracy
from fastslow_lib.slow.model import SlowConfig, SlowModel
from fastslow_lib.slow.scoring import slow_pair_scores, slow_scores
from fastslow_lib.slow.training import train_slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="?", default="{}", help="SlowConfig overrides (JSON)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--splits", nargs="+", default=["test", "small"])
    parser.add_argument("--save", default=None, help="save the trained model to this model folder")
    parser.add_argument("--json", default=None, help="add this run's figures to this JSON file")
    parser.add_argument("--name", default=None, help="the run's name in --json")
    args = parser.parse_args()
    if (args.json is None) != (args.name is None):
        parser.error("--json and --name go together")
    torch.set_num_threads(args.threads)
    world = load_world(get_preset("cpu").world)
    tok = world.tokenizer()
    torch.manual_seed(0)
    cfg = SlowTrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch)
    model = SlowModel(SlowConfig(vocab_size=len(tok), **json.loads(args.overrides)))
    print(f"parameters {model.num_parameters() / 1e6:.2f}M, layers {model.config.layer_strides}")
    history = train_slow(model, world, tok, cfg)
    if args.save:
        from fastslow_lib.core.checkpoint import save_checkpoint

        save_checkpoint(model, args.save, model.config.to_dict(), {"history": history})
    print(f"trained in {history['seconds']:.0f} s; epoch losses",
          [round(x, 3) for x in history["epoch_loss"]], flush=True)
    run = {"overrides": json.loads(args.overrides), "train": cfg.to_dict(),
           "train_seconds": round(history["seconds"], 1),
           "epoch_loss": [round(x, 4) for x in history["epoch_loss"]]}
    for split in args.splits:
        protocol = RetrievalProtocol.from_split(world[split])
        q = protocol.query_subset(args.queries, seed=0)
        t0 = time.perf_counter()
        scores = slow_scores(model, tok, [protocol.queries[i] for i in q], protocol.gallery,
                             max_len=48)
        seconds = time.perf_counter() - t0
        metrics = text_to_image_metrics(scores, protocol.gt[q])
        print(f"{split}: {args.queries} queries x {len(protocol.gallery)} images in "
              f"{seconds:.0f} s ({scores.size / seconds:.0f} pairs/s):",
              {k: round(v, 1) for k, v in metrics.items()}, flush=True)
        run[f"{split}_queries"] = args.queries
        run.update({f"{split}_{k}": round(float(v), 2) for k, v in metrics.items()})
        if split == "test":
            probe = probe_accuracy(
                lambda t, i: slow_pair_scores(model, tok, list(t), i, max_len=48), world.probe)
            print("probe", {k: round(v, 1) for k, v in probe.items()}, flush=True)
            run.update({k: round(float(v), 2) for k, v in probe.items()})
    if args.json:
        path = Path(args.json)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.update({"world": world.config.key(),
                     "protocol": f"test: query_subset({args.queries}, seed=0) x the "
                                 "1,000 test images (notebook 02's subset when 200); probe: all "
                                 "pairs"})
        data.setdefault("runs", {})[args.name] = {"date": time.strftime("%Y-%m-%d"), **run}
        write_result(path, data, indent=1)
        print("wrote", path)


if __name__ == "__main__":
    main()
