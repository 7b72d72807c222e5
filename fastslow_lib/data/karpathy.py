"""Flickr30K and COCO with the Karpathy splits, read from disk into a :class:`CaptionedSplit`.

The Karpathy split files (``dataset_flickr30k.json``, ``dataset_coco.json``, in
``caption_datasets.zip``) list every image with its split and its sentences::

    {"dataset": "flickr30k",
     "images": [{"filename": "1000092795.jpg", "split": "train", "imgid": 0,
                 "sentids": [0, 1, 2, 3, 4],
                 "sentences": [{"raw": "Two young guys ...", "tokens": ["two", "young", ...],
                                "imgid": 0, "sentid": 0}, ...]}, ...]}

COCO entries also carry ``"filepath": "train2014"`` or ``"val2014"``, the folder of the image
under the image root. Splits are ``train``, ``val``, ``test`` (1,000 images for Flickr30K, 5,000
for COCO) and ``restval`` (the rest of COCO's val2014), which the paper trains on.

The images are not in the zip: Flickr30K's come from its request form, COCO's from
cocodataset.org. Nothing is downloaded here; every missing piece raises an error that says what
to fetch. Taught in notebooks/06_demo_and_scale.ipynb (the real-data path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fastslow_lib.config.checks import check_int, check_optional_int
from fastslow_lib.core.progress import progress
from fastslow_lib.data.real import (
    CaptionedSplit,
    DatasetMissingError,
    load_image,
    read_json,
)

__all__ = ["KARPATHY_SPLITS", "load_karpathy"]

#: The split names of the Karpathy split files.
KARPATHY_SPLITS: tuple[str, ...] = ("train", "val", "test", "restval")

HOW_SPLITS = ("download caption_datasets.zip from "
              "https://cs.stanford.edu/people/karpathy/deepimagesent/ and unzip it "
              "(it holds dataset_flickr30k.json and dataset_coco.json)")
HOW_FLICKR30K = ("the Flickr30K images come from the Flickr30K request form "
                 "(https://shannon.cs.illinois.edu/DenotationGraph/): unzip flickr30k-images/ "
                 "and pass that folder as image_dir")
HOW_COCO = ("the COCO images come from cocodataset.org (https://cocodataset.org/#download): "
            "unzip train2014.zip and val2014.zip into image_dir, which then holds train2014/ "
            "and val2014/")


def _how_images(dataset: str) -> str:
    if dataset == "flickr30k":
        return HOW_FLICKR30K
    if dataset == "coco":
        return HOW_COCO
    return f"{HOW_FLICKR30K}; {HOW_COCO}"


def _check_entries(entries: list[Any], json_path: Path) -> None:
    """Raise a ValueError naming the first entry that lacks a field the loader needs."""
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{json_path}: images[{i}] is a {type(entry).__name__}, "
                             f"expected an object with 'filename', 'split' and 'sentences'")
        for key in ("filename", "split", "sentences"):
            if key not in entry:
                raise ValueError(f"{json_path}: images[{i}] has no {key!r} field "
                                 f"(not a Karpathy split file?)")
        if not isinstance(entry["sentences"], list):
            raise ValueError(f"{json_path}: images[{i}] 'sentences' must be a list, got "
                             f"{type(entry['sentences']).__name__}")


def _caption(entry: dict, i: int, j: int, use_tokens: bool, json_path: Path) -> str:
    sentence = entry["sentences"][j]
    where = f"{json_path}: images[{i}] ({entry['filename']}) sentences[{j}]"
    if not isinstance(sentence, dict):
        raise ValueError(f"{where} is not an object")
    if use_tokens:
        tokens = sentence.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{where} has no 'tokens' list of strings (use_tokens=True)")
        return " ".join(tokens)
    raw = sentence.get("raw")
    if not isinstance(raw, str):
        raise ValueError(f"{where} has no 'raw' string")
    return raw.strip()


def load_karpathy(
    json_path: str | Path,
    image_dir: str | Path,
    split: str,
    *,
    image_size: int = 64,
    captions_per_item: int = 5,
    max_items: int | None = None,
    restval_as_train: bool = True,
    use_tokens: bool = False,
) -> CaptionedSplit:
    """One Karpathy split of Flickr30K or COCO: images (centre-cropped, resized) and captions.

    * ``json_path``: ``dataset_flickr30k.json`` or ``dataset_coco.json``;
    * ``image_dir``: the image root. An image is read from ``image_dir/filepath/filename`` when
      its entry has a ``filepath`` (COCO: ``train2014``/``val2014``), else ``image_dir/filename``;
    * ``split``: one of :data:`KARPATHY_SPLITS`; with ``restval_as_train`` (the paper's setup)
      ``"train"`` also takes the ``restval`` images, in file order;
    * ``captions_per_item``: the first that many sentences of each image are kept (COCO has some
      images with 6 or 7); an image with fewer raises a ValueError naming it;
    * ``max_items``: keep the first n images of the split (file order), e.g. for a quick run;
    * ``use_tokens``: captions are the lower-cased ``tokens`` joined by spaces instead of the
      ``raw`` sentence (stripped).

    Returns a :class:`CaptionedSplit` named ``"<dataset>-<split>"`` with ``images`` uint8
    ``(N, image_size, image_size, 3)`` and ``ids`` the file names. The split file is checked,
    then the presence of every image file (the first missing one is named), before any image is
    loaded. Taught in notebooks/06_demo_and_scale.ipynb.
    """
    check_int(image_size, "image_size", allow_numpy=True, type_error=ValueError)
    check_int(captions_per_item, "captions_per_item", allow_numpy=True, type_error=ValueError)
    check_optional_int(max_items, "max_items", allow_numpy=True, type_error=ValueError)
    json_path, image_dir = Path(json_path), Path(image_dir)
    if split not in KARPATHY_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {KARPATHY_SPLITS}")

    data = read_json(json_path, what="Karpathy split file", how=HOW_SPLITS)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{json_path} has no 'images' list: not a Karpathy split file "
                         f"(expected {{\"dataset\": ..., \"images\": [...]}})")
    entries = data["images"]
    _check_entries(entries, json_path)
    dataset = str(data.get("dataset") or json_path.stem.removeprefix("dataset_")).lower()

    wanted = {split} | ({"restval"} if split == "train" and restval_as_train else set())
    chosen = [i for i, e in enumerate(entries) if e["split"] in wanted]
    if not chosen:
        raise ValueError(f"{json_path} has no images in split {split!r}")
    if max_items is not None:
        chosen = chosen[:max_items]

    captions: list[str] = []
    for i in chosen:
        entry = entries[i]
        n = len(entry["sentences"])
        if n < captions_per_item:
            raise ValueError(f"{json_path}: image {entry['filename']} (images[{i}]) has {n} "
                             f"sentences, fewer than captions_per_item={captions_per_item}")
        captions += [_caption(entry, i, j, use_tokens, json_path)
                     for j in range(captions_per_item)]

    if not image_dir.is_dir():
        raise DatasetMissingError(f"{dataset} image folder", image_dir, _how_images(dataset))
    paths = []
    for i in chosen:
        entry = entries[i]
        folder = image_dir / entry["filepath"] if entry.get("filepath") else image_dir
        paths.append(folder / entry["filename"])
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetMissingError(
            f"{len(missing)} of the {len(paths)} image files of split {split!r} "
            f"(first missing: {missing[0].name})", missing[0], _how_images(dataset))

    images = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    for k, path in enumerate(progress(paths, desc=f"{dataset} {split} images")):
        images[k] = load_image(path, image_size)
    return CaptionedSplit(
        name=f"{dataset}-{split}",
        images=images,
        captions=captions,
        caption_image=np.repeat(np.arange(len(chosen), dtype=np.int64), captions_per_item),
        ids=[str(entries[i]["filename"]) for i in chosen],
    )
