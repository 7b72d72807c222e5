"""Exact maximum inner product search in torch, and recall against it.

Taught in notebooks/01_fast.ipynb

:func:`exact_search` (``q @ db.T`` then top-``k``) is the reference every approximate index
is measured against, and the core of :class:`~fastslow_lib.fast.index.VectorIndex`'s torch
backend. Its ties are broken by lower id, so two runs (or a GPU and a CPU run) return the
same ids. :func:`recall_at_k` measures how many of those exact neighbours an approximate
search found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fastslow_lib.config.checks import check_int
from fastslow_lib.core.device import pick_device
from fastslow_lib.fast.vector_checks import check_k, check_vectors, to_tensor

__all__ = [
    "TORCH_CHUNK_ELEMENTS",
    "exact_search",
    "exact_topk",
    "pick_torch_device",
    "recall_at_k",
    "sort_ties_by_id",
]

TORCH_CHUNK_ELEMENTS = 1 << 26
"""Score-matrix elements computed per query chunk (256 MiB of float32), bounding memory."""


def pick_torch_device(use_gpu: bool | None, device: str | None) -> torch.device:
    """Where the torch backend keeps its vectors: ``device`` if given, the CPU for
    ``use_gpu=False``, else :func:`~fastslow_lib.core.device.pick_device`'s choice.

    ``use_gpu=True`` refuses to end up on the CPU.
    """
    if device is not None:
        picked = pick_device(device)
    elif use_gpu is False:
        picked = torch.device("cpu")
    else:
        picked = pick_device()
    if use_gpu is True and picked.type == "cpu":
        raise ValueError("use_gpu=True but torch sees no GPU (device would be cpu)")
    return picked


def sort_ties_by_id(vals: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each row by score descending, equal scores by id ascending."""
    order = torch.argsort(ids, dim=1)
    vals, ids = vals.gather(1, order), ids.gather(1, order)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, order), ids.gather(1, order)


def exact_topk(db: torch.Tensor, q: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` inner products of each row of ``q`` against ``db`` (both on one device).

    Deterministic under ties: among equal scores, lower ids come first, both in the order of
    the results and in which ids make the cut at the ``k``-th place. Inputs are not checked:
    callers pass matrices already through :func:`~fastslow_lib.fast.vector_checks.check_vectors`.
    """
    n = db.shape[0]
    chunk = max(1, TORCH_CHUNK_ELEMENTS // n)
    out_vals, out_ids = [], []
    for start in range(0, q.shape[0], chunk):
        scores = q[start : start + chunk] @ db.T
        vals, ids = torch.topk(scores, k, dim=1, largest=True, sorted=True)
        kth = vals[:, -1:]
        # Rows where more vectors tie at the k-th score than topk kept: topk may have kept any
        # of them, so redo those rows with a stable full sort (lowest ids win the tie).
        ambiguous = (scores == kth).sum(1) != (vals == kth).sum(1)
        for row in torch.nonzero(ambiguous).flatten().tolist():
            srt = torch.sort(scores[row], descending=True, stable=True)
            vals[row], ids[row] = srt.values[:k], srt.indices[:k]
        vals, ids = sort_ties_by_id(vals, ids)
        out_vals.append(vals)
        out_ids.append(ids)
    return torch.cat(out_vals), torch.cat(out_ids)


def exact_search(
    db: Any, q: Any, k: int, *, device: str | torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force maximum inner product search: ``q @ db.T`` then top-``k`` per query.

    ``db`` is ``(n, dim)``, ``q`` is ``(nq, dim)`` or one ``(dim,)`` query; both float32 numpy
    arrays or torch tensors. Runs on ``device`` (default: ``db``'s device if it is a tensor,
    else :func:`fastslow_lib.core.device.pick_device`). Returns ``(scores, ids)``, float32 and
    int64 numpy arrays of shape ``(nq, k)``, best first.

    Ties are broken by lower id first, so the result is deterministic: among vectors with
    exactly equal scores, the ones added earlier are ranked higher and are the ones kept when
    the tie straddles the ``k``-th place.
    """
    db = check_vectors(db, None, "db")
    q = check_vectors(q, db.shape[1], "q", allow_1d=True)
    k = check_k(k, db.shape[0])
    if device is None:
        device = db.device if isinstance(db, torch.Tensor) else pick_device()
    device = torch.device(device)
    with torch.no_grad():
        vals, ids = exact_topk(to_tensor(db, device), to_tensor(q, device), k)
    return vals.cpu().numpy().astype(np.float32), ids.cpu().numpy().astype(np.int64)


def recall_at_k(ids: Any, true_ids: Any, k: int | None = None) -> float:
    """Mean overlap between each row's first ``k`` ``ids`` and first ``k`` ``true_ids``.

    This is "k-recall@k": the fraction of the exact top-``k`` neighbours (``true_ids``, e.g.
    from a flat index) that the approximate search also returned in its top ``k``. ``k``
    defaults to the number of columns of ``true_ids``. Padding ids (``-1``) never count.
    """
    ids_arr = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids)
    true_arr = np.asarray(true_ids.cpu() if isinstance(true_ids, torch.Tensor) else true_ids)
    for arr, name in ((ids_arr, "ids"), (true_arr, "true_ids")):
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"{name} must be a 2-D integer array (nq, k), got shape {arr.shape} "
                f"dtype {arr.dtype}"
            )
    if ids_arr.shape[0] != true_arr.shape[0]:
        raise ValueError(f"ids has {ids_arr.shape[0]} rows but true_ids has {true_arr.shape[0]}")
    k = true_arr.shape[1] if k is None else check_int(k, "k", allow_numpy=True)
    if k > min(ids_arr.shape[1], true_arr.shape[1]):
        raise ValueError(
            f"k={k} is larger than the columns available (ids {ids_arr.shape[1]}, "
            f"true_ids {true_arr.shape[1]})"
        )
    if ids_arr.shape[0] == 0:
        raise ValueError("ids has no rows")
    hits = 0
    for found, truth in zip(ids_arr[:, :k], true_arr[:, :k], strict=True):
        hits += len(set(found[found >= 0].tolist()) & set(truth[truth >= 0].tolist()))
    return hits / (ids_arr.shape[0] * k)
