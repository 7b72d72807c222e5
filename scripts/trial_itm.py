#!/usr/bin/env python3
"""Short ITM trials beside the release one: results/itm_trials.json (read by notebook 02).

The release ITM (``make reproduce ONLY=itm``) learns to tell a caption's image from its mined
negatives, yet re-ranks Fast's top 10 below Fast's own order. These trials vary one setting at a
time at a shorter budget, each started from the release forward-only captioner as the release
ITM is, on the same mined negatives (the release Fast's, :data:`~fastslow_course.release.
ITM_MINING`):

* ``lr``: the release learning rate (1e-3) may move a pretrained trunk too far;
* ``random``: more random negatives per caption, so that the logits of ordinary images are
  pushed down as well as those of look-alikes.

Each trial records its matching loss per epoch, its training seconds, its validation R@1 (the
release manifest's protocol: :data:`~fastslow_course.manifest.SLOW_VAL_QUERIES` validation
queries against the whole validation gallery) and its R@1 when it re-ranks the release Fast's
top 10 of the 200 test queries of notebook 02 (against Fast's R@1 on them), with per-query ranks.

    python scripts/trial_itm.py [--trials lr2e-4 random5] [--threads 2]

About six minutes per two-epoch trial on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fastslow_course.experiment import result_path, write_result
from fastslow_course.manifest import SLOW_VAL_QUERIES
from fastslow_course.release import Releases, manifest, release_dir
from fastslow_lib.config.presets import get_preset
from fastslow_lib.config.training import SlowTrainConfig
from fastslow_lib.core.checkpoint import WEIGHTS_NAME
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.intervals import hits_at, paired_difference_interval, proportion_interval
from fastslow_lib.core.metrics import ranks_of_gt
from fastslow_lib.core.seed import seed_everything
from fastslow_lib.data import RetrievalProtocol
from fastslow_lib.fast.evaluate import fast_scores
from fastslow_lib.rerank import reranked_ranks
from fastslow_lib.slow.matching import itm_step, start_from_captioner
from fastslow_lib.slow.model import MatchingModel, SlowConfig
from fastslow_lib.slow.scoring import slow_scores
from fastslow_lib.slow.training import train_slow

#: Trial name -> (epochs, lr, hard negatives, random negatives) per caption and step.
TRIALS: dict[str, tuple[int, float, int, int]] = {
    "lr1e-3": (2, 1e-3, 2, 1),
    "lr2e-4": (2, 2e-4, 2, 1),
    "random5": (2, 2e-4, 2, 5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trials", nargs="*", default=list(TRIALS), choices=sorted(TRIALS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device()
    preset = get_preset(args.preset)
    rel = Releases(preset, device, mode="release")
    world, tok = rel.world, rel.tokenizer
    negatives = rel.itm_negatives()
    captioner = rel.get("slow_forward_only")[0]
    fast = rel.get("fast")[0]
    max_len = preset.release_budgets().slow_train.max_len
    test = RetrievalProtocol.from_split(world.test)
    test = test.restrict(test.query_subset(min(preset.slow_queries, len(test.queries)), seed=0))
    fast_test = fast_scores(fast, tok, test, max_len=max_len, device=device)
    fast_hits = hits_at(ranks_of_gt(fast_test, test.gt), 1)
    val = RetrievalProtocol.from_split(world.val)
    val = val.restrict(val.query_subset(min(SLOW_VAL_QUERIES, len(val.queries)), seed=0))
    path = result_path(args.out or "itm_trials")
    trunk = manifest(release_dir(preset))["models"]["slow_forward_only"]
    start_sha = trunk["sha256"][WEIGHTS_NAME]
    old = json.loads(path.read_text()) if path.is_file() else {}
    # trials of another trunk are not kept beside these: each file holds one trunk's trials
    same_trunk = old.get("start_sha256") == start_sha
    kept = old.get("trials", {}) if same_trunk else {}
    trials = {k: v for k, v in kept.items() if k in TRIALS and k not in args.trials}
    for name in args.trials:
        epochs, lr, hard, random = TRIALS[name]
        seed_everything(0)
        cfg = SlowTrainConfig(epochs=epochs, batch_size=32, lr=lr)
        model = MatchingModel(SlowConfig(vocab_size=len(tok), max_len=cfg.max_len,
                                         image_size=world.config.image_size,
                                         bidirectional=False, **preset.slow_model))
        start_from_captioner(model, captioner)
        step = itm_step(negatives, world.train, cfg.seed, hard=hard, random=random)
        t0 = time.perf_counter()
        history = train_slow(model, world, tok, cfg, device=device, step_fn=step,
                             desc=f"ITM trial {name}")
        seconds = time.perf_counter() - t0
        model.eval()
        per_epoch = len(world.train) // cfg.batch_size
        matching = torch.stack(step.matching_losses).float().cpu().numpy()
        val_ranks = ranks_of_gt(slow_scores(model, tok, val.queries, val.gallery,
                                            max_len=max_len, device=device), val.gt)
        rr = reranked_ranks(model, tok, test.queries, test.gallery, test.gt, fast_test, 10,
                            max_len=max_len, device=device)
        gain = paired_difference_interval(hits_at(rr, 1), fast_hits)
        trials[name] = {
            "epochs": epochs, "lr": lr, "hard": hard, "random": random,
            "batch_size": cfg.batch_size, "steps": history["steps"],
            "train_seconds": round(seconds, 1),
            "matching_loss_per_epoch": [round(float(matching[e * per_epoch:(e + 1) * per_epoch]
                                                    .mean()), 4) for e in range(epochs)],
            "guessing_loss": round(float(np.log(1 + hard + random)), 4),
            f"val_R@1_{len(val.queries)}q": round(float(100 * np.mean(val_ranks == 1)), 2),
            "rerank10_R@1": proportion_interval(hits_at(rr, 1)).to_dict(),
            "rerank10_minus_fast_R@1": gain.to_dict(),
            "outcomes": {"rerank10_ranks": rr.tolist(), "val_ranks": val_ranks.tolist()},
        }
        print(f"{name}: {seconds:.0f} s; matching loss per epoch "
              f"{trials[name]['matching_loss_per_epoch']}; val R@1 "
              f"{trials[name][f'val_R@1_{len(val.queries)}q']}; re-ranking Fast's top 10: "
              f"{proportion_interval(hits_at(rr, 1))} ({gain.signed()} over Fast)", flush=True)
        out = {"preset": preset.name,
               "world": world.config.key(), "start": "slow_forward_only (release)",
               "start_sha256": start_sha, "start_budget": trunk["budget"],
               "fast_R@1": proportion_interval(fast_hits).to_dict(),
               "test_queries": len(test.queries), "val_queries": len(val.queries),
               "trials": trials,
               # the release recipe's record on this trunk, where one was kept (notebook 02)
               **({"earlier_release": old["earlier_release"]}
                  if same_trunk and "earlier_release" in old else {})}
        write_result(path, out, device=device)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
