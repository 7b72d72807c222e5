#!/usr/bin/env python3
"""The Slow ablations of notebook 02, scored on the release models: results/slow_ablations.json.

Each variant changes one thing in the preset's Slow model and was trained by ``make reproduce``
with exactly the main model's release budget (``preset.release.slow_train``: the same epochs,
batch, learning rate and seed):

* upsampling: decoder layers on pyramid levels (32, 16, 8) (two steps: the main model, release
  ``slow``) against (32, 32, 32) (none: ``slow_coarse_only``);
* direction: a forward-only captioner (``slow_forward_only``) against the bidirectional one;
* objective: an ITM model (``itm``: :class:`~fastslow_lib.slow.model.MatchingModel`, the same
  pyramid and one decoder trunk of the same size), started from ``slow_forward_only`` and
  trained with a listwise matching loss over each caption's image, hard negatives mined by the
  release Fast and a random image (``fastslow_lib.slow.matching``;
  ``preset.release.itm_train``).

Every model, and the release Fast for reference, is scored on the notebook's protocols: the same
200 test queries against all 1,000 test images (exhaustive), 200 small-object queries against a
100-image small-split gallery (``RetrievalProtocol.sub_gallery``, seed 0), and the compositional
probe. Each Slow-type model also re-ranks the release Fast's top :data:`RERANK_K` of every test
query (``rerank10_ranks``: the rank after re-ranking, Fast's own rank where the right image is
not in its top K), the way ITM heads are used in ALBEF and BLIP. Each row keeps the sha256 of
the weights it scored (notebook 02 checks them against the release manifest), its figures, and
its per-query ``outcomes``: the 1-based rank of the right image for every query of each protocol
(``test_ranks``, ``small100_ranks``, in the protocols' query order, the same for every row) and
every probe pair's outcome (``probe``, ``probe_<kind>``:
0, 0.5 or 1, :func:`~fastslow_lib.fast.evaluate.probe_outcomes`), from which notebook 02 and the
claims table compute 95% intervals and paired differences.

    python scripts/slow_ablations.py [--preset cpu] [--threads 2] [--only itm]

``--only NAME ...`` rescores those release models and keeps the other rows of the existing file
whose sha256 still matches the manifest (any other row is rescored too).

A few minutes on 2 cores (scoring only; the models come from data/release/).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fastslow_course.experiment import result_path, write_result
from fastslow_course.release import Releases, manifest
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.metrics import ranks_of_gt
from fastslow_lib.data import RetrievalProtocol
from fastslow_lib.fast.evaluate import (
    fast_pair_scorer,
    fast_scores,
    probe_outcomes,
    retrieval_report,
)
from fastslow_lib.rerank import reranked_ranks
from fastslow_lib.slow.scoring import slow_pair_scores, slow_scores

#: Row name -> release model.
VARIANTS: dict[str, str] = {
    "two steps (32, 16, 8), bidirectional": "slow",
    "none (32, 32, 32), bidirectional": "slow_coarse_only",
    "two steps, forward only": "slow_forward_only",
    "ITM, two steps, one trunk": "itm",
    "Fast (release)": "fast",
}


#: Fast's candidates per test query that each Slow-type model re-ranks.
RERANK_K = 10


def ablation_protocols(world, n_queries: int) -> dict[str, RetrievalProtocol]:
    """The notebook's protocols: test queries x whole test gallery, small-object 100-gallery."""
    test = RetrievalProtocol.from_split(world.test)
    test = test.restrict(test.query_subset(min(n_queries, len(test.queries)), seed=0))
    small = RetrievalProtocol.from_split(world.small)
    n_images = min(100, len(world.small))
    small = small.sub_gallery(n_images, min(200, 5 * n_images), seed=0)
    return {"test": test, "small100": small}


