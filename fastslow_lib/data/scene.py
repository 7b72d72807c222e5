"""Scenes of the embedded world: what is in an image, before any pixel is drawn.

A scene is a handful of objects (shape, colour, size) placed on distinct cells of a grid. It is
the ground truth that captions are checked against, that probes swap bindings in, and that
error analysis reads back. Images are drawn from scenes by :mod:`fastslow_lib.data.render`.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

# The vocabulary lives with the configs that check against it; re-exported here.
from fastslow_lib.config.world import COLOURS, SHAPES

#: Size words. Ordinary scenes (coarse grid) hold ``small`` and ``large`` objects;
#: small-object scenes (fine grid) hold ``tiny`` and ``small`` ones.
SIZES: tuple[str, ...] = ("small", "large", "tiny")
SCENE_SIZES: dict[str, tuple[str, ...]] = {"normal": ("small", "large"), "fine": ("tiny", "small")}
#: Half-width of an object as a fraction of the image side (the same in every kind of scene:
#: at 64 pixels a tiny object is about 4.5 pixels wide, a small one 8, a large one 13).
SIZE_RADIUS: dict[str, float] = {"tiny": 0.035, "small": 0.06, "large": 0.105}


@dataclass(frozen=True)
class Obj:
    """One object of a scene.

    ``row``/``col`` index the grid cell (row 0 is the top, col 0 the left); ``x``/``y`` are the
    centre in pixels and ``radius`` the half-width in pixels, as drawn.
    """

    shape: str
    colour: str
    size: str
    row: int
    col: int
    x: float
    y: float
    radius: float
    rgb: tuple[int, int, int]

    @property
    def name(self) -> str:
        """Plain description, e.g. ``"large red circle"``."""
        return f"{self.size} {self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """A whole image's content: objects on a ``grid`` x ``grid`` board of ``image_size`` pixels."""

    objects: tuple[Obj, ...]
    grid: int
    image_size: int
    background: int
    noise_seed: int
    kind: str = field(default="normal")

    @property
    def fine(self) -> bool:
        """True for small-object scenes (tiny objects on the fine grid)."""
        return self.kind == "fine"

    def hpos(self, obj: Obj) -> str:
        """``"left"`` or ``"right"``: which half of the image holds the object's cell."""
        return "left" if obj.col < self.grid // 2 else "right"

    def vpos(self, obj: Obj) -> str:
        """``"top"`` or ``"bottom"``: which half of the image holds the object's cell."""
        return "top" if obj.row < self.grid // 2 else "bottom"

    def to_dict(self) -> dict:
        """JSON-ready description (used by the cache and by error analysis)."""
        return {
            "grid": self.grid,
            "image_size": self.image_size,
            "background": self.background,
            "noise_seed": self.noise_seed,
            "kind": self.kind,
            "objects": [
                {
                    "shape": o.shape,
                    "colour": o.colour,
                    "size": o.size,
                    "row": o.row,
                    "col": o.col,
                    "x": o.x,
                    "y": o.y,
                    "radius": o.radius,
                    "rgb": list(o.rgb),
                }
                for o in self.objects
            ],
        }

    @staticmethod
    def from_dict(d: dict) -> Scene:
        """Inverse of :meth:`to_dict`."""
        objs = tuple(
            Obj(
                shape=o["shape"],
                colour=o["colour"],
                size=o["size"],
                row=int(o["row"]),
                col=int(o["col"]),
                x=float(o["x"]),
                y=float(o["y"]),
                radius=float(o["radius"]),
                rgb=(int(o["rgb"][0]), int(o["rgb"][1]), int(o["rgb"][2])),
            )
            for o in d["objects"]
        )
        return Scene(
            objects=objs,
            grid=int(d["grid"]),
            image_size=int(d["image_size"]),
            background=int(d["background"]),
            noise_seed=int(d["noise_seed"]),
            kind=str(d["kind"]),
        )


def _place(
    rng: np.random.Generator, row: int, col: int, size: str, grid: int, image_size: int
) -> tuple[float, float, float]:
    """Centre (x, y) and radius in pixels of an object in cell (row, col), with jitter."""
    cell = image_size / grid
    radius = SIZE_RADIUS[size] * image_size
    slack = max(cell / 2 - radius - 0.5, 0.0)
    jx, jy = rng.uniform(-slack, slack, size=2)
    return (col + 0.5) * cell + float(jx), (row + 0.5) * cell + float(jy), float(radius)


def _jitter_rgb(rng: np.random.Generator, colour: str, amount: int) -> tuple[int, int, int]:
    base = np.array(COLOURS[colour], dtype=np.int64)
    jit = rng.integers(-amount, amount + 1, size=3)
    out = np.clip(base + jit, 0, 255)
    return int(out[0]), int(out[1]), int(out[2])


