#!/usr/bin/env python3
"""Provisional Slow trial (issue 4 groundwork): train the captioner, score a query subset.

Trains :class:`fastslow_lib.models.slow.SlowModel` on the cpu world with Fast's budget
(6 epochs x 78 steps of 128, AdamW, warm-up + cosine), then scores N test queries against the
whole 1,000-image test gallery (exhaustively, batched), the compositional probe, and N queries of
the small-object split. To be replaced by the library's Slow training loop and notebook 02.

    python scripts/trial_slow.py ['{"layer_strides": [32, 32, 32]}'] [--queries 100] [--threads 2]

About 6 minutes of training and 4 minutes of scoring per 100 queries on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader

from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.data.datasets import TrainPairs
from fastslow_lib.evaluate import probe_accuracy
from fastslow_lib.metrics import text_to_image_metrics
from fastslow_lib.models.slow import SlowConfig, SlowModel
from fastslow_lib.slow_scoring import slow_pair_scores, slow_scores
from fastslow_lib.tokenizer import encode
from fastslow_lib.training import cosine_schedule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="?", default="{}", help="SlowConfig overrides (JSON)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = load_world("cpu")
    tok = world.tokenizer()
    torch.manual_seed(0)
    model = SlowModel(SlowConfig(vocab_size=len(tok), **json.loads(args.overrides)))
    print(f"parameters {model.num_parameters() / 1e6:.2f}M, layers {model.config.layer_strides}")
    data = TrainPairs(world.train, seed=0)

    def collate(items: list[dict]) -> dict:
        texts = [it["caption"] for it in items]
        return {"image": torch.stack([it["image"] for it in items]),
                "fwd": encode(tok, texts, 48), "bwd": encode(tok, texts, 48, reverse=True)}

    loader = DataLoader(data, batch_size=128, shuffle=True, drop_last=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    total = args.epochs * len(loader)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_schedule(total, max(1, total // 20)))
    start = time.perf_counter()
    for epoch in range(args.epochs):
        data.set_epoch(epoch)
        model.train()
        for batch in loader:
            length = int(batch["fwd"]["attention_mask"].sum(1).max())
            fwd = {k: v[:, :length] for k, v in batch["fwd"].items()}
            bwd = {k: v[:, :length] for k, v in batch["bwd"].items()}
            loss = model(batch["image"], fwd, bwd)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: loss {float(loss.detach()):.3f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    for split in ("test", "small"):
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
        if split == "test":
            probe = probe_accuracy(
                lambda t, i: slow_pair_scores(model, tok, list(t), i, max_len=48), world.probe)
            print("probe", {k: round(v, 1) for k, v in probe.items()}, flush=True)


if __name__ == "__main__":
    main()
