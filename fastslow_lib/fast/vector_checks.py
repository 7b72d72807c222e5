"""Input checks shared by exact search and :class:`~fastslow_lib.fast.index.VectorIndex`.

Taught in notebooks/01_fast.ipynb

Every vector matrix handed to the index or to :func:`~fastslow_lib.fast.exact_search.exact_search`
goes through :func:`check_vectors` first, so a wrong dtype, shape, layout or a NaN fails at
the call with a message that names the argument and says how to fix it, instead of deep
inside faiss or as silently wrong scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fastslow_lib.config.checks import check_int

__all__ = ["check_k", "check_vectors", "to_numpy", "to_tensor"]


def check_vectors(x: Any, dim: int | None, name: str, *, allow_1d: bool = False) -> Any:
    """Validate a (n, dim) float32 matrix; return it as a C-contiguous numpy array or tensor.

    numpy input stays numpy (a non-contiguous one is refused: faiss would need a silent copy);
    a torch tensor is detached and made contiguous but stays on its device. A 1-D input
    becomes one row if ``allow_1d``. ``dim=None`` accepts any dimension.
    """
    if isinstance(x, torch.Tensor):
        if x.dtype != torch.float32:
            raise TypeError(
                f"{name}: float32 required, got {x.dtype}; use {name}.float() or "
                f"{name}.to(torch.float32)"
            )
        arr: Any = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype != np.float32:
            raise TypeError(
                f"{name}: float32 required, got {x.dtype}; use {name}.astype(np.float32)"
            )
        arr = x
    else:
        raise TypeError(
            f"{name} must be a numpy array or torch tensor of shape (n, dim), "
            f"got {type(x).__name__}"
        )
    if arr.ndim == 1 and allow_1d:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        expected = "(n, dim) or (dim,)" if allow_1d else "(n, dim)"
        raise ValueError(
            f"{name} must be 2-D {expected}, got {arr.ndim}-D with shape {tuple(arr.shape)}"
        )
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has dimension {arr.shape[1]} but the index has dimension {dim}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {tuple(arr.shape)})")
    if isinstance(arr, np.ndarray):
        if not arr.flags.c_contiguous:
            raise ValueError(
                f"{name} is not C-contiguous (e.g. a transposed or strided view); "
                f"use np.ascontiguousarray({name})"
            )
        size = int(arr.size)
        n_bad = size - int(np.count_nonzero(np.isfinite(arr)))
    else:
        arr = arr.contiguous()
        size = int(arr.numel())
        n_bad = size - int(torch.isfinite(arr).sum().item())
    if n_bad:
        raise ValueError(f"{name} must be finite, got {n_bad} NaN/inf value(s) out of {size}")
    return arr


def check_k(k: Any, ntotal: int) -> int:
    """``k`` as an ``int`` in ``1..ntotal``: a search cannot return more vectors than it holds."""
    k = check_int(k, "k", allow_numpy=True)
    if k > ntotal:
        raise ValueError(f"k={k} is larger than the number of vectors in the index ({ntotal})")
    return k


def to_numpy(x: Any) -> np.ndarray:
    """A checked matrix as a C-contiguous numpy array on the CPU (what faiss takes)."""
    if isinstance(x, torch.Tensor):
        return np.ascontiguousarray(x.cpu().numpy())
    return x


def to_tensor(x: Any, device: torch.device) -> torch.Tensor:
    """A checked matrix as a torch tensor on ``device`` (numpy input shares its memory)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    return x.to(device)
