#!/usr/bin/env python3
"""How fast does a text tower learn to *bind* words? BERT (absolute) vs ModernBERT (rotary).

The compositional probe needs the text tower to know that "red" belongs to "circle" in "a red
circle and a blue square". This experiment isolates that skill from contrastive training: each
text tower (the Fast model's, same sizes) is trained alone, with a binary cross-entropy, to read
off which (shape, colour) pairs a caption names: 9 yes/no answers per caption. A bag of words
cannot answer when two colours and two shapes are named; a tower that looks at each word's
neighbour can. Every 25 steps we measure exact-match accuracy on the validation captions whose
objects make that ambiguous. Results go to ``results/text_binding.json``; notebook 01 shows them.

    python scripts/text_binding.py [--steps 600] [--threads 2]

About 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from fastslow_course.experiment import write_result
from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data import load_world
from fastslow_lib.data.tokenizer import encode
from fastslow_lib.fast.model import FastConfig, TextTower


def binding_targets(scenes, combos) -> torch.Tensor:
    """``(N, len(combos))``: 1 where the scene holds an object of that (shape, colour)."""
    return torch.tensor(
        [[float(any((o.shape, o.colour) == c for o in s.objects)) for c in combos] for s in scenes]
    )


def is_ambiguous(scene) -> bool:
    """Two or more colours and two or more shapes: the words alone do not say which is which."""
    colours = {o.colour for o in scene.objects}
    shapes = {o.shape for o in scene.objects}
    return len(colours) >= 2 and len(shapes) >= 2


def run(encoder: str, world, tok, steps: int, every: int, threads: int) -> dict:
    """Train one text tower on the binding task; return its validation curve."""
    preset = get_preset("cpu")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train, val = world.train, world.val
    combos = sorted({(o.shape, o.colour) for s in train.scenes for o in s.objects})
    y_train, y_val = binding_targets(train.scenes, combos), binding_targets(val.scenes, combos)
    ambiguous = torch.tensor([is_ambiguous(s) for s in val.scenes])
    per_image = len(train.captions) // len(train)
    config = FastConfig(vocab_size=len(tok), max_len=preset.fast_train.max_len,
                        **{**preset.fast_model, "text_encoder": encoder,
                           "embed_dim": len(combos)})
    tower = TextTower(config)
    opt = torch.optim.AdamW(tower.parameters(), lr=2e-3, weight_decay=0.05)
    val_caps = [val.captions[per_image * i] for i in range(len(val))]
    val_tok = encode(tok, val_caps, max_len=config.max_len)
    curve, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        idx = rng.integers(len(train), size=128)
        caps = [train.captions[per_image * i + int(rng.integers(per_image))] for i in idx]
        batch = encode(tok, caps, max_len=config.max_len)
        logits = tower(batch["input_ids"], batch["attention_mask"])
        loss = F.binary_cross_entropy_with_logits(logits, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0:
            tower.eval()
            with torch.no_grad():
                pred = tower(val_tok["input_ids"], val_tok["attention_mask"]) > 0
            tower.train()
            exact = (pred == y_val.bool()).all(dim=1)
            accuracy = 100 * float(exact[ambiguous].float().mean())
            curve.append({"step": step, "loss": round(float(loss.detach()), 4),
                          "ambiguous_exact": round(accuracy, 2)})
            print(f"{encoder:10s} step {step:4d}  loss {curve[-1]['loss']:.3f}  exact on ambiguous "
                  f"{curve[-1]['ambiguous_exact']:5.1f}%", flush=True)
    first = next((c["step"] for c in curve if c["ambiguous_exact"] >= 95.0), None)
    return {"curve": curve, "first_step_at_95": first,
            "seconds": round(time.perf_counter() - start, 1),
            "ambiguous_val_captions": int(ambiguous.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    world = load_world(get_preset("cpu").world)
    tok = world.tokenizer()
    out = {"threads": args.threads, "steps": args.steps,
           "task": "9 yes/no answers per caption: does it name a (shape, colour) pair; "
                   "exact match on validation captions with >= 2 colours and >= 2 shapes",
           "encoders": {}}
    for encoder in ("bert", "modernbert"):
        out["encoders"][encoder] = run(encoder, world, tok, args.steps, args.every, args.threads)
    path = write_result("text_binding", out, indent=2)
    print("wrote", path.relative_to(repo_root()))


if __name__ == "__main__":
    main()
