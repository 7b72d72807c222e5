"""A vector index for the Fast model's image embeddings: FAISS when installed, exact torch if not.

Taught in notebooks/01_fast.ipynb (flat, IVF, HNSW); notebooks/06_demo_and_scale.ipynb runs
IVF, HNSW and IVF-PQ at scale.

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

The pieces live next door: :mod:`~fastslow_lib.fast.vector_checks` (input checks),
:mod:`~fastslow_lib.fast.exact_search` (:func:`exact_search`, :func:`recall_at_k`, the torch
backend's search), :mod:`~fastslow_lib.fast.faiss_index` (building each faiss kind, GPU
placement) and :mod:`~fastslow_lib.fast.index_io` (the files :meth:`VectorIndex.save` writes).
Import their names from them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_lib.config.checks import check_int, check_optional_int
from fastslow_lib.fast import faiss_index as fx
from fastslow_lib.fast import index_io
from fastslow_lib.fast.exact_search import exact_topk, pick_torch_device
from fastslow_lib.fast.faiss_index import GPU_MAX_K, HAS_FAISS
from fastslow_lib.fast.vector_checks import check_k, check_vectors, to_numpy, to_tensor

__all__ = ["BACKENDS", "KINDS", "VectorIndex"]

KINDS: tuple[str, ...] = ("flat", "ivf", "hnsw", "ivfpq")
"""The index kinds :class:`VectorIndex` builds."""

BACKENDS: tuple[str, ...] = ("auto", "faiss", "torch")
"""The values accepted for ``backend``."""

_noticed: set[str] = set()  # requested kinds already announced by the fallback notice


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
            :func:`fastslow_lib.core.device.pick_device`). faiss backend: ``"cpu"`` keeps the index
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
        self._dim = check_int(dim, "dim", 1, allow_numpy=True)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        self._nlist = check_optional_int(nlist, "nlist", allow_numpy=True)
        self._nprobe = check_int(nprobe, "nprobe", 1, allow_numpy=True)
        self._hnsw_m = check_int(hnsw_m, "hnsw_m", 2, allow_numpy=True)
        self._ef_construction = check_int(ef_construction, "ef_construction", 1, allow_numpy=True)
        self._ef_search = check_int(ef_search, "ef_search", 1, allow_numpy=True)
        if pq_m is None:
            pq_m = fx.default_pq_m(self._dim)
        self._pq_m = check_int(pq_m, "pq_m", 1, allow_numpy=True)
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
            self._torch_device = pick_torch_device(self._use_gpu, self._device_arg)
            self._vectors = torch.empty(
                (0, self._dim), dtype=torch.float32, device=self._torch_device
            )
            if backend == "auto":
                _fallback_notice(kind, self._torch_device)
        else:
            self._gpu_target = fx.pick_faiss_gpu(self._use_gpu, self._device_arg)
            if self._kind == "flat":
                self._set_index(fx.new_flat_index(self._dim))
            elif self._kind == "hnsw":
                self._set_index(  # stays on the CPU
                    fx.new_hnsw_index(
                        self._dim, self._hnsw_m, self._ef_construction, self._ef_search
                    )
                )

    # ---- construction helpers ----------------------------------------------------------

    def _set_index(self, index: Any) -> None:
        """Store a CPU faiss index, moving it to the GPU when wanted and supported."""
        self._index, self._gpu_id = fx.place_index(index, self._kind, self._gpu_target)

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
        self._nprobe = check_int(value, "nprobe", 1, allow_numpy=True)
        self._apply_search_params()

    @property
    def ef_search(self) -> int:
        """HNSW search beam width. Settable at any time."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = check_int(value, "ef_search", 1, allow_numpy=True)
        self._apply_search_params()

    def _apply_search_params(self) -> None:
        if self._index is not None:
            fx.set_search_params(self._index, self._kind, self._nprobe, self._ef_search)

    def describe(self) -> str:
        """One line, e.g. ``"faiss hnsw (M=32, efSearch=128) on cpu, 100000 vectors"``."""
        if self._backend == "torch":
            params = "exact"
            if self._requested_kind != "flat":
                params += f"; faiss missing, {self._requested_kind!r} requested"
            name = "flat"
        else:
            name = self._kind
            params = fx.describe_params(
                self._kind,
                nlist=self._nlist,
                nprobe=self._nprobe,
                hnsw_m=self._hnsw_m,
                ef_construction=self._ef_construction,
                ef_search=self._ef_search,
                pq_m=self._pq_m,
            )
        n = self.ntotal
        return f"{self._backend} {name} ({params}) on {self.device}, {n} vector{'s' * (n != 1)}"

    def __repr__(self) -> str:
        return f"VectorIndex({self.describe()})"

    # ---- training and adding ---------------------------------------------------------

    def min_train_points(self) -> int:
        """How many vectors :meth:`train` needs (0 for kinds that need no training)."""
        if self._backend == "torch":
            return 0
        return fx.min_train_points(self._kind, self._nlist)

    def train(self, x: Any) -> None:
        """Train an ivf/ivfpq index on ``x`` (n, dim) (k-means for the lists, plus the product
        quantiser for ivfpq). A no-op for flat, hnsw and the torch backend.

        Train on a sample of the data when it is large: faiss's k-means uses at most 256
        vectors per list anyway, and fewer than 39 per list prints a faiss warning.
        """
        x = check_vectors(x, self._dim, "x")
        if self._kind not in fx.TRAINED_KINDS or self._backend == "torch":
            return
        if self.ntotal:
            raise ValueError(
                f"the {self._kind} index already holds {self.ntotal} vectors; training again "
                f"would invalidate them (create a new VectorIndex instead)"
            )
        n = int(x.shape[0])
        needed = self.min_train_points()
        if n < needed:
            raise ValueError(fx.not_enough_message(self._kind, self._nlist, n, needed, "train"))
        nlist = self._nlist if self._nlist is not None else fx.auto_nlist(n)
        index = fx.new_ivf_index(self._kind, self._dim, nlist, self._pq_m)
        index.train(to_numpy(x))
        self._nlist = nlist
        self._set_index(index)
        self._apply_search_params()

    def add(self, x: Any) -> None:
        """Append the rows of ``x`` (n, dim), float32; their ids are ``ntotal .. ntotal+n-1``.

        An untrained ivf/ivfpq index is first trained on ``x`` if ``x`` has at least
        :meth:`min_train_points` rows, else a ``ValueError`` says how many are needed.
        """
        x = check_vectors(x, self._dim, "x")
        if self._backend == "torch":
            assert self._vectors is not None
            self._vectors = torch.cat([self._vectors, to_tensor(x, self._torch_device)])
            return
        if not self.is_trained:
            n, needed = int(x.shape[0]), self.min_train_points()
            if n < needed:
                raise ValueError(fx.not_enough_message(self._kind, self._nlist, n, needed, "add"))
            self.train(x)
        self._index.add(to_numpy(x))

    # ---- searching ---------------------------------------------------------------------

    def search(self, q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` highest inner products for each query: ``(scores, ids)``, best first.

        ``q`` is ``(nq, dim)`` or a single ``(dim,)`` query, float32. Returns float32 scores
        and int64 ids, both ``(nq, k)``. See the module doc for ``-1`` padding ids.
        """
        if self.ntotal == 0:
            raise ValueError("index is empty: add vectors first")
        q = check_vectors(q, self._dim, "q", allow_1d=True)
        k = check_k(k, self.ntotal)
        if self._backend == "torch":
            assert self._vectors is not None
            with torch.no_grad():
                vals, ids = exact_topk(self._vectors, to_tensor(q, self._torch_device), k)
            return vals.cpu().numpy().astype(np.float32), ids.cpu().numpy().astype(np.int64)
        if self._gpu_id is not None and k > GPU_MAX_K:
            raise ValueError(f"k={k} is above {GPU_MAX_K}, the largest k faiss GPU indexes allow")
        scores, ids = self._index.search(to_numpy(q), k)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    # ---- memory, saving, loading --------------------------------------------------------

    def memory_bytes(self) -> int:
        """Bytes the index holds: faiss's serialised size, or the torch matrix's size."""
        if self._backend == "torch":
            assert self._vectors is not None
            return int(self._vectors.numel() * self._vectors.element_size())
        if self._index is None:
            return 0
        return fx.serialized_bytes(fx.cpu_copy(self._index, self._gpu_id))

    def _settings(self) -> dict[str, Any]:
        """What :meth:`load` needs to rebuild this index around the saved vectors."""
        names = ("backend", "kind", "requested_kind", "dim", "nlist", "nprobe", "hnsw_m")
        names += ("ef_construction", "ef_search", "pq_m")
        return {"ntotal": self.ntotal, **{name: getattr(self, f"_{name}") for name in names}}

    @staticmethod
    def sidecar_path(path: str | Path) -> Path:
        """The JSON settings file saved next to ``path``: ``<path>.json``."""
        return index_io.sidecar_path(path)

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
            assert self._vectors is not None
            index_io.write_vectors_file(path, self._vectors)
        else:
            index_io.write_faiss_file(path, fx.cpu_copy(self._index, self._gpu_id))
        index_io.write_settings(path, self._settings())
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
        settings = index_io.read_settings(path)
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
            vectors = index_io.read_vectors_file(path, out._dim)
            out._vectors = vectors.to(out._torch_device)
        else:
            index = index_io.read_faiss_file(path, out._dim)
            out._use_gpu = use_gpu
            out._gpu_target = fx.pick_faiss_gpu(use_gpu, out._device_arg)
            out._set_index(index)
            out._apply_search_params()
        if out.ntotal != settings["ntotal"]:
            raise ValueError(
                f"{path} holds {out.ntotal} vectors but {cls.sidecar_path(path)} says "
                f"{settings['ntotal']}"
            )
        return out
