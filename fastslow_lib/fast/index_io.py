"""Saving and loading :class:`~fastslow_lib.fast.index.VectorIndex` files.

Taught in notebooks/01_fast.ipynb

An index is built once, offline, and loaded by whatever serves the queries, so it is saved as
two files:

* ``<path>``: the vectors: ``faiss.write_index`` for a faiss index, a safetensors file holding
  the float32 matrix for the torch backend;
* ``<path>.json`` (the *sidecar*): the settings needed to rebuild the :class:`VectorIndex`
  around it (kind, backend, nprobe, ...), tagged with :data:`SIDECAR_FORMAT` and
  :data:`SIDECAR_VERSION` so a foreign or newer file is refused rather than misread.

Every read failure names the file: missing files raise ``FileNotFoundError``, truncated or
corrupt ones ``ValueError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from fastslow_lib.core.checkpoint import write_atomic
from fastslow_lib.fast.faiss_index import faiss

__all__ = [
    "SAFETENSORS_KEY",
    "SIDECAR_FORMAT",
    "SIDECAR_VERSION",
    "read_faiss_file",
    "read_settings",
    "read_vectors_file",
    "sidecar_path",
    "write_faiss_file",
    "write_settings",
    "write_vectors_file",
]

SIDECAR_FORMAT = "fastslow-vector-index"
"""The ``format`` field of every sidecar."""

SIDECAR_VERSION = 1
"""The sidecar version this code writes and reads."""

SAFETENSORS_KEY = "vectors"
"""The tensor name of the matrix in a torch backend's safetensors file."""


def sidecar_path(path: str | Path) -> Path:
    """The JSON settings file saved next to ``path``: ``<path>.json``."""
    return Path(f"{path}.json")


def write_settings(path: Path, settings: dict[str, Any]) -> None:
    """Write ``settings`` (plus format and version) to the sidecar of ``path``."""
    tagged = {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, **settings}
    text = json.dumps(tagged, indent=1, sort_keys=True)
    write_atomic(sidecar_path(path), text + "\n")


def read_settings(path: Path) -> dict[str, Any]:
    """The settings saved next to ``path``, after checking both files exist and the sidecar
    is a VectorIndex settings file of the version this code reads."""
    sidecar = sidecar_path(path)
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
    if not isinstance(settings, dict) or settings.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{sidecar} is not a VectorIndex settings file")
    if settings.get("version") != SIDECAR_VERSION:
        raise ValueError(
            f"{sidecar} has version {settings.get('version')!r}; this fastslow_lib reads "
            f"version {SIDECAR_VERSION}"
        )
    return settings


def write_vectors_file(path: Path, vectors: torch.Tensor) -> None:
    """Write the torch backend's matrix to ``path`` as safetensors."""
    from safetensors.torch import save_file

    write_atomic(path, lambda tmp: save_file({SAFETENSORS_KEY: vectors.cpu().contiguous()},
                                             str(tmp)))


def read_vectors_file(path: Path, dim: int) -> torch.Tensor:
    """The float32 ``(n, dim)`` matrix saved by :func:`write_vectors_file`, on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        vectors = load_file(str(path))[SAFETENSORS_KEY]
    except (SafetensorError, KeyError, OSError) as err:
        raise ValueError(
            f"{path} is not a readable VectorIndex safetensors file (truncated or corrupt?): {err}"
        ) from None
    if vectors.dtype != torch.float32 or tuple(vectors.shape[1:]) != (dim,):
        raise ValueError(
            f"{path} holds a {vectors.dtype} matrix of shape {tuple(vectors.shape)}, "
            f"expected float32 (n, {dim})"
        )
    return vectors


def write_faiss_file(path: Path, cpu_index: Any) -> None:
    """Write a CPU faiss index to ``path``."""
    faiss.write_index(cpu_index, str(path))


def read_faiss_file(path: Path, dim: int) -> Any:
    """The CPU faiss index saved at ``path``, checked to have dimension ``dim``."""
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"{path} could not be read as a faiss index (truncated or corrupt?): {first[:300]}"
        ) from None
    if index.d != dim:
        raise ValueError(f"{path} holds dimension {index.d}, settings say {dim}")
    return index
