"""A vector index for the Fast model's image embeddings: FAISS when installed, exact torch if not.

Taught in notebooks/01_fast.ipynb

The Fast (dual-encoder) model embeds every gallery image once, offline, into an L2-normalised
float32 vector of dimension ``dim``. Retrieval is then a maximum inner product search: a text
query embedding is compared with every image embedding and the ``k`` highest scores win.
:class:`VectorIndex` hides the choice of index behind one API:

* ``kind="flat"``: exact search (faiss ``IndexFlatIP``). The reference every other kind is
  measured against.
* ``kind="ivf"``: inverted file (faiss ``IndexIVFFlat``, inner product). k-means splits the
  vectors into ``nlist`` lists; a query scans only the ``nprobe`` lists whose centroids score
  highest. Needs training (see :meth:`VectorIndex.train`).
* ``kind="hnsw"``: a hierarchical navigable small-world graph (faiss ``IndexHNSWFlat``,
  ``METRIC_INNER_PRODUCT``) with ``hnsw_m`` links per node, searched greedily with a beam of
  ``ef_search``. No training; slow to build, fast to search; always on the CPU.
* ``kind="ivfpq"``: inverted file whose vectors are compressed by product quantisation (faiss
  ``IndexIVFPQ``): ``pq_m`` sub-vectors of ``dim / pq_m`` dimensions, 8 bits each. Much less
  memory, lower recall (the scores are approximate too). Needs training.

Backends: ``backend="faiss"``; ``backend="torch"`` (exact matmul + topk, on the GPU if there is
one; only ``"flat"``); ``backend="auto"`` (the default) uses faiss when it can be imported and
otherwise falls back to the torch backend with exact flat search, whatever ``kind`` was asked
for, and says so once with a :class:`UserWarning` naming the missing faiss.

GPU: with faiss built with GPU support and a GPU present (``faiss.get_num_gpus() > 0``), flat
and ivf indexes move to the GPU unless ``use_gpu=False``; hnsw and ivfpq stay on the CPU.

Search results are ``(scores, ids)``: float32 and int64 arrays of shape ``(nq, k)``, best
first. An approximate index can find fewer than ``k`` vectors for a query (e.g. ivf with a
small ``nprobe`` whose probed lists hold fewer than ``k`` vectors); faiss then pads with id
``-1`` and score ``-3.4e38`` (minus the largest float32).

Every input is checked: vectors must be numpy arrays or torch tensors of shape ``(n, dim)``,
dtype float32, finite; numpy arrays must be C-contiguous (torch tensors are made contiguous).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_lib.device import pick_device

try:
    import faiss

    HAS_FAISS: bool = True
except ImportError:  # pragma: no cover - depends on the environment
    faiss = None
    HAS_FAISS = False

__all__ = [
    "BACKENDS",
    "HAS_FAISS",
    "KINDS",
    "VectorIndex",
    "exact_search",
    "recall_at_k",
]

KINDS: tuple[str, ...] = ("flat", "ivf", "hnsw", "ivfpq")
"""The index kinds :class:`VectorIndex` builds."""

BACKENDS: tuple[str, ...] = ("auto", "faiss", "torch")
"""The values accepted for ``backend``."""

PQ_NBITS = 8
"""Bits per product-quantiser code (256 centroids per sub-quantiser) for ``kind="ivfpq"``."""

GPU_MAX_K = 2048
"""Largest ``k`` faiss GPU indexes can search for."""

_SIDECAR_FORMAT = "fastslow-vector-index"
_SIDECAR_VERSION = 1
_SAFETENSORS_KEY = "vectors"
_TORCH_CHUNK_ELEMENTS = 1 << 26  # score-matrix elements per query chunk (256 MiB of float32)

_noticed: set[str] = set()  # requested kinds already announced by the fallback notice
_gpu_resources: dict[int, Any] = {}  # one faiss StandardGpuResources per GPU, kept alive


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_vectors(x: Any, dim: int | None, name: str, *, allow_1d: bool = False) -> Any:
    """Validate a (n, dim) float32 matrix; return it as a C-contiguous numpy array or tensor.

    numpy input stays numpy (a non-contiguous one is refused); a torch tensor is detached and
    made contiguous but stays on its device. A 1-D input becomes one row if ``allow_1d``.
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


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return np.ascontiguousarray(x.cpu().numpy())
    return x


def _to_tensor(x: Any, device: torch.device) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    return x.to(device)


