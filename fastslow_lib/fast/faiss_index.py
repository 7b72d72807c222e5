"""Building faiss indexes for :class:`~fastslow_lib.fast.index.VectorIndex`: kinds, training, GPU.

Taught in notebooks/01_fast.ipynb (flat, IVF, HNSW) and notebooks/06_demo_and_scale.ipynb
(IVF, HNSW and IVF-PQ at scale).

Every index here scores by inner product (the Fast embeddings are L2-normalised, so that is
cosine similarity). The ANN kinds are built by ``faiss.index_factory`` from a description string
(:func:`factory_string`) with ``faiss.METRIC_INNER_PRODUCT``:

* flat: ``IndexFlatIP``, exact (the factory's ``"Flat"``; built as ``IndexFlatIP`` itself, the
  class faiss reads a saved flat inner-product index back as).
* ivf: ``"IVF{nlist},Flat"``, an ``IndexIVFFlat``; k-means puts the vectors into ``nlist``
  lists and a query scans the ``nprobe`` closest ones. Trained before vectors can be added.
* hnsw: ``"HNSW{M},Flat"``, an ``IndexHNSWFlat``: a navigable small-world graph with ``M``
  links per node; no training. ``efConstruction`` and ``efSearch`` are set after building.
* ivfpq: ``"IVF{nlist},PQ{pq_m}x8np"``, an ``IndexIVFPQ``: ivf whose vectors are compressed to
  ``pq_m`` codes of :data:`PQ_NBITS` bits. Trained. ``np``: no polysemous training (the
  factory's default trains it, a reordering of the codes for Hamming-distance filtering that
  this index does not use).

When faiss sees a GPU, only the :data:`GPU_KINDS` (flat, ivf) move to it; hnsw and ivfpq stay
on the CPU.

faiss is optional: :data:`HAS_FAISS` says whether it imported, and ``faiss`` is ``None`` when
it did not (callers check :data:`HAS_FAISS` before calling anything here).
"""

from __future__ import annotations

import math
from typing import Any

import torch

try:
    import faiss

    HAS_FAISS: bool = True
except ImportError:  # pragma: no cover - depends on the environment
    faiss = None
    HAS_FAISS = False

__all__ = [
    "GPU_KINDS",
    "GPU_MAX_K",
    "HAS_FAISS",
    "PQ_NBITS",
    "TRAINED_KINDS",
    "auto_nlist",
    "cpu_copy",
    "default_pq_m",
    "describe_params",
    "factory_string",
    "faiss",
    "gpu_resources",
    "min_train_points",
    "new_flat_index",
    "new_hnsw_index",
    "new_ivf_index",
    "not_enough_message",
    "pick_faiss_gpu",
    "place_index",
    "serialized_bytes",
    "set_search_params",
]

PQ_NBITS = 8
"""Bits per product-quantiser code (256 centroids per sub-quantiser) for ``kind="ivfpq"``."""

GPU_MAX_K = 2048
"""Largest ``k`` faiss GPU indexes can search for."""

TRAINED_KINDS: tuple[str, ...] = ("ivf", "ivfpq")
"""Kinds whose lists (and codes) must be trained before vectors are added."""

GPU_KINDS: tuple[str, ...] = ("flat", "ivf")
"""Kinds moved to the GPU when faiss has one; the others stay on the CPU."""

gpu_resources: dict[int, Any] = {}
"""One faiss ``StandardGpuResources`` per GPU id, created on first use and kept alive."""


