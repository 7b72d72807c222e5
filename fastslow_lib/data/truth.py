"""Which captions are true of which images: the truth matrix behind consistent@1 and the oracle.

:func:`fastslow_lib.data.captions.is_true` checks one caption against one scene. A test gallery
asks it 5,000 x 1,000 times, so :func:`truth_matrix` first rules out, with numpy over the whole
gallery, every scene that lacks one of the mentioned objects, and runs the exact checker only on
the few that remain. The answer is the same as calling ``is_true`` on every pair (a test checks).

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastslow_lib.config.world import COLOURS, SHAPES
from fastslow_lib.data.captions import CaptionForm, is_true
from fastslow_lib.data.scene import SIZES, Scene

_COLOUR_ID = {c: i for i, c in enumerate(COLOURS)}
_SHAPE_ID = {s: i for i, s in enumerate(SHAPES)}
_SIZE_ID = {s: i for i, s in enumerate(SIZES)}


@dataclass(frozen=True)
class SceneTable:
    """Scenes as padded integer arrays ``(n_scenes, max_objects)``; -1 marks an empty slot."""

    shape: np.ndarray
    colour: np.ndarray
    size: np.ndarray
    vpos: np.ndarray  # 0 top, 1 bottom
    hpos: np.ndarray  # 0 left, 1 right
    n_objects: np.ndarray

    @staticmethod
    def from_scenes(scenes: Sequence[Scene]) -> SceneTable:
        """Pack ``scenes`` into arrays."""
        n = len(scenes)
        width = max((len(s.objects) for s in scenes), default=1)
        arrays = {k: np.full((n, width), -1, dtype=np.int8) for k in ("sh", "co", "si", "v", "h")}
        for i, s in enumerate(scenes):
            for j, o in enumerate(s.objects):
                arrays["sh"][i, j] = _SHAPE_ID[o.shape]
                arrays["co"][i, j] = _COLOUR_ID[o.colour]
                arrays["si"][i, j] = _SIZE_ID[o.size]
                arrays["v"][i, j] = 0 if s.vpos(o) == "top" else 1
                arrays["h"][i, j] = 0 if s.hpos(o) == "left" else 1
        counts = np.array([len(s.objects) for s in scenes], dtype=np.int64)
        return SceneTable(
            arrays["sh"], arrays["co"], arrays["si"], arrays["v"], arrays["h"], counts
        )


def candidates(form: CaptionForm, table: SceneTable) -> np.ndarray:
    """Boolean mask of the scenes that pass the cheap necessary checks for ``form``.

    A candidate has exactly as many objects as the caption mentions (at least as many for a
    partial caption) and, for every mention, at least one object with the mentioned attributes
    and place. Relations and the one-to-one matching are left to :func:`is_true`.
    """
    k = len(form.mentions)
    keep = table.n_objects >= k if form.partial else table.n_objects == k
    for m in form.mentions:
        fit = table.shape == _SHAPE_ID[m.shape]
        if m.colour is not None:
            fit &= table.colour == _COLOUR_ID[m.colour]
        if m.size is not None:
            fit &= table.size == _SIZE_ID[m.size]
        if m.vpos is not None:
            fit &= table.vpos == (0 if m.vpos == "top" else 1)
        if m.hpos is not None:
            fit &= table.hpos == (0 if m.hpos == "left" else 1)
        keep &= fit.any(axis=1)
    return keep


def truth_matrix(forms: Sequence[CaptionForm], scenes: Sequence[Scene]) -> np.ndarray:
    """``T[q, g]`` = caption ``forms[q]`` is true of ``scenes[g]`` (bool, queries x gallery)."""
    table = SceneTable.from_scenes(scenes)
    out = np.zeros((len(forms), len(scenes)), dtype=bool)
    for q, form in enumerate(forms):
        keep = candidates(form, table)
        if form.partial and len(form.mentions) == 1:  # the cheap checks are the whole meaning
            out[q] = keep
            continue
        for g in np.flatnonzero(keep):
            out[q, g] = is_true(form, scenes[int(g)])
    return out
