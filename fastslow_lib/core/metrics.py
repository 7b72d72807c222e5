"""Retrieval and compositional-probe metrics for text-to-visual retrieval.

Taught in notebooks/00_data.ipynb.

Every function takes a score matrix ``scores[q, g]`` (higher = query ``q`` matches gallery
item ``g`` better) as a torch tensor, a numpy array or a nested list, and returns plain
Python numbers. Ranks are 1-based, recalls are percentages in ``[0, 100]``.

Ties never flatter the model: a gallery item whose score *equals* the correct item's score
is ranked above it. A model that outputs the same score for everything therefore gets the
worst possible rank instead of rank 1 by accident of sort order.

Public functions:

* :func:`ranks_of_gt` - 1-based rank of the correct gallery item for each query.
* :func:`retrieval_metrics` - R@1, R@5, R@10, MedR and MeanR from a score matrix.
* :func:`text_to_image_metrics` - the same, for a (captions x images) matrix.
* :func:`image_to_text_metrics` - image-to-text metrics from the *same* matrix, under the
  Flickr30K / COCO protocol (an image is found once its best caption is found).
* :func:`pairwise_accuracy` - percent of (positive, negative) pairs ordered correctly.
* :func:`consistent_at_1` - percent of queries whose top item makes the caption true.
* :func:`oracle_recall_at_1` - the share of queries whose caption is true of one item only.
* :func:`r1_ceiling` - a protocol's ceiling: the best R@1 a model can expect (the course's one
  definition).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

RECALL_KS: tuple[int, ...] = (1, 5, 10)
"""The K values reported as ``R@K`` by :func:`retrieval_metrics`."""

METRIC_KEYS: tuple[str, ...] = ("R@1", "R@5", "R@10", "MedR", "MeanR")
"""The keys of every dictionary returned by the retrieval metric functions, in order."""


# --------------------------------------------------------------------------------------
# Conversion and validation helpers
# --------------------------------------------------------------------------------------


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert a torch tensor, numpy array or nested list to a numpy array (no dtype cast)."""
    if isinstance(x, torch.Tensor):
        tensor = x.detach().cpu()
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
            tensor = tensor.to(torch.float32)
        return tensor.numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    try:
        return np.asarray(x)
    except ValueError as err:  # e.g. ragged nested lists
        raise ValueError(f"{name} could not be converted to an array: {err}") from err


