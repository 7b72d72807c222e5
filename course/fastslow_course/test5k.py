"""The 5K protocol's kept measurements (``results/test5k.json``), checked before use.

``scripts/test5k.py`` scores the release models on the 5K protocol once
(:func:`fastslow_lib.data.protocols.load_test5k`: 5,000 images with near-duplicates, 25,000
queries): Fast-type models on every query, the release Slow against the whole gallery on a kept
subset, every Slow-type model on Fast's short lists of a larger subset, and the cost of both
ways, timed side by side. :meth:`Kept5K.load` reads the file and refuses it when it does not
describe this checkout's world and release models (a clear error saying what to rerun); the
accessors give per-query outcomes as arrays, from which notebooks 02-04 compute intervals.

Taught in notebooks/04_rerank.ipynb (section 8); notebooks 02 and 03 read it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastslow_course.manifest import manifest, release_dir
from fastslow_lib.config.presets import Preset
from fastslow_lib.core.intervals import hits_from_bits
from fastslow_lib.core.paths import repo_root
from fastslow_lib.data.protocols import TEST5K_VERSION

__all__ = ["RERUN", "Kept5K"]

#: What to do when the file does not match this checkout.
RERUN = "rerun scripts/test5k.py (make reproduce runs it)"


@dataclass
class Kept5K:
    """``results/test5k.json``, checked: see the module docstring."""

    data: dict[str, Any]

    @staticmethod
    def load(preset: Preset, path: str | Path | None = None) -> Kept5K:
        """Read and check the file (default ``results/test5k.json``) against ``preset``'s
        world and release manifest; a missing or stale file raises naming :data:`RERUN`."""
        path = Path(path) if path is not None else repo_root() / "results" / "test5k.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {RERUN}")
        data = json.loads(path.read_text())
        if data.get("version") != TEST5K_VERSION or data.get("world") != preset.world.key():
            raise ValueError(f"{path.name} describes another 5K protocol or world "
                             f"(version {data.get('version')}, world {data.get('world')}; this "
                             f"checkout: {TEST5K_VERSION}, {preset.world.key()}): {RERUN}")
        released = manifest(release_dir(preset))["models"]
        scored = {**{n: e["sha256"] for n, e in data["fast"].items()},
                  **{n: e["sha256"] for n, e in data["shortlists"].items()},
                  "slow": data["slow_all"]["sha256"]}
        for name, sha in scored.items():
            if name not in released or released[name]["sha256"]["model.safetensors"] != sha:
                raise ValueError(f"{path.name} scored other weights of {name!r} than the release "
                                 f"manifest's: {RERUN}")
        return Kept5K(data)

    # -- the protocol ---------------------------------------------------------------------

    @property
    def protocol(self) -> dict[str, Any]:
        """Images, queries, the gallery's parts, the ceiling and the share of captions true of
        one image only."""
        return self.data["protocol"]

    @property
    def slow_ids(self) -> np.ndarray:
        """The queries Slow scored against every image (sorted query indices)."""
        return np.asarray(self.data["slow_query_ids"], dtype=np.int64)

    @property
    def shortlist_ids(self) -> np.ndarray:
        """The queries every Slow-type model re-scored Fast's short list for."""
        return np.asarray(self.data["shortlist_query_ids"], dtype=np.int64)

    @property
    def ks(self) -> list[int]:
        """The K of the re-ranking curve."""
        return [int(k) for k in self.data["Ks"]]

    # -- per-query outcomes -----------------------------------------------------------------

    def fast_ranks(self, name: str = "fast") -> np.ndarray:
        """1-based rank of each query's image by Fast-type release model ``name``, every query."""
        return np.asarray(self.data["fast"][name]["ranks"], dtype=np.int64)

    def fast_consistent(self, name: str = "fast") -> np.ndarray:
        """1 where ``name``'s top-1 image makes the caption true, every query."""
        return hits_from_bits(self.data["fast"][name]["consistent_bits"])

    def slow_ranks(self) -> np.ndarray:
        """Slow on everything's rank of each query's image, on :attr:`slow_ids`."""
        return np.asarray(self.data["slow_all"]["ranks"], dtype=np.int64)

    def slow_consistent(self) -> np.ndarray:
        """1 where Slow on everything's top-1 makes the caption true, on :attr:`slow_ids`."""
        return hits_from_bits(self.data["slow_all"]["consistent_bits"])

    def reranked_hits(self, fast: str, k: int) -> np.ndarray:
        """1 where Slow's best of ``fast``'s top ``k`` is the query's image, on
        :attr:`slow_ids` (a look-up in Slow's scores of every image)."""
        return hits_from_bits(self.data["slow_all"]["reranked_hits"][fast][str(k)])

    def shortlist_ranks(self, model: str, fast: str = "fast") -> np.ndarray:
        """Rank of each query's image once Slow-type release ``model`` re-orders ``fast``'s
        short list (``"fast"`` or ``"student"``; Fast's own rank beyond it), on
        :attr:`shortlist_ids`."""
        return np.asarray(self.data["shortlists"][model][fast]["ranks"], dtype=np.int64)

    def shortlist_consistent(self, model: str, fast: str = "fast") -> np.ndarray:
        """1 where ``model``'s best of the short list makes the caption true."""
        return hits_from_bits(self.data["shortlists"][model][fast]["consistent_bits"])
