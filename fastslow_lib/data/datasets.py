"""PyTorch views of the world: training pairs, and the retrieval evaluation protocol.

* :class:`TrainPairs` yields (image, caption) pairs, one caption per image per epoch, so a batch
  never holds two captions of the same image (which would be false negatives for a contrastive
  loss); ``set_epoch`` changes which caption each image shows, deterministically.
* :class:`RetrievalProtocol` is the test protocol of Flickr30K/COCO: a gallery of images, five
  caption queries per image, the ground-truth image of each query, and (for the embedded world)
  the truth matrix saying which other images a caption is also true of.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from fastslow_lib.config.checks import check_int
from fastslow_lib.data.world import Split


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """Visual items as a float tensor in [0, 1], channels first.

    Images ``(N, H, W, 3)`` (or one ``(H, W, 3)``) uint8 -> ``(N, 3, H, W)``; video clips
    ``(N, T, H, W, 3)`` -> ``(N, T, 3, H, W)`` (notebook 05). A 4-D array is always N images:
    give one clip as ``clips[i : i + 1]``.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise TypeError(f"images must be uint8 RGB, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim not in (4, 5) or arr.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3), or (N, T, H, W, 3) for clips, "
                         f"got {tuple(arr.shape)}")
    x = torch.from_numpy(np.ascontiguousarray(arr))
    x = x.permute(0, 3, 1, 2) if arr.ndim == 4 else x.permute(0, 1, 4, 2, 3)
    return x.float().div_(255.0)


class TrainPairs(Dataset):
    """One (image, caption) pair per image; which caption depends on ``seed`` and the epoch."""

    def __init__(self, split: Split, seed: int = 0) -> None:
        self.split = split
        self.seed = int(seed)
        per_image = len(split.captions) // len(split)
        self._captions = np.arange(len(split.captions)).reshape(len(split), per_image)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Choose, for every image, which of its captions this epoch shows."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch)]))
        self._choice = rng.integers(self._captions.shape[1], size=len(self.split))

    def epoch_captions(self) -> np.ndarray:
        """``(n_images,)``: the caption index each image shows this epoch."""
        return self._captions[np.arange(len(self.split)), self._choice]

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict:
        c = int(self._captions[i, self._choice[i]])
        return {
            "image": images_to_tensor(self.split.images[i : i + 1])[0],
            "caption": self.split.captions[c],
            "image_index": int(i),
            "caption_index": c,
        }


def make_collate(encode_fn: Callable[[list[str]], dict[str, torch.Tensor]]) -> Callable:
    """A ``collate_fn`` that stacks images and tokenizes the batch's captions with ``encode_fn``.

    ``encode_fn`` is e.g. ``functools.partial(encode, tokenizer, max_len=48)`` with
    :func:`fastslow_lib.data.tokenizer.encode`.
    """

    def collate(items: list[dict]) -> dict:
        texts = [it["caption"] for it in items]
        out = {
            "image": torch.stack([it["image"] for it in items]),
            "caption": texts,
            "image_index": torch.tensor([it["image_index"] for it in items]),
            "caption_index": torch.tensor([it["caption_index"] for it in items]),
        }
        out.update(encode_fn(texts))
        return out

    return collate


@dataclass
class RetrievalProtocol:
    """Gallery, queries and ground truth of a split (text-to-image and image-to-text).

    ``gt[q]`` is the gallery index of query ``q``'s image; ``truth[q, g]`` says whether query
    ``q`` is true of gallery image ``g`` by the scene descriptions (for consistent@1).
    """

    name: str
    gallery: np.ndarray  # (G, H, W, 3) uint8
    queries: list[str]
    gt: np.ndarray  # (Q,) int64
    truth: np.ndarray  # (Q, G) bool

    @staticmethod
    def from_split(split: Split) -> RetrievalProtocol:
        """The full protocol of ``split``: every image in the gallery, every caption a query."""
        return RetrievalProtocol(
            split.name, split.images, list(split.captions), split.caption_image.copy(), split.truth
        )

    def gallery_tensor(self) -> torch.Tensor:
        """The gallery as a float tensor ``(G, 3, H, W)`` in [0, 1]."""
        return images_to_tensor(self.gallery)

    def query_subset(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` query indices drawn without replacement (sorted), the same for a given seed.

        Slow models score every gallery image per query; a stated subset keeps that affordable,
        and every model compared on it must use the same one.
        """
        check_int(n, "n", maximum=len(self.queries), allow_numpy=True)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        return np.sort(rng.choice(len(self.queries), size=n, replace=False))

    def restrict(self, query_indices: np.ndarray) -> RetrievalProtocol:
        """The same gallery with only the queries ``query_indices``."""
        idx = np.asarray(query_indices, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError("query_indices must be a non-empty 1-D array")
        if idx.min() < 0 or idx.max() >= len(self.queries):
            raise ValueError(f"query index out of range [0, {len(self.queries)})")
        return RetrievalProtocol(
            self.name, self.gallery, [self.queries[i] for i in idx], self.gt[idx], self.truth[idx]
        )

    def sub_gallery(self, n_images: int, n_queries: int, seed: int = 0) -> RetrievalProtocol:
        """A smaller protocol: ``n_images`` gallery images and ``n_queries`` of their captions.

        Both drawn without replacement (the same for a given seed); ground truth and truth
        re-indexed to the smaller gallery. Notebook 02 uses it for its ablation models: 200
        queries against 100 images is a tenth of the pairs of the full 1k gallery.
        """
        check_int(n_images, "n_images", maximum=len(self.gallery), allow_numpy=True)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 17]))
        images = np.sort(rng.choice(len(self.gallery), size=n_images, replace=False))
        candidates = np.flatnonzero(np.isin(self.gt, images))
        if check_int(n_queries, "n_queries", allow_numpy=True) > len(candidates):
            raise ValueError(f"n_queries must be between 1 and {len(candidates)} (the captions "
                             f"of {n_images} images), got {n_queries}")
        queries = np.sort(rng.choice(candidates, size=n_queries, replace=False))
        new_index = np.full(len(self.gallery), -1, dtype=np.int64)
        new_index[images] = np.arange(n_images)
        return RetrievalProtocol(
            self.name, self.gallery[images], [self.queries[q] for q in queries],
            new_index[self.gt[queries]], self.truth[np.ix_(queries, images)],
        )