def _as_real(x: Any, name: str) -> np.ndarray:
    """Convert ``x`` to a float64 array, rejecting booleans, complex and non-numeric data."""
    arr = _to_numpy(x, name)
    is_real = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if not is_real:
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _require_finite(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` contains NaN or +/-inf, saying how many such values there are."""
    n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if n_bad:
        raise ValueError(f"{name} must be finite, got {n_bad} NaN/inf value(s) out of {arr.size}")


def _check_scores(scores: Any, name: str = "scores") -> np.ndarray:
    """Validate a (queries x gallery) score matrix and return it as float64 numpy."""
    arr = _as_real(scores, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (queries x gallery), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty on both axes, got shape {arr.shape}")
    _require_finite(arr, name)
    return arr


def _check_index(
    index: Any, n_queries: int, n_gallery: int, name: str = "gt", matrix: str = "scores"
) -> np.ndarray:
    """Validate one gallery index per query: 1-D integers in ``[0, n_gallery)``; int64 out.

    ``matrix`` names the (queries x gallery) matrix the index refers to, for error messages.
    """
    arr = _to_numpy(index, name)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one index per query), got shape {arr.shape}")
    if arr.shape[0] != n_queries:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but {matrix} has {n_queries} queries (rows)"
        )
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 0) | (arr >= n_gallery))
    if bad.size:
        pos = int(bad[0])
        raise ValueError(
            f"{name} values must be in [0, {n_gallery}), got {int(arr[pos])} at position {pos}"
        )
    return arr


def _check_truth(truth: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate a boolean truth matrix; if ``shape`` is given it must match exactly."""
    arr = _to_numpy(truth, "truth")
    if arr.dtype != np.bool_:
        raise TypeError(f"truth must be a boolean matrix, got dtype {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"truth must have the same shape as scores {shape}, got {arr.shape}")
    if arr.ndim != 2:
        raise ValueError(f"truth must be 2-D (queries x gallery), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"truth must be non-empty on both axes, got shape {arr.shape}")
    return arr


def _check_pair_scores(x: Any, name: str) -> np.ndarray:
    """Validate one side of :func:`pairwise_accuracy`: a non-empty finite 1-D array."""
    arr = _as_real(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per pair), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    _require_finite(arr, name)
    return arr


def _percent(mask: np.ndarray) -> float:
    """Percentage of True entries in a boolean array."""
    return float(np.mean(mask) * 100.0)


def _summarize_ranks(ranks: np.ndarray) -> dict[str, float]:
    """Turn 1-based ranks into the R@1/R@5/R@10/MedR/MeanR dictionary."""
    metrics = {f"R@{k}": _percent(ranks <= k) for k in RECALL_KS}
    metrics["MedR"] = float(np.median(ranks))
    metrics["MeanR"] = float(np.mean(ranks))
    return metrics


# --------------------------------------------------------------------------------------
# Retrieval metrics
# --------------------------------------------------------------------------------------


def _ranks(scores: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Pessimistic 1-based ranks for already-validated inputs.

    The count of items scoring ``>=`` the correct one includes the correct item itself,
    so it already equals ``1 + #{g != gt : s[g] >= s[gt]}``.
    """
    correct = scores[np.arange(scores.shape[0]), gt]
    return np.sum(scores >= correct[:, None], axis=1).astype(np.int64)


def ranks_of_gt(scores: Any, gt: Any) -> np.ndarray:
    """1-based rank of the correct gallery item for each query.

    Args:
        scores: ``(Q, G)`` matrix, ``scores[q, g]`` = how well gallery item ``g`` matches
            query ``q`` (higher is better).
        gt: ``(Q,)`` integer array, ``gt[q]`` = index of the correct gallery item.

    Returns:
        ``(Q,)`` int64 array of ranks in ``[1, G]``. Ties are pessimistic: an item with the
        same score as the correct one ranks above it, so
        ``rank = 1 + #{g != gt[q] : scores[q, g] >= scores[q, gt[q]]}``.
    """
    arr = _check_scores(scores)
    index = _check_index(gt, arr.shape[0], arr.shape[1], "gt")
    return _ranks(arr, index)


def retrieval_metrics(scores: Any, gt: Any) -> dict[str, float]:
    """Recall@{1,5,10} (percent), median and mean rank of the correct gallery item.

    Args:
        scores: ``(Q, G)`` score matrix, higher = better match.
        gt: ``(Q,)`` integer index of the correct gallery item for each query.

    Returns:
        ``{"R@1", "R@5", "R@10", "MedR", "MeanR"}``. ``R@K`` is the percent of queries with
        rank ``<= K`` (so it is 100 whenever ``K >= G``); ``MedR`` uses ``np.median`` and can
        end in ``.5``. Ties are pessimistic, see :func:`ranks_of_gt`.
    """
    return _summarize_ranks(ranks_of_gt(scores, gt))


def text_to_image_metrics(scores: Any, caption_image: Any) -> dict[str, float]:
    """Text-to-image retrieval metrics under the 5-captions-per-image protocol.

    Each caption is a query and the images are the gallery, so this is
    :func:`retrieval_metrics` with ``gt = caption_image``.

    Args:
        scores: ``(n_captions, n_images)`` matrix, higher = caption matches image better.
        caption_image: ``(n_captions,)`` integer index of the image each caption describes.

    Returns:
        The same keys as :func:`retrieval_metrics`.
    """
    arr = _check_scores(scores)
    index = _check_index(caption_image, arr.shape[0], arr.shape[1], "caption_image")
    return _summarize_ranks(_ranks(arr, index))


def _image_ranks(scores: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """Pessimistic 1-based rank of each image's best own caption among all captions."""
    n_images = scores.shape[1]
    by_image = scores.T  # (n_images, n_captions): row i ranks all captions for image i
    owned = caption_image[None, :] == np.arange(n_images)[:, None]
    missing = np.flatnonzero(~owned.any(axis=1))
    if missing.size:
        raise ValueError(
            f"every image needs at least one caption in caption_image; image {int(missing[0])}"
            f" has none ({missing.size} image(s) without captions)"
        )
    best_own = np.where(owned, by_image, -np.inf).max(axis=1)
    beats = (by_image >= best_own[:, None]) & ~owned  # tied own captions do not count
    return 1 + np.sum(beats, axis=1).astype(np.int64)


def image_to_text_metrics(scores: Any, caption_image: Any) -> dict[str, float]:
    """Image-to-text retrieval metrics from a text-to-image score matrix (Flickr30K/COCO).

    Each image is a query that ranks all captions by ``scores[:, image]``. Its rank is the
    best (smallest) rank among the captions it owns; an image may own any number ``>= 1``
    of captions. Ties are pessimistic: a caption not owned by the image that ties with the
    image's best own caption ranks above it, while tied captions the image owns do not
    count against it.

    Args:
        scores: ``(n_captions, n_images)`` matrix, the same one given to
            :func:`text_to_image_metrics`.
        caption_image: ``(n_captions,)`` integer index of the image each caption describes.

    Returns:
        The same keys as :func:`retrieval_metrics`, averaged over images.

    Raises:
        ValueError: if an image owns no caption (the message names the image index).
    """
    arr = _check_scores(scores)
    index = _check_index(caption_image, arr.shape[0], arr.shape[1], "caption_image")
    return _summarize_ranks(_image_ranks(arr, index))


# --------------------------------------------------------------------------------------
# Compositional probes
# --------------------------------------------------------------------------------------


def pairwise_accuracy(pos: Any, neg: Any) -> float:
    """Percent of pairs where the positive strictly out-scores the negative (chance = 50).

    Used for the Winoground-style probe: ``pos[i]`` is the score of the correct
    (caption, image) pairing and ``neg[i]`` the score of its swapped-word counterpart.
    A tie counts as wrong.

    Args:
        pos: ``(N,)`` scores of the correct pairings.
        neg: ``(N,)`` scores of the incorrect pairings, same length, ``N >= 1``.
    """
    pos_arr = _check_pair_scores(pos, "pos")
    neg_arr = _check_pair_scores(neg, "neg")
    if pos_arr.shape != neg_arr.shape:
        raise ValueError(
            f"pos and neg must have the same length, got {pos_arr.shape[0]} and {neg_arr.shape[0]}"
        )
    return _percent(pos_arr > neg_arr)


def consistent_at_1(scores: Any, truth: Any) -> float:
    """Percent of queries whose top-ranked gallery item makes the caption true.

    Args:
        scores: ``(Q, G)`` score matrix, higher = better match.
        truth: ``(Q, G)`` boolean matrix, ``truth[q, g]`` = caption ``q`` is true of item
            ``g``. Every row must contain at least one True.

    Returns:
        A percentage. Ties are pessimistic: if several items share the top score, the query
        counts as consistent only if the caption is true of all of them.
    """
    arr = _check_scores(scores)
    true_of = _check_truth(truth, arr.shape)
    empty = np.flatnonzero(~true_of.any(axis=1))
    if empty.size:
        raise ValueError(
            f"truth row {int(empty[0])} is all False: every caption must be true of at least "
            f"one gallery item ({empty.size} such row(s))"
        )
    at_top = arr == arr.max(axis=1, keepdims=True)
    return _percent(np.all(true_of | ~at_top, axis=1))


def oracle_recall_at_1(truth: Any, gt: Any) -> float:
    """The best R@1 any model could reach when captions can be true of several items.

    A query can only be answered reliably when its caption is true of exactly one gallery
    item (which must then be ``gt[q]``); if it is true of several, no score can tell them
    apart.

    Args:
        truth: ``(Q, G)`` boolean matrix, ``truth[q, g]`` = caption ``q`` is true of ``g``.
        gt: ``(Q,)`` integer index of each caption's own gallery item.

    Returns:
        The percent of queries whose caption is true of exactly one item.

    Raises:
        ValueError: if ``truth[q, gt[q]]`` is False for some ``q`` (named in the message).
    """
    true_of = _check_truth(truth)
    index = _check_index(gt, true_of.shape[0], true_of.shape[1], "gt", matrix="truth")
    own_true = true_of[np.arange(true_of.shape[0]), index]
    bad = np.flatnonzero(~own_true)
    if bad.size:
        q = int(bad[0])
        raise ValueError(
            f"truth[{q}, gt[{q}]={int(index[q])}] is False: query {q}'s caption must be true "
            f"of its own gallery item"
        )
    return _percent(np.sum(true_of, axis=1) == 1)


def r1_ceiling(truth: Any) -> float:
    """A protocol's ceiling: the best Recall@1 a model can expect, in percent.

    The course's one definition (notebooks 00, 04 and 05, the claims table). A caption true of
    ``k`` gallery items gives a model that knows exactly which items it is true of (and nothing
    more) its labelled item at the top with probability ``1 / k``; the ceiling is the mean of
    ``1 / k`` over the queries. The share of captions true of exactly one item (:func:
    `oracle_recall_at_1`) is the part of it a model can be *sure* of; a model can exceed that
    share by luck on ambiguous captions, but not the ceiling, in expectation.

    Args:
        truth: ``(Q, G)`` boolean matrix, ``truth[q, g]`` = caption ``q`` is true of ``g``;
            every row must hold at least one True.
    """
    true_of = _check_truth(truth)
    counts = true_of.sum(axis=1)
    if (counts == 0).any():
        q = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(f"truth row {q} is all False: every caption must be true of at least "
                         f"one gallery item")
    return float(100.0 * np.mean(1.0 / counts))