def evaluate(model, tok, world, protocols, max_len: int, device) -> dict:
    """Test R@1/5/10 and consistent@1, small-split R@1, probe accuracy (overall and per kind),
    and under ``outcomes`` the per-query ranks and per-pair probe outcomes they come from."""
    out: dict = {}
    outcomes: dict[str, list] = {}
    fast = hasattr(model, "encode_text")
    for name, prot in protocols.items():
        if fast:
            scores = fast_scores(model, tok, prot, max_len=max_len, device=device)
        else:
            scores = slow_scores(model, tok, prot.queries, prot.gallery, max_len=max_len,
                                 device=device)
        report = retrieval_report(scores, prot)
        keys = ("R@1", "R@5", "R@10", "consistent@1") if name == "test" else ("R@1",)
        out.update({f"{name}_{k}": round(report[k], 2) for k in keys})
        outcomes[f"{name}_ranks"] = [int(r) for r in ranks_of_gt(scores, prot.gt)]
    scorer = (fast_pair_scorer(model, tok, max_len=max_len, device=device) if fast else
              lambda t, i: slow_pair_scores(model, tok, list(t), i, max_len=max_len,
                                            device=device))
    probe = probe_outcomes(scorer, world.probe)
    out.update({k: round(float(100.0 * v.mean()), 2) for k, v in probe.items()})
    outcomes.update({k: [float(x) for x in v] for k, v in probe.items()})
    out["outcomes"] = outcomes
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(VARIANTS.values()),
                        metavar="NAME", help="release models to rescore (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device()
    preset = get_preset(args.preset)
    rel = Releases(preset, device, mode="release")
    world, tok = rel.world, rel.tokenizer
    cfg = preset.release_budgets().slow_train
    protocols = ablation_protocols(world, preset.slow_queries)
    released = manifest(rel.root)["models"]
    path = result_path(args.out or "slow_ablations")
    old = json.loads(path.read_text())["results"] if path.is_file() and args.only else {}
    results: dict[str, dict] = {}
    missing = [release for release in VARIANTS.values() if release not in released]
    fast_test = fast_scores(rel.get("fast")[0], tok, protocols["test"],
                            max_len=preset.release_budgets().fast_train.max_len, device=device)
    for name, release in VARIANTS.items():
        if release in missing:
            print(f"{name}: no release model {release!r} yet (make reproduce ONLY={release})")
            continue
        kept = old.get(name)
        t0 = time.perf_counter()
        model, history, _ = rel.get(release)
        slow_type = not hasattr(model, "encode_text")
        if (args.only is not None and release not in args.only and kept is not None
                and kept.get("sha256") == released[release]["sha256"]["model.safetensors"]):
            results[name] = kept
            if slow_type:
                kept["outcomes"]["rerank10_ranks"] = reranked_ranks(
                    model, tok, protocols["test"].queries, protocols["test"].gallery,
                    protocols["test"].gt, fast_test, RERANK_K, max_len=cfg.max_len,
                    device=device).tolist()
            print(f"{name}: kept (the same weights as the manifest's)")
            continue
        metrics = evaluate(model, tok, world, protocols, cfg.max_len, device)
        if slow_type:
            metrics["outcomes"]["rerank10_ranks"] = reranked_ranks(
                model, tok, protocols["test"].queries, protocols["test"].gallery,
                protocols["test"].gt, fast_test, RERANK_K, max_len=cfg.max_len,
                device=device).tolist()
        results[name] = {"release": release,
                         "sha256": released[release]["sha256"]["model.safetensors"],
                         "parameters": model.num_parameters(),
                         "train_seconds": round(history["seconds"], 1),
                         "final_loss": round(history["final_loss"], 4), **metrics}
        if "final_matching_loss" in history:
            results[name]["final_matching_loss"] = round(history["final_matching_loss"], 4)
        print(f"{name}: {time.perf_counter() - t0:.0f} s",
              {k: v for k, v in metrics.items() if k.endswith("R@1") or k == "probe"}, flush=True)
    out = {
        "preset": preset.name, "slow_model": preset.slow_model, "slow_train": cfg.to_dict(),
        "world": world.config.key(), "queries": len(protocols["test"].queries),
        "protocols": {"test": f"{len(protocols['test'].queries)} test queries x "
                              f"{len(protocols['test'].gallery)} images (exhaustive)",
                      "small100": f"{len(protocols['small100'].queries)} small-object queries x "
                                  f"{len(protocols['small100'].gallery)} images"},
        "rerank_k": RERANK_K,
        "results": results,
        "not_built": missing,
    }
    write_result(path, out, device=device)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
