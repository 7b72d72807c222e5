"""Drawing scenes into RGB images (numpy, anti-aliased, deterministic).

The same drawing code makes the frames of video clips, so it takes a scene and nothing else.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

import numpy as np

from fastslow_lib.data.scene import Obj, Scene

#: Sub-pixel samples per axis for anti-aliasing (4 x 4 = 16 samples per pixel).
SUPERSAMPLE = 4


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of ``shape`` of half-width ``r`` at offsets ``(dx, dy)`` from its centre."""
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        s = 0.86 * r
        return (np.abs(dx) <= s) & (np.abs(dy) <= s)
    if shape == "triangle":
        # Apex up at (0, -r); flat base at y = +0.8 r spanning x in [-r, r].
        t = (dy + r) / (1.8 * r)
        return (dy <= 0.8 * r) & (t >= 0) & (np.abs(dx) <= t * r)
    if shape == "cross":
        w = 0.36 * r
        return ((np.abs(dx) <= w) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w) & (np.abs(dx) <= r))
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(obj: Obj, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Fraction of each pixel in [y0:y1, x0:x1] covered by ``obj`` (0..1)."""
    ss = SUPERSAMPLE
    xs = x0 + (np.arange((x1 - x0) * ss) + 0.5) / ss
    ys = y0 + (np.arange((y1 - y0) * ss) + 0.5) / ss
    dx = xs[None, :] - obj.x
    dy = ys[:, None] - obj.y
    m = shape_mask(obj.shape, dx, dy, obj.radius).astype(np.float32)
    return m.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))


def render_scene(scene: Scene, noise_std: float = 3.0) -> np.ndarray:
    """Draw ``scene`` as a ``(H, W, 3)`` uint8 image. Same scene -> same pixels, bit for bit."""
    size = scene.image_size
    noise = np.random.default_rng(scene.noise_seed).normal(0.0, noise_std, size=(size, size, 1))
    img = np.full((size, size, 3), float(scene.background), dtype=np.float32)
    img += noise.astype(np.float32)
    for obj in scene.objects:
        draw_object(img, obj)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def draw_object(img: np.ndarray, obj: Obj, alpha: float = 1.0) -> None:
    """Blend ``obj`` into the float image ``img`` ``(H, W, 3)`` in place, at opacity ``alpha``.

    ``alpha`` below 1 draws an object fading in or out (the video clips of notebook 05 use it for
    objects that appear or disappear); at 1 it is the plain anti-aliased drawing of images.
    """
    size = img.shape[0]
    pad = obj.radius + 1.0
    x0, x1 = max(int(np.floor(obj.x - pad)), 0), min(int(np.ceil(obj.x + pad)), size)
    y0, y1 = max(int(np.floor(obj.y - pad)), 0), min(int(np.ceil(obj.y + pad)), size)
    if x1 <= x0 or y1 <= y0:
        return
    cov = _coverage(obj, x0, y0, x1, y1)[..., None]
    if alpha != 1.0:
        cov = cov * np.float32(alpha)
    colour = np.asarray(obj.rgb, dtype=np.float32)
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1.0 - cov) + colour * cov


def render_many(scenes: list[Scene]) -> np.ndarray:
    """Draw a list of scenes into one ``(N, H, W, 3)`` uint8 array."""
    if not scenes:
        raise ValueError("render_many needs at least one scene")
    return np.stack([render_scene(s) for s in scenes])
