#!/usr/bin/env python3
"""The Slow ablations of notebook 02 at the full budget: writes results/slow_ablations.json.

Each variant changes one thing in the preset's Slow model and is trained with exactly the main
model's budget (``preset.slow_train``: the same epochs, batch, learning rate and seed):

* upsampling: decoder layers on pyramid levels (32, 16, 8) (two steps: the main model),
  (32, 16, 16) (one step) and (32, 32, 32) (none);
* direction: a forward-only captioner against the bidirectional main model;
* objective: an ITM model (:class:`~fastslow_lib.slow.model.MatchingModel`, the same pyramid
  and one decoder trunk of the same size) trained with binary cross-entropy on matching pairs and
  hard negatives mined by Fast (``fastslow_lib.slow.matching``), against the captioners.

Every model is scored on the notebook's protocols: the same 200 test queries against all 1,000
test images (exhaustive), 200 small-object queries against a 100-image small-split gallery
(``RetrievalProtocol.sub_gallery``, seed 0), and the compositional probe. Checkpoints go to
``checkpoints/`` (load-if-present, so a rerun only re-scores). Notebook 02 shows the table and
checks that it was made for the current configuration.

    python scripts/slow_ablations.py [--preset cpu] [--threads 2]

About 20 minutes on 2 cores (five trainings of 2.5 to 4.5 minutes, the main model's included,
and scoring); a few minutes when the checkpoints exist.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch

from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import describe_device, machine_name, pick_device
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.fast.evaluate import probe_accuracy, retrieval_report
from fastslow_lib.fast.training import get_fast_model
from fastslow_lib.slow.matching import get_matching_model, mine_hard_negatives
from fastslow_lib.slow.scoring import slow_pair_scores, slow_scores
from fastslow_lib.slow.training import get_slow_model

#: Variant name -> (checkpoint tag, SlowConfig overrides on top of the preset's; None: ITM).
VARIANTS: dict[str, tuple[str, dict | None]] = {
    "two steps (32, 16, 8), bidirectional": ("main", {}),
    "one step (32, 16, 16), bidirectional": ("one_step", {"layer_strides": (32, 16, 16)}),
    "none (32, 32, 32), bidirectional": ("none", {"layer_strides": (32, 32, 32)}),
    "two steps, forward only": ("forward_only", {"bidirectional": False}),
    "ITM, two steps, one trunk": ("itm", None),
}


def ablation_protocols(world, n_queries: int) -> dict[str, RetrievalProtocol]:
    """The notebook's protocols: test queries x whole test gallery, small-object 100-gallery."""
    test = RetrievalProtocol.from_split(world.test)
    test = test.restrict(test.query_subset(min(n_queries, len(test.queries)), seed=0))
    small = RetrievalProtocol.from_split(world.small)
    n_images = min(100, len(world.small))
    small = small.sub_gallery(n_images, min(200, 5 * n_images), seed=0)
    return {"test": test, "small100": small}


def evaluate(model, tok, world, protocols, max_len: int, device) -> dict[str, float]:
    """Test R@1/5/10 and consistent@1, small-split R@1, probe accuracy (overall and per kind)."""
    out: dict[str, float] = {}
    for name, prot in protocols.items():
        scores = slow_scores(model, tok, prot.queries, prot.gallery, max_len=max_len,
                             device=device)
        report = retrieval_report(scores, prot)
        keys = ("R@1", "R@5", "R@10", "consistent@1") if name == "test" else ("R@1",)
        out.update({f"{name}_{k}": round(report[k], 2) for k in keys})
    probe = probe_accuracy(
        lambda t, i: slow_pair_scores(model, tok, list(t), i, max_len=max_len, device=device),
        world.probe)
    out.update({k: round(v, 2) for k, v in probe.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(VARIANTS),
                        help="run these variants; keep the others' rows from the existing file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device()
    preset = get_preset(args.preset)
    world = load_world(preset.world)
    tok = world.tokenizer()
    cfg = preset.slow_train
    ckpt = repo_root() / "checkpoints"
    protocols = ablation_protocols(world, preset.slow_queries)
    fast, _, _ = get_fast_model(world, tok, preset.fast_model, preset.fast_train,
                                ckpt / f"fast_{preset.name}.safetensors", device=device)
    path_out = args.out or repo_root() / "results" / "slow_ablations.json"
    results: dict[str, dict] = {}
    if args.only is not None and path_out.exists():
        results = dict(json.loads(path_out.read_text())["results"])
    for name, (tag, over) in VARIANTS.items():
        if args.only is not None and name not in args.only:
            continue
        t0 = time.perf_counter()
        path = ckpt / (f"slow_{preset.name}.safetensors" if tag == "main"
                       else f"slow_{preset.name}_ablation_{tag}.safetensors")
        if over is None:
            negatives = mine_hard_negatives(fast, tok, world.train, k=8,
                                            max_len=preset.fast_train.max_len, device=device)
            model, history, loaded = get_matching_model(
                world, tok, preset.slow_model, cfg, path, negatives, device=device)
        else:
            model, history, loaded = get_slow_model(world, tok, {**preset.slow_model, **over},
                                                    cfg, path, device=device)
        metrics = evaluate(model, tok, world, protocols, cfg.max_len, device)
        results[name] = {"overrides": over, "parameters": model.num_parameters(),
                         "train_seconds": round(history["seconds"], 1), "loaded": loaded,
                         "final_loss": round(history["final_loss"], 4), **metrics}
        if "final_matching_loss" in history:
            results[name]["final_matching_loss"] = round(history["final_matching_loss"], 4)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", {k: v for k, v in metrics.items()
                                                           if k.endswith("R@1") or k == "probe"},
              flush=True)
    out = {
        "machine": machine_name(), "device": describe_device(device),
        "date": dt.date.today().isoformat(), "preset": preset.name,
        "slow_model": preset.slow_model, "slow_train": cfg.to_dict(),
        "world": world.config.key(), "queries": len(protocols["test"].queries),
        "protocols": {"test": f"{len(protocols['test'].queries)} test queries x "
                              f"{len(protocols['test'].gallery)} images (exhaustive)",
                      "small100": f"{len(protocols['small100'].queries)} small-object queries x "
                                  f"{len(protocols['small100'].gallery)} images"},
        "results": {name: results[name] for name in VARIANTS if name in results},
    }
    path = path_out
    path.write_text(json.dumps(out, indent=1, default=list) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