def sample_scene(
    rng: np.random.Generator,
    *,
    image_size: int,
    grid: int,
    n_objects: int,
    kind: str = "normal",
    shapes: tuple[str, ...] = SHAPES,
    colours: tuple[str, ...] = tuple(COLOURS),
    colour_jitter: int = 18,
) -> Scene:
    """Draw a random scene: ``n_objects`` objects on distinct cells of a ``grid`` x ``grid`` board.

    ``kind="normal"`` draws sizes from {small, large}; ``kind="fine"`` from {tiny, small} (use
    it with a finer grid: that is the small-object split). ``shapes`` and ``colours``
    choose the world's vocabulary from :data:`SHAPES` and :data:`COLOURS`.
    """
    if kind not in ("normal", "fine"):
        raise ValueError(f"unknown scene kind {kind!r}; expected 'normal' or 'fine'")
    unknown = [w for w in (*shapes, *colours) if w not in SHAPES and w not in COLOURS]
    if unknown:
        raise ValueError(f"unknown shapes/colours {unknown}; known: {SHAPES}, {tuple(COLOURS)}")
    if not 1 <= n_objects <= grid * grid:
        raise ValueError(f"n_objects={n_objects} does not fit a {grid}x{grid} grid")
    cells = rng.choice(grid * grid, size=n_objects, replace=False)
    objs = []
    for cell in cells:
        row, col = divmod(int(cell), grid)
        shape = shapes[int(rng.integers(len(shapes)))]
        colour = colours[int(rng.integers(len(colours)))]
        size = SCENE_SIZES[kind][int(rng.integers(2))]
        x, y, radius = _place(rng, row, col, size, grid, image_size)
        rgb = _jitter_rgb(rng, colour, colour_jitter)
        objs.append(Obj(shape, colour, size, row, col, x, y, radius, rgb))
    objs.sort(key=lambda o: (o.row, o.col))
    background = int(rng.integers(25, 60))
    noise_seed = int(rng.integers(2**31 - 1))
    return Scene(tuple(objs), grid, image_size, background, noise_seed, kind)


def _resize(obj: Obj, size: str, scene: Scene) -> Obj:
    """``obj`` with a new size, its centre pulled back so it stays inside its cell."""
    cell = scene.image_size / scene.grid
    radius = SIZE_RADIUS[size] * scene.image_size
    slack = max(cell / 2 - radius - 0.5, 0.0)
    cx, cy = (obj.col + 0.5) * cell, (obj.row + 0.5) * cell
    x = cx + float(np.clip(obj.x - cx, -slack, slack))
    y = cy + float(np.clip(obj.y - cy, -slack, slack))
    return replace(obj, size=size, radius=radius, x=x, y=y)


def recolour(scene: Scene, i: int, colour: str, rng: np.random.Generator,
             colour_jitter: int = 18) -> Scene:
    """``scene`` with object ``i`` painted ``colour`` (a fresh jittered RGB, as drawn): a scene
    that shares every object but one (the 5K protocol's neighbours)."""
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; known: {tuple(COLOURS)}")
    objs = list(scene.objects)
    objs[i] = replace(objs[i], colour=colour, rgb=_jitter_rgb(rng, colour, colour_jitter))
    return replace(scene, objects=tuple(objs))


def swap_attribute(scene: Scene, i: int, j: int, attribute: str) -> Scene:
    """The twin of ``scene`` with ``attribute`` of objects ``i`` and ``j`` exchanged.

    ``attribute`` is ``"colour"`` (the colours trade places: a binding swap), ``"size"``, or
    ``"position"`` (the two objects trade cells). Everything else stays as it was, so the two
    scenes hold the same objects with different bindings: the compositional probe's pairs.
    """
    objs = list(scene.objects)
    a, b = objs[i], objs[j]
    if attribute == "colour":
        objs[i] = replace(a, colour=b.colour, rgb=b.rgb)
        objs[j] = replace(b, colour=a.colour, rgb=a.rgb)
    elif attribute == "size":
        objs[i] = _resize(a, b.size, scene)
        objs[j] = _resize(b, a.size, scene)
    elif attribute == "position":
        # Each object keeps its own size; its new centre is pulled back inside its new cell.
        objs[i] = _resize(replace(a, row=b.row, col=b.col, x=b.x, y=b.y), a.size, scene)
        objs[j] = _resize(replace(b, row=a.row, col=a.col, x=a.x, y=a.y), b.size, scene)
    else:
        raise ValueError(f"unknown attribute {attribute!r}; expected colour, size or position")
    objs.sort(key=lambda o: (o.row, o.col))
    return replace(scene, objects=tuple(objs))