def default_pq_m(dim: int) -> int:
    """Largest divisor of ``dim`` that is at most ``dim // 4`` (4+ dimensions per code)."""
    target = max(1, dim // 4)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def auto_nlist(n: int) -> int:
    """About ``4 * sqrt(n)`` lists, never more than ``n``."""
    return max(1, min(n, int(round(4 * math.sqrt(n)))))


def min_train_points(kind: str, nlist: int | None) -> int:
    """Training vectors a ``kind`` index needs: ``nlist`` (16 when automatic), 256 for ivfpq.

    0 for kinds that need no training.
    """
    if kind not in TRAINED_KINDS:
        return 0
    needed = nlist if nlist is not None else 16  # 4*sqrt(n) <= n from n = 16
    if kind == "ivfpq":
        needed = max(needed, 2**PQ_NBITS)
    return needed


def not_enough_message(kind: str, nlist: int | None, n: int, needed: int, what: str) -> str:
    """The error for ``what`` (``"train"`` or ``"add"``) given ``n`` < ``needed`` vectors."""
    why = f"nlist={'auto' if nlist is None else nlist}"
    if kind == "ivfpq":
        why += f", and {2**PQ_NBITS} for the {PQ_NBITS}-bit product quantiser"
    return (
        f"the {kind} index needs at least {needed} training vectors ({why}), "
        f"got {n} in {what}(); call train() on a larger sample first, or lower nlist"
    )


def new_flat_index(dim: int) -> Any:
    """An empty exact inner-product index."""
    return faiss.IndexFlatIP(dim)


def factory_string(kind: str, *, nlist: int = 0, hnsw_m: int = 0, pq_m: int = 0) -> str:
    """The ``faiss.index_factory`` description of a ``kind`` index, e.g. ``"IVF64,Flat"``."""
    strings = {"flat": "Flat", "ivf": f"IVF{nlist},Flat", "hnsw": f"HNSW{hnsw_m},Flat",
               "ivfpq": f"IVF{nlist},PQ{pq_m}x{PQ_NBITS}np"}
    if kind not in strings:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {sorted(strings)}")
    return strings[kind]


def new_hnsw_index(dim: int, m: int, ef_construction: int, ef_search: int) -> Any:
    """An empty inner-product HNSW graph with ``m`` links per node and the given beams."""
    index = faiss.index_factory(dim, factory_string("hnsw", hnsw_m=m),
                                faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = ef_search
    return index


def new_ivf_index(kind: str, dim: int, nlist: int, pq_m: int) -> Any:
    """An untrained ivf (``IndexIVFFlat``) or ivfpq (``IndexIVFPQ``) inner-product index."""
    if kind not in TRAINED_KINDS:
        raise ValueError(f"new_ivf_index builds {TRAINED_KINDS}, got {kind!r}")
    return faiss.index_factory(dim, factory_string(kind, nlist=nlist, pq_m=pq_m),
                               faiss.METRIC_INNER_PRODUCT)


def set_search_params(index: Any, kind: str, nprobe: int, ef_search: int) -> None:
    """Apply ``nprobe`` (ivf/ivfpq) or ``ef_search`` (hnsw) to a built index."""
    if kind in TRAINED_KINDS:
        index.nprobe = nprobe  # CPU IndexIVF and GpuIndexIVF both have it
    elif kind == "hnsw":
        index.hnsw.efSearch = ef_search


def describe_params(
    kind: str,
    *,
    nlist: int | None,
    nprobe: int,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int,
    pq_m: int,
) -> str:
    """The settings that matter for ``kind``, e.g. ``"nlist=64, nprobe=8"``."""
    if kind == "flat":
        return "exact"
    if kind == "hnsw":
        return f"M={hnsw_m}, efConstruction={ef_construction}, efSearch={ef_search}"
    params = f"nlist={'auto, untrained' if nlist is None else nlist}, nprobe={nprobe}"
    if kind == "ivfpq":
        params += f", pq_m={pq_m}x{PQ_NBITS} bits"
    return params


def pick_faiss_gpu(use_gpu: bool | None, device: str | None) -> int | None:
    """The GPU id faiss should put flat/ivf indexes on, or None for the CPU.

    ``use_gpu``: ``None`` uses a GPU when faiss sees one, ``True`` insists, ``False`` refuses.
    ``device``: ``"cpu"`` keeps the CPU, ``"cuda:N"`` picks GPU ``N``.
    """
    n_gpus = faiss.get_num_gpus()
    if use_gpu is True and n_gpus == 0:
        raise ValueError("use_gpu=True but faiss sees no GPU (faiss.get_num_gpus() == 0)")
    if use_gpu is False or n_gpus == 0:
        return None
    if device is not None:
        parsed = torch.device(device)
        if parsed.type != "cuda":
            return None
        gpu = parsed.index or 0
        if gpu >= n_gpus:
            raise ValueError(f"device {device!r}: faiss sees {n_gpus} GPU(s)")
        return gpu
    return 0


def place_index(index: Any, kind: str, gpu: int | None) -> tuple[Any, int | None]:
    """Move a CPU index to GPU ``gpu`` when it is a GPU kind: ``(index, gpu id or None)``."""
    if gpu is None or kind not in GPU_KINDS:
        return index, None
    if gpu not in gpu_resources:
        gpu_resources[gpu] = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(gpu_resources[gpu], gpu, index), gpu


def cpu_copy(index: Any, gpu: int | None) -> Any:
    """The index on the CPU: itself, or a copy when it lives on GPU ``gpu``."""
    if gpu is not None:
        return faiss.index_gpu_to_cpu(index)
    return index


def serialized_bytes(cpu_index: Any) -> int:
    """Size in bytes of a CPU index as faiss serialises it (what it costs in memory)."""
    return int(faiss.serialize_index(cpu_index).size)
