"""Shared pieces of the real-data loaders: the split they return, image loading, clear errors.

The embedded world (:mod:`fastslow_lib.data.world`) is the course's default data. The loaders in
:mod:`fastslow_lib.data.karpathy` (Flickr30K, COCO) and :mod:`fastslow_lib.data.vatex` (VATEX)
read the real datasets from disk, when they have been downloaded by hand, into the
:class:`CaptionedSplit` defined here. It has the fields that :class:`~fastslow_lib.data.datasets.
TrainPairs` and :meth:`~fastslow_lib.data.datasets.RetrievalProtocol.from_split` use (``name``,
``images``, ``captions``, ``caption_image``, ``truth``, ``len()``), so the rest of the pipeline
runs on it unchanged. Nothing here downloads anything: a missing file raises
:class:`DatasetMissingError`, which says where the file was expected and how to get it.

Taught in notebooks/06_demo_and_scale.ipynb (the real-data path).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from fastslow_lib.config.checks import check_int

__all__ = ["CaptionedSplit", "DatasetMissingError", "load_image", "read_json"]


class DatasetMissingError(FileNotFoundError):
    """A file or folder of a real dataset is not on disk.

    The message says what is missing (``what``), where it was expected (``path``) and how to get
    it (``how``); the three are kept as attributes too.
    """

    def __init__(self, what: str, path: str | Path, how: str) -> None:
        self.what = what
        self.path = Path(path)
        self.how = how
        super().__init__(f"{what} not found: expected at {self.path}\nHow to get it: {how}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.what, self.path, self.how))


@dataclass
class CaptionedSplit:
    """Items (images or video clips) of a real dataset and their captions.

    ``images`` is uint8, ``(N, H, W, 3)`` for images or ``(N, T, H, W, 3)`` for video frames, or
    None when the split holds precomputed ``features`` only (float32 ``(N, T, D)``). The captions
    of item ``i`` are contiguous and in file order; ``caption_image[q]`` is the item of caption
    ``q``. The loaders keep the same number of captions for every item, as
    :class:`~fastslow_lib.data.datasets.TrainPairs` assumes. ``ids`` names each item (its file
    name, or its video ID).
    """

    name: str
    images: np.ndarray | None
    captions: list[str]
    caption_image: np.ndarray
    ids: list[str]
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.caption_image = np.asarray(self.caption_image, dtype=np.int64)
        if self.caption_image.shape != (len(self.captions),):
            raise ValueError(f"caption_image must have one entry per caption "
                             f"({len(self.captions)}), got shape {self.caption_image.shape}")
        if self.caption_image.size and (
            self.caption_image.min() < 0 or self.caption_image.max() >= n
            or np.any(np.diff(self.caption_image) < 0)
        ):
            raise ValueError(f"caption_image must be non-decreasing item indices in [0, {n}) "
                             f"(captions of an item contiguous)")
        for field_name in ("images", "features"):
            arr = getattr(self, field_name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{field_name} holds {len(arr)} items but ids names {n}")

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def truth(self) -> np.ndarray:
        """``truth[q, g]``: True only where ``g`` is caption ``q``'s own item, ``(Q, N)`` bool.

        The real datasets have no scene descriptions, so a caption counts as true of its own
        item only (the Flickr30K/COCO protocol).
        """
        return self.caption_image[:, None] == np.arange(len(self), dtype=np.int64)[None, :]

    def fingerprint(self) -> str:
        """SHA-256 of the pixels (and/or features) and captions: equal fingerprints, same data."""
        h = hashlib.sha256()
        if self.images is not None:
            h.update(np.ascontiguousarray(self.images).tobytes())
        if self.features is not None:
            h.update(np.ascontiguousarray(self.features).tobytes())
        h.update("\n".join(self.captions).encode())
        return h.hexdigest()


def load_image(path: str | Path, image_size: int) -> np.ndarray:
    """Read an image as uint8 RGB ``(image_size, image_size, 3)``.

    The image is converted to RGB, centre-cropped to a square (the shorter side kept whole) and
    resized with bicubic interpolation. A missing file raises FileNotFoundError naming the path;
    a file PIL cannot decode (not an image, truncated, corrupt) raises OSError naming it.
    """
    check_int(image_size, "image_size", allow_numpy=True, type_error=ValueError)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise OSError(f"cannot read image {path}: not a readable image file ({e})") from e
    w, h = rgb.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    out = square.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.asarray(out, dtype=np.uint8)


def read_json(path: str | Path, *, what: str, how: str) -> Any:
    """The parsed JSON file at ``path``.

    Missing: :class:`DatasetMissingError` (``what`` and ``how`` say what it is and how to get
    it). A folder, unreadable text or invalid JSON: ValueError naming the path.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected the {what} (a JSON file)")
    if not path.is_file():
        raise DatasetMissingError(what, path, how)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); expected the {what}") from e