def _check_k(k: Any, ntotal: int) -> int:
    k = _check_int(k, "k", 1)
    if k > ntotal:
        raise ValueError(f"k={k} is larger than the number of vectors in the index ({ntotal})")
    return k


# --------------------------------------------------------------------------------------
# Exact search (the reference, and the torch backend's core)
# --------------------------------------------------------------------------------------


def _sort_ties_by_id(vals: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each row by score descending, equal scores by id ascending."""
    order = torch.argsort(ids, dim=1)
    vals, ids = vals.gather(1, order), ids.gather(1, order)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, order), ids.gather(1, order)


def _exact_topk(db: torch.Tensor, q: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` inner products of each row of ``q`` against ``db`` (both on one device).

    Deterministic under ties: among equal scores, lower ids come first, both in the order of
    the results and in which ids make the cut at the ``k``-th place.
    """
    n = db.shape[0]
    chunk = max(1, _TORCH_CHUNK_ELEMENTS // n)
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
        vals, ids = _sort_ties_by_id(vals, ids)
        out_vals.append(vals)
        out_ids.append(ids)
    return torch.cat(out_vals), torch.cat(out_ids)


def exact_search(
    db: Any, q: Any, k: int, *, device: str | torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force maximum inner product search: ``q @ db.T`` then top-``k`` per query.

    ``db`` is ``(n, dim)``, ``q`` is ``(nq, dim)`` or one ``(dim,)`` query; both float32 numpy
    arrays or torch tensors. Runs on ``device`` (default: ``db``'s device if it is a tensor,
    else :func:`fastslow_lib.device.pick_device`). Returns ``(scores, ids)``, float32 and int64
    numpy arrays of shape ``(nq, k)``, best first.

    Ties are broken by lower id first, so the result is deterministic: among vectors with
    exactly equal scores, the ones added earlier are ranked higher and are the ones kept when
    the tie straddles the ``k``-th place.
    """
    db = _check_vectors(db, None, "db")
    q = _check_vectors(q, db.shape[1], "q", allow_1d=True)
    k = _check_k(k, db.shape[0])
    if device is None:
        device = db.device if isinstance(db, torch.Tensor) else pick_device()
    device = torch.device(device)
    with torch.no_grad():
        vals, ids = _exact_topk(_to_tensor(db, device), _to_tensor(q, device), k)
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
    k = true_arr.shape[1] if k is None else _check_int(k, "k", 1)
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


# --------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------


def _default_pq_m(dim: int) -> int:
    """Largest divisor of ``dim`` that is at most ``dim // 4`` (4+ dimensions per code)."""
    target = max(1, dim // 4)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def _auto_nlist(n: int) -> int:
    """About ``4 * sqrt(n)`` lists, never more than ``n``."""
    return max(1, min(n, int(round(4 * math.sqrt(n)))))


def _fallback_notice(requested_kind: str, device: torch.device) -> None:
    if requested_kind in _noticed:
        return
    _noticed.add(requested_kind)
    extra = "" if requested_kind == "flat" else f" ({requested_kind!r} was requested)"
    warnings.warn(
        f"faiss is not installed: VectorIndex uses exact torch search (matmul + topk) on "
        f"{device}{extra}; install faiss-cpu or faiss-gpu for approximate indexes",
        UserWarning,
        stacklevel=3,
    )


class VectorIndex:
    """Inner-product search over float32 vectors with faiss, or an exact torch fallback.

    Args:
        dim: dimension of the vectors.
        kind: ``"flat"`` (exact), ``"ivf"``, ``"hnsw"`` or ``"ivfpq"`` (see the module doc).
        backend: ``"auto"`` (faiss if installed, else exact torch with a notice), ``"faiss"``
            or ``"torch"`` (exact; only ``kind="flat"``).
        nlist: number of inverted lists for ivf/ivfpq; ``None`` picks about ``4 * sqrt(n)``
            at training time, ``n`` being the number of training vectors.
        nprobe: lists scanned per query (ivf/ivfpq); can be changed later via ``.nprobe``.
        hnsw_m: links per node of the HNSW graph.
        ef_construction: HNSW beam width while building (faiss default 40; higher builds a
            better graph, more slowly). Must be set before vectors are added.
        ef_search: HNSW beam width while searching; can be changed later via ``.ef_search``.
        pq_m: ivfpq sub-quantisers; must divide ``dim``. ``None``: the largest divisor of
            ``dim`` that is at most ``dim // 4``.
        use_gpu: faiss: ``None`` moves flat/ivf to the GPU when faiss sees one, ``True``
            insists (error if there is none), ``False`` stays on the CPU. torch backend:
            ``False`` means CPU when ``device`` is not given.
        device: torch backend: where the vectors live (default
            :func:`fastslow_lib.device.pick_device`). faiss backend: ``"cpu"`` keeps the index
            on the CPU; ``"cuda:N"`` picks GPU ``N``.
    """

    def __init__(
        self,
        dim: int,
        kind: str = "flat",
        *,
        backend: str = "auto",
        nlist: int | None = None,
        nprobe: int = 16,
        hnsw_m: int = 32,
        ef_construction: int = 40,
        ef_search: int = 128,
        pq_m: int | None = None,
        use_gpu: bool | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self._dim = _check_int(dim, "dim", 1)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        self._nlist = None if nlist is None else _check_int(nlist, "nlist", 1)
        self._nprobe = _check_int(nprobe, "nprobe", 1)
        self._hnsw_m = _check_int(hnsw_m, "hnsw_m", 2)
        self._ef_construction = _check_int(ef_construction, "ef_construction", 1)
        self._ef_search = _check_int(ef_search, "ef_search", 1)
        if pq_m is None:
            pq_m = _default_pq_m(self._dim)
        self._pq_m = _check_int(pq_m, "pq_m", 1)
        if kind == "ivfpq" and self._dim % self._pq_m:
            raise ValueError(
                f"pq_m={self._pq_m} must divide dim={self._dim} (each of the pq_m sub-quantisers "
                f"encodes dim / pq_m dimensions)"
            )
        if use_gpu is not None and not isinstance(use_gpu, bool):
            raise TypeError(f"use_gpu must be True, False or None, got {use_gpu!r}")
        self._requested_kind = kind
        self._use_gpu = use_gpu
        self._device_arg = None if device is None else str(torch.device(device))

        if backend == "faiss" and not HAS_FAISS:
            raise ImportError(
                "backend='faiss' but faiss is not installed; install faiss-cpu (or faiss-gpu), "
                "or use backend='auto' / 'torch' for exact torch search"
            )
        if backend == "torch" and kind != "flat":
            raise ValueError(
                f"the torch backend only does exact search (kind='flat'); got kind={kind!r}. "
                f"Use backend='faiss' for {kind!r}"
            )
        use_faiss = backend == "faiss" or (backend == "auto" and HAS_FAISS)
        self._backend = "faiss" if use_faiss else "torch"
        self._kind = kind if self._backend == "faiss" else "flat"

        self._index: Any = None  # faiss index (None until an ivf kind is trained)
        self._gpu_id: int | None = None  # faiss GPU the index lives on, if any
        self._vectors: torch.Tensor | None = None  # torch backend storage
        if self._backend == "torch":
            self._torch_device = self._pick_torch_device()
            self._vectors = torch.empty(
                (0, self._dim), dtype=torch.float32, device=self._torch_device
            )
            if backend == "auto":
                _fallback_notice(kind, self._torch_device)
        else:
            self._gpu_target = self._pick_faiss_gpu()
            if self._kind == "flat":
                self._set_index(faiss.IndexFlatIP(self._dim))
            elif self._kind == "hnsw":
                index = faiss.IndexHNSWFlat(self._dim, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = self._ef_construction
                index.hnsw.efSearch = self._ef_search
                self._set_index(index)  # stays on the CPU

    # ---- construction helpers ----------------------------------------------------------

    def _pick_torch_device(self) -> torch.device:
        if self._device_arg is not None:
            device = pick_device(self._device_arg)
        elif self._use_gpu is False:
            device = torch.device("cpu")
        else:
            device = pick_device()
        if self._use_gpu is True and device.type == "cpu":
            raise ValueError("use_gpu=True but torch sees no GPU (device would be cpu)")
        return device

    def _pick_faiss_gpu(self) -> int | None:
        """The GPU id faiss should put flat/ivf indexes on, or None for the CPU."""
        n_gpus = faiss.get_num_gpus()
        if self._use_gpu is True and n_gpus == 0:
            raise ValueError("use_gpu=True but faiss sees no GPU (faiss.get_num_gpus() == 0)")
        if self._use_gpu is False or n_gpus == 0:
            return None
        if self._device_arg is not None:
            device = torch.device(self._device_arg)
            if device.type != "cuda":
                return None
            gpu = device.index or 0
            if gpu >= n_gpus:
                raise ValueError(f"device {self._device_arg!r}: faiss sees {n_gpus} GPU(s)")
            return gpu
        return 0

    def _set_index(self, index: Any) -> None:
        """Store a CPU faiss index, moving it to the GPU when wanted and supported."""
        if self._gpu_target is not None and self._kind in ("flat", "ivf"):
            if self._gpu_target not in _gpu_resources:
                _gpu_resources[self._gpu_target] = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(
                _gpu_resources[self._gpu_target], self._gpu_target, index
            )
            self._gpu_id = self._gpu_target
        self._index = index

    def _cpu_index(self) -> Any:
        """The faiss index on the CPU (a copy if it lives on a GPU)."""
        if self._gpu_id is not None:
            return faiss.index_gpu_to_cpu(self._index)
        return self._index

    # ---- properties ----------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return self._dim

    @property
    def kind(self) -> str:
        """The kind actually built (``"flat"`` when the auto backend fell back to torch)."""
        return self._kind

    @property
    def requested_kind(self) -> str:
        """The kind passed to the constructor."""
        return self._requested_kind

    @property
    def backend(self) -> str:
        """``"faiss"`` or ``"torch"``."""
        return self._backend

    @property
    def device(self) -> str:
        """Where the index lives: ``"cpu"``, ``"cuda:0"``, ..."""
        if self._backend == "torch":
            return str(self._torch_device)
        return "cpu" if self._gpu_id is None else f"cuda:{self._gpu_id}"

    @property
    def ntotal(self) -> int:
        """Number of vectors in the index."""
        if self._backend == "torch":
            assert self._vectors is not None
            return int(self._vectors.shape[0])
        return 0 if self._index is None else int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def is_trained(self) -> bool:
        """False only for an ivf/ivfpq index that has not been trained yet."""
        return self._backend == "torch" or (self._index is not None and self._index.is_trained)

    @property
    def nlist(self) -> int | None:
        """Number of inverted lists (ivf/ivfpq; ``None`` until trained if it was not given)."""
        return self._nlist

    @property
    def nprobe(self) -> int:
        """Lists scanned per query by ivf/ivfpq. Settable at any time."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = _check_int(value, "nprobe", 1)
        self._apply_search_params()

    @property
    def ef_search(self) -> int:
        """HNSW search beam width. Settable at any time."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = _check_int(value, "ef_search", 1)
        self._apply_search_params()

    def _apply_search_params(self) -> None:
        if self._index is None:
            return
        if self._kind in ("ivf", "ivfpq"):
            self._index.nprobe = self._nprobe  # CPU IndexIVF and GpuIndexIVF both have it
        elif self._kind == "hnsw":
            self._index.hnsw.efSearch = self._ef_search

    def describe(self) -> str:
        """One line, e.g. ``"faiss hnsw (M=32, efSearch=128) on cpu, 100000 vectors"``."""
        if self._backend == "torch":
            params = "exact"
            if self._requested_kind != "flat":
                params += f"; faiss missing, {self._requested_kind!r} requested"
            name = "flat"
        elif self._kind == "flat":
            params, name = "exact", "flat"
        elif self._kind == "hnsw":
            name = "hnsw"
            params = (
                f"M={self._hnsw_m}, efConstruction={self._ef_construction}, "
                f"efSearch={self._ef_search}"
            )
        else:
            name = self._kind
            nlist = "auto, untrained" if self._nlist is None else str(self._nlist)
            params = f"nlist={nlist}, nprobe={self._nprobe}"
            if self._kind == "ivfpq":
                params += f", pq_m={self._pq_m}x{PQ_NBITS} bits"
        n = self.ntotal
        return f"{self._backend} {name} ({params}) on {self.device}, {n} vector{'s' * (n != 1)}"

    def __repr__(self) -> str:
        return f"VectorIndex({self.describe()})"

    # ---- training and adding ---------------------------------------------------------

    def min_train_points(self) -> int:
        """How many vectors :meth:`train` needs (0 for kinds that need no training)."""
        if self._kind not in ("ivf", "ivfpq") or self._backend == "torch":
            return 0
        needed = self._nlist if self._nlist is not None else 16  # 4*sqrt(n) <= n from n = 16
        if self._kind == "ivfpq":
            needed = max(needed, 2**PQ_NBITS)
        return needed

    def train(self, x: Any) -> None:
        """Train an ivf/ivfpq index on ``x`` (n, dim) (k-means for the lists, plus the product
        quantiser for ivfpq). A no-op for flat, hnsw and the torch backend.

        Train on a sample of the data when it is large: faiss's k-means uses at most 256
        vectors per list anyway, and fewer than 39 per list prints a faiss warning.
        """
        x = _check_vectors(x, self._dim, "x")
        if self._kind not in ("ivf", "ivfpq") or self._backend == "torch":
            return
        if self.ntotal:
            raise ValueError(
                f"the {self._kind} index already holds {self.ntotal} vectors; training again "
                f"would invalidate them (create a new VectorIndex instead)"
            )
        n = int(x.shape[0])
        needed = self.min_train_points()
        if n < needed:
            raise ValueError(self._not_enough(n, needed, "train"))
        nlist = self._nlist if self._nlist is not None else _auto_nlist(n)
        quantizer = faiss.IndexFlatIP(self._dim)
        if self._kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, self._dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(
                quantizer, self._dim, nlist, self._pq_m, PQ_NBITS, faiss.METRIC_INNER_PRODUCT
            )
        index.train(_to_numpy(x))
        index.nprobe = self._nprobe
        self._nlist = nlist
        self._index = None
        self._set_index(index)
        self._apply_search_params()

    def _not_enough(self, n: int, needed: int, what: str) -> str:
        nlist = "auto" if self._nlist is None else self._nlist
        why = f"nlist={nlist}"
        if self._kind == "ivfpq":
            why += f", and {2**PQ_NBITS} for the {PQ_NBITS}-bit product quantiser"
        return (
            f"the {self._kind} index needs at least {needed} training vectors ({why}), "
            f"got {n} in {what}(); call train() on a larger sample first, or lower nlist"
        )

    def add(self, x: Any) -> None:
        """Append the rows of ``x`` (n, dim), float32; their ids are ``ntotal .. ntotal+n-1``.

        An untrained ivf/ivfpq index is first trained on ``x`` if ``x`` has at least
        :meth:`min_train_points` rows, else a ``ValueError`` says how many are needed.
        """
        x = _check_vectors(x, self._dim, "x")
        if self._backend == "torch":
            assert self._vectors is not None
            self._vectors = torch.cat([self._vectors, _to_tensor(x, self._torch_device)])
            return
        if not self.is_trained:
            n, needed = int(x.shape[0]), self.min_train_points()
            if n < needed:
                raise ValueError(self._not_enough(n, needed, "add"))
            self.train(x)
        self._index.add(_to_numpy(x))

    # ---- searching ---------------------------------------------------------------------

    def search(self, q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` highest inner products for each query: ``(scores, ids)``, best first.

        ``q`` is ``(nq, dim)`` or a single ``(dim,)`` query, float32. Returns float32 scores
        and int64 ids, both ``(nq, k)``. See the module doc for ``-1`` padding ids.
        """
        if self.ntotal == 0:
            raise ValueError("index is empty: add vectors first")
        q = _check_vectors(q, self._dim, "q", allow_1d=True)
        k = _check_k(k, self.ntotal)
        if self._backend == "torch":
            assert self._vectors is not None
            with torch.no_grad():
                vals, ids = _exact_topk(self._vectors, _to_tensor(q, self._torch_device), k)
            return vals.cpu().numpy().astype(np.float32), ids.cpu().numpy().astype(np.int64)
        if self._gpu_id is not None and k > GPU_MAX_K:
            raise ValueError(f"k={k} is above {GPU_MAX_K}, the largest k faiss GPU indexes allow")
        scores, ids = self._index.search(_to_numpy(q), k)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    # ---- memory, saving, loading --------------------------------------------------------

    def memory_bytes(self) -> int:
        """Bytes the index holds: faiss's serialised size, or the torch matrix's size."""
        if self._backend == "torch":
            assert self._vectors is not None
            return int(self._vectors.numel() * self._vectors.element_size())
        if self._index is None:
            return 0
        return int(faiss.serialize_index(self._cpu_index()).size)

    def _settings(self) -> dict[str, Any]:
        return {
            "format": _SIDECAR_FORMAT,
            "version": _SIDECAR_VERSION,
            "backend": self._backend,
            "kind": self._kind,
            "requested_kind": self._requested_kind,
            "dim": self._dim,
            "ntotal": self.ntotal,
            "nlist": self._nlist,
            "nprobe": self._nprobe,
            "hnsw_m": self._hnsw_m,
            "ef_construction": self._ef_construction,
            "ef_search": self._ef_search,
            "pq_m": self._pq_m,
        }

    @staticmethod
    def sidecar_path(path: str | Path) -> Path:
        """The JSON settings file saved next to ``path``: ``<path>.json``."""
        return Path(f"{path}.json")

    def save(self, path: str | Path) -> Path:
        """Write the index to ``path`` and its settings to ``<path>.json``; return ``path``.

        faiss indexes use ``faiss.write_index`` (a GPU index is copied to the CPU first); the
        torch backend writes a safetensors file holding the matrix.
        """
        path = Path(path)
        if self._backend == "faiss" and self._index is None:
            raise ValueError(
                f"nothing to save: the {self._kind} index is not trained yet (call train or add)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._backend == "torch":
            from safetensors.torch import save_file

            assert self._vectors is not None
            save_file({_SAFETENSORS_KEY: self._vectors.cpu().contiguous()}, str(path))
        else:
            faiss.write_index(self._cpu_index(), str(path))
        text = json.dumps(self._settings(), indent=1, sort_keys=True)
        self.sidecar_path(path).write_text(text + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        use_gpu: bool | None = None,
        device: str | torch.device | None = None,
    ) -> VectorIndex:
        """Read an index written by :meth:`save` (``use_gpu``/``device`` as in the constructor).

        A missing file raises ``FileNotFoundError`` naming it; a truncated or corrupt one
        raises ``ValueError`` naming it.
        """
        path = Path(path)
        sidecar = cls.sidecar_path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no saved index at {path}")
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"settings file {sidecar} is missing (VectorIndex.save writes it next to {path})"
            )
        try:
            settings = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"settings file {sidecar} is not valid JSON: {err}") from None
        if not isinstance(settings, dict) or settings.get("format") != _SIDECAR_FORMAT:
            raise ValueError(f"{sidecar} is not a VectorIndex settings file")
        if settings.get("version") != _SIDECAR_VERSION:
            raise ValueError(
                f"{sidecar} has version {settings.get('version')!r}; this fastslow_lib reads "
                f"version {_SIDECAR_VERSION}"
            )
        backend = settings["backend"]
        if backend == "faiss" and not HAS_FAISS:
            raise ImportError(f"{path} is a faiss index but faiss is not installed")
        out = cls(
            settings["dim"],
            settings["kind"],
            backend=backend,
            nlist=settings["nlist"],
            nprobe=settings["nprobe"],
            hnsw_m=settings["hnsw_m"],
            ef_construction=settings["ef_construction"],
            ef_search=settings["ef_search"],
            pq_m=settings["pq_m"],
            # faiss: build the empty placeholder on the CPU; the loaded index moves below
            use_gpu=False if backend == "faiss" else use_gpu,
            device=device,
        )
        out._requested_kind = settings["requested_kind"]
        if backend == "torch":
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                vectors = load_file(str(path))[_SAFETENSORS_KEY]
            except (SafetensorError, KeyError, OSError) as err:
                raise ValueError(
                    f"{path} is not a readable VectorIndex safetensors file "
                    f"(truncated or corrupt?): {err}"
                ) from None
            if vectors.dtype != torch.float32 or tuple(vectors.shape[1:]) != (out._dim,):
                raise ValueError(
                    f"{path} holds a {vectors.dtype} matrix of shape {tuple(vectors.shape)}, "
                    f"expected float32 (n, {out._dim})"
                )
            out._vectors = vectors.to(out._torch_device)
        else:
            try:
                index = faiss.read_index(str(path))
            except RuntimeError as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise ValueError(
                    f"{path} could not be read as a faiss index (truncated or corrupt?): "
                    f"{first[:300]}"
                ) from None
            if index.d != out._dim:
                raise ValueError(f"{path} holds dimension {index.d}, settings say {out._dim}")
            out._use_gpu = use_gpu
            out._gpu_target = out._pick_faiss_gpu()
            out._index = None
            out._set_index(index)
            out._apply_search_params()
        if out.ntotal != settings["ntotal"]:
            raise ValueError(
                f"{path} holds {out.ntotal} vectors but {sidecar} says {settings['ntotal']}"
            )
        return out
