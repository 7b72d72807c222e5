"""Grounding: where the Slow captioner looks when it predicts each word of a caption.

The forward decoder predicts word ``w_i`` at the position whose input is the word before it,
so the cross-attention weights of that position (averaged over heads) show which visual tokens
the model read to predict ``w_i``. On the finest layer (stride 8 with the default pyramid) that
is an 8x8 map over the 64x64 image: a heatmap per word.

Taught in notebooks/02_slow.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch

from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.data.tokenizer import encode
from fastslow_lib.slow.model import SlowModel

__all__ = ["named_object_attention", "named_object_cells", "upsample_map", "word_heatmaps"]


@torch.no_grad()
def word_heatmaps(
    model: SlowModel, tokenizer, caption: str, image: np.ndarray, *, layer: int = -1,
    device: torch.device | str = "cpu",
) -> tuple[list[str], np.ndarray]:
    """Words of ``caption`` and one attention map per word, ``(n_words, side, side)``.

    ``layer`` picks the forward decoder layer (default: the last, the finest level); every map
    sums to 1 over the image. Raises ValueError for a caption longer than the model's
    ``max_len`` or an image of the wrong shape.
    """
    arr = np.asarray(image)
    size = model.config.image_size
    if arr.shape != (size, size, 3):
        raise ValueError(f"image must have shape ({size}, {size}, 3), got {arr.shape}")
    n_layers = len(model.forward_decoder.layers)
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"layer must be in [{-n_layers}, {n_layers}), got {layer}")
    model.eval()
    enc = encode(tokenizer, [caption], model.config.max_len)
    length = int(enc["attention_mask"].sum())
    ids = enc["input_ids"][:, :length].to(device)
    visual = model.vision(images_to_tensor(arr).to(device))
    weights = model.forward_decoder.cross_attention(ids[:, :-1], visual)[layer]
    stride = model.forward_decoder.layers[layer].stride
    side = size // stride
    # Position i predicts token i + 1; keep the positions that predict words (not [EOS]).
    maps = weights[0].mean(dim=0)[: length - 2].reshape(length - 2, side, side)
    words = tokenizer.convert_ids_to_tokens(ids[0, 1 : length - 1].tolist())
    return list(words), maps.cpu().numpy()


def upsample_map(heatmap: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upsampling of a ``(side, side)`` map to ``(size, size)`` for display."""
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2 or heatmap.shape[0] != heatmap.shape[1] or size % heatmap.shape[0]:
        raise ValueError(f"need a square map whose side divides {size}, got {heatmap.shape}")
    k = size // heatmap.shape[0]
    return np.kron(heatmap, np.ones((k, k), dtype=heatmap.dtype))


def _named_objects(words: list[str], scene) -> list[tuple[int, object]]:
    """``(word index, object)`` for each shape word whose phrase names exactly one object.

    The phrase is the shape word with the colour (and size) words just before it, e.g. "little
    blue triangle"; size synonyms are read as the scene's sizes.
    """
    from fastslow_lib.data.captions import SIZE_WORDS

    size_of = {w: size for size, ws in SIZE_WORDS.items() for w in ws}
    shapes = {o.shape for o in scene.objects}
    colours = {o.colour for o in scene.objects}
    out = []
    for i, word in enumerate(words):
        if word not in shapes or i == 0 or words[i - 1] not in colours:
            continue
        colour = words[i - 1]
        size = size_of.get(words[i - 2]) if i >= 2 else None
        matches = [o for o in scene.objects if o.shape == word and o.colour == colour
                   and (size is None or o.size == size)]
        if len(matches) == 1:
            out.append((i, matches[0]))
    return out


def _box_mask(obj, side: int, image_size: int) -> np.ndarray:
    """``(side, side)`` bool: the cells of a side x side grid that the object's box overlaps."""
    cell = image_size / side
    edges = np.arange(side) * cell
    cols = (edges < obj.x + obj.radius) & (edges + cell > obj.x - obj.radius)
    rows = (edges < obj.y + obj.radius) & (edges + cell > obj.y - obj.radius)
    return rows[:, None] & cols[None, :]


def named_object_cells(caption: str, scene, side: int, image_size: int
                       ) -> list[tuple[int, np.ndarray]]:
    """``(word index, cells)`` for each shape word of ``caption`` whose phrase names exactly one
    object of ``scene``: the ``(side, side)`` bool mask of the map cells its object's box
    overlaps. Word indices are those of :func:`word_heatmaps` (the caption's words); these are
    the words and cells :func:`named_object_attention` measures."""
    from fastslow_lib.data.caption_parser import tokenize_caption

    return [(i, _box_mask(obj, side, image_size))
            for i, obj in _named_objects(tokenize_caption(caption), scene)]


def named_object_attention(
    model: SlowModel, tokenizer, split, *, n_captions: int = 200, layer: int = -1, seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """How much of a shape word's attention falls on the object its phrase names.

    For ``n_captions`` captions of ``split`` (drawn with ``seed``), every shape word whose phrase
    ("small blue triangle") names exactly one object of the scene: the attention mass, at the
    position that predicts the shape word, on the cells the object's box overlaps
    (``mass``), against the share of cells those are (``uniform``: what attention spread evenly
    would put there). Returns both means and the number of words measured.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 19]))
    picks = rng.choice(len(split.captions), size=min(n_captions, len(split.captions)),
                       replace=False)
    mass, uniform = [], []
    side = model.config.image_size // model.config.layer_strides[layer]
    for c in picks:
        image = int(split.caption_image[c])
        named = named_object_cells(split.captions[c], split.scenes[image], side,
                                   model.config.image_size)
        if not named:
            continue
        _, maps = word_heatmaps(model, tokenizer, split.captions[c], split.images[image],
                                layer=layer, device=device)
        for i, box in named:
            if box.shape != maps.shape[1:]:
                raise RuntimeError(f"layer {layer}'s maps are {maps.shape[1:]}, its stride "
                                   f"gives {box.shape}: the config and the model disagree")
            mass.append(float(maps[i][box].sum()))
            uniform.append(float(box.mean()))
    if not mass:
        raise ValueError("no caption named a single object; use more captions")
    return {"mass": float(np.mean(mass)), "uniform": float(np.mean(uniform)), "words": len(mass)}
