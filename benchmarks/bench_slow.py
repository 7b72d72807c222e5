"""Benchmark: the Slow captioner's batched scoring against a naive per-pair loop.

Run: ``.venv/bin/python benchmarks/bench_slow.py [--texts 20] [--images 1000] [--pairs 300]
[--threads 2]``. Prints a table and writes ``results/bench_slow.json``.

Both sides score the same model (the Slow configuration of ``--preset``, default cpu; the
weights do not change the cost, so a trained checkpoint is used only when ``--checkpoint`` names
one) and give the same numbers (checked on the pairs the naive loop scores, tolerance 1e-3):

* **naive**: for each (caption, image) pair, run the backbone and pyramid on that image, then
  both decoders on that caption: what a first implementation does;
* **batched** (:func:`fastslow_lib.slow.scoring.slow_scores`): each image's pyramid and every
  decoder layer's cross-attention keys/values computed once and reused for every caption;
  captions tokenised once and sorted by length; a block of texts x images per decoder call.

The goal from issue 4: batched >= 10x the pairs per second of the naive loop. The timings are
wall-clock on whatever else the machine is running; the ratio is from one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from fastslow_course.experiment import provenance, write_result
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.device import pick_device
from fastslow_lib.data import load_world
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.data.tokenizer import encode
from fastslow_lib.slow.decoder import token_logprobs
from fastslow_lib.slow.model import SlowConfig, SlowModel
from fastslow_lib.slow.scoring import slow_scores


@torch.no_grad()
def naive_scores(model: SlowModel, tok, texts: list[str], images: np.ndarray, max_len: int,
                 device) -> np.ndarray:
    """One pair at a time: the image side and both decoders rerun for every pair."""
    out = np.zeros((len(texts), len(images)), dtype=np.float32)
    for t, text in enumerate(texts):
        for i in range(len(images)):
            visual = model.vision(images_to_tensor(images[i]).to(device))
            total = 0.0
            for name, decoder in model.decoders():
                enc = encode(tok, [text], max_len, reverse=name == "backward")
                length = int(enc["attention_mask"].sum())
                ids = enc["input_ids"][:, :length].to(device)
                mask = enc["attention_mask"][:, :length].to(device)
                total += float(token_logprobs(decoder(ids[:, :-1], visual), ids, mask)[0])
            out[t, i] = total
    return out


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=20, help="queries for the batched scorer")
    parser.add_argument("--images", type=int, default=1000, help="gallery for the batched scorer")
    parser.add_argument("--pairs", type=int, default=300, help="pairs for the naive loop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="cpu", help="whose Slow configuration to time")
    parser.add_argument("--device", default=None, help="default: cuda, then mps, then cpu")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="default results/bench_slow.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else pick_device()
    preset = get_preset(args.preset)
    world = load_world(preset.world)
    tok = world.tokenizer()
    torch.manual_seed(0)
    model = SlowModel(SlowConfig(vocab_size=len(tok), **preset.slow_model))
    if args.checkpoint is not None:
        from fastslow_lib.core.checkpoint import load_state

        load_state(model, args.checkpoint)
    model.to(device).eval()
    texts = list(world.test.captions[: args.texts])
    gallery = world.test.images[: args.images]
    max_len = model.config.max_len

    # Naive: the first texts against the first images, `--pairs` pairs in all.
    n_img = min(len(gallery), max(1, args.pairs // max(1, min(len(texts), 3))))
    n_txt = max(1, args.pairs // n_img)
    naive_scores(model, tok, texts[:1], gallery[:2], max_len, device)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    naive = naive_scores(model, tok, texts[:n_txt], gallery[:n_img], max_len, device)
    sync(device)
    naive_s = time.perf_counter() - t0

    slow_scores(model, tok, texts[:2], gallery[:64], max_len=max_len, device=device)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    batched = slow_scores(model, tok, texts, gallery, max_len=max_len, device=device)
    sync(device)
    batched_s = time.perf_counter() - t0
    np.testing.assert_allclose(batched[:n_txt, :n_img], naive, rtol=1e-4, atol=1e-3)

    rows = {
        "naive": {"pairs": naive.size, "seconds": naive_s, "pairs_per_s": naive.size / naive_s},
        "batched": {"pairs": batched.size, "seconds": batched_s,
                    "pairs_per_s": batched.size / batched_s},
    }
    ratio = rows["batched"]["pairs_per_s"] / rows["naive"]["pairs_per_s"]
    stamp = provenance(device=device)
    print(f"Slow scoring on {stamp['machine']}, {stamp['device']}, "
          f"{model.num_parameters() / 1e6:.2f}M parameters")
    print(f"{'scorer':<10}{'pairs':>10}{'seconds':>10}{'pairs/s':>12}")
    for name, r in rows.items():
        print(f"{name:<10}{r['pairs']:>10}{r['seconds']:>10.2f}{r['pairs_per_s']:>12.0f}")
    print(f"batched / naive = {ratio:.1f}x (goal >= 10x): "
          f"{'met' if ratio >= 10 else 'NOT met'}")
    out = {"threads": args.threads, "preset": preset.name, "config": model.config.to_dict(),
           "parameters": model.num_parameters(), "rows": rows, "ratio": ratio,
           "goal_ratio": 10.0, "goal_met": bool(ratio >= 10)}
    path = write_result(args.out or "bench_slow", out, device=device, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
