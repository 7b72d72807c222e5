"""What decides the embedded worlds: their vocabulary, their splits and their two configs.

:class:`WorldConfig` sizes the image world (notebooks/00_data.ipynb) and :class:`ClipConfig`
the clip world (notebooks/05_video.ipynb). Each checks itself against the vocabulary below when
it is built, and :meth:`~WorldConfig.key` names its cache folder: a hash of the config and of
the generator's version, so a cache is never read for a world it was not made from.

The configs live here, at the bottom of the library, so that presets can hold them without
importing data generation; :mod:`fastslow_lib.data` generates what they describe. Nothing here
imports from the rest of ``fastslow_lib``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from fastslow_lib.config.checks import check_int_fields, check_seed

__all__ = [
    "CLIP_GENERATOR_VERSION",
    "CLIP_SPLITS",
    "COLOURS",
    "EVENT_KINDS",
    "GENERATOR_VERSION",
    "OBJECT_COUNTS",
    "SHAPES",
    "SPLITS",
    "ClipConfig",
    "WorldConfig",
    "check_clip_split",
    "check_split",
]

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

#: Every shape a world may draw; a config picks some of them.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
#: Every colour a world may draw, with its base RGB value (objects are jittered around it).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 45, 45),
    "green": (45, 175, 65),
    "blue": (55, 95, 235),
    "yellow": (230, 205, 40),
}
#: What can happen in a clip (see :mod:`fastslow_lib.data.clip_scripts`).
EVENT_KINDS: tuple[str, ...] = ("move", "appear", "disappear", "turn")

# --------------------------------------------------------------------------------------------
# Versions and splits
# --------------------------------------------------------------------------------------------

#: Bump when image generation changes, so old caches are not mistaken for new ones.
GENERATOR_VERSION = 2
#: Bump when clip generation changes, so old caches are not mistaken for new ones.
CLIP_GENERATOR_VERSION = 2
#: Splits of the image world (the probe is generated beside them).
SPLITS: tuple[str, ...] = ("train", "val", "test", "small")
#: Splits of the clip world (the order probe is generated beside them).
CLIP_SPLITS: tuple[str, ...] = ("train", "val", "test")


def check_split(split: str) -> str:
    """``split`` itself, or a ValueError naming the known splits."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return split


def check_clip_split(split: str) -> str:
    """``split`` itself, or a ValueError naming the clip world's splits."""
    if split not in CLIP_SPLITS:
        raise ValueError(f"unknown clip split {split!r}; expected one of {CLIP_SPLITS}")
    return split


def _check_words(shapes: tuple[str, ...], colours: tuple[str, ...]) -> None:
    unknown = [s for s in shapes if s not in SHAPES]
    unknown += [c for c in colours if c not in COLOURS]
    if unknown:
        raise ValueError(f"unknown words {unknown}; shapes: {SHAPES}, colours: {tuple(COLOURS)}")


#: Fields added after worlds were released, with their defaults: a field at its default stays
#: out of the key, so the worlds (and the models trained on them) made before it keep theirs.
_LATER_FIELDS: dict[str, object] = {"caption_detail": 1.0}


def _key(version: int, config: WorldConfig | ClipConfig) -> str:
    """Short hash of the generator's version and every field of ``config`` (less the
    :data:`_LATER_FIELDS` at their defaults)."""
    fields = {k: v for k, v in asdict(config).items()
              if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}
    blob = json.dumps({"v": version, **fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


OBJECT_COUNTS: tuple[int, int, int] = (2, 3, 4)
"""How many objects a scene may hold; ``WorldConfig.n_objects_probs`` gives their odds."""


@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides the image world's contents (notebook 00)."""

    image_size: int = 64
    shapes: tuple[str, ...] = ("circle", "square", "triangle")
    colours: tuple[str, ...] = ("red", "green", "blue")
    #: Probability of each of :data:`OBJECT_COUNTS` (2, 3 and 4 objects) in a scene.
    n_objects_probs: tuple[float, float, float] = (0.1, 0.3, 0.6)
    grid: int = 4
    fine_grid: int = 8
    #: Share of small-object scenes in train / val / test.
    fine_fraction: float = 0.3
    captions_per_image: int = 5
    n_train: int = 10_000
    n_val: int = 1_000
    n_test: int = 1_000
    n_small: int = 1_000
    probe_pairs_per_kind: int = 200
    seed: int = 0
    #: How much a caption says, in (0, 1]: 1 names every object and its place (each caption
    #: true of about one image); below it, a caption names ``round(detail * n)`` of a scene's
    #: ``n`` objects (the largest first), a place with probability ``detail``, and is true of
    #: every image holding what it names, as COCO's and Flickr30K's are (notebook 03).
    caption_detail: float = 1.0

    def __post_init__(self) -> None:
        check_seed(self.seed, allow_numpy=False)  # a plain int: the cache key is JSON
        _check_words(self.shapes, self.colours)
        if not isinstance(self.caption_detail, int | float) or not 0 < self.caption_detail <= 1:
            raise ValueError(f"caption_detail must be a number in (0, 1] (1: captions name "
                             f"every object), got {self.caption_detail!r}")
        if abs(sum(self.n_objects_probs) - 1.0) > 1e-9 or len(self.n_objects_probs) != 3:
            raise ValueError(f"n_objects_probs must be 3 probabilities summing to 1, got "
                             f"{self.n_objects_probs}")
        check_int_fields(self, "n_train", "n_val", "n_test", "n_small", "probe_pairs_per_kind")

    def n_images(self, split: str) -> int:
        """Number of images in ``split``."""
        check_split(split)
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test,
                "small": self.n_small}[split]

    def key(self) -> str:
        """Short hash naming this config's cache folder."""
        return _key(GENERATOR_VERSION, self)


@dataclass(frozen=True)
class ClipConfig:
    """Everything that decides the clip world's contents (notebook 05)."""

    image_size: int = 32
    grid: int = 4
    #: Four shapes and four colours (the image world uses three of each): more object names
    #: make a clip's caption fit fewer other clips of the gallery.
    shapes: tuple[str, ...] = ("circle", "square", "triangle", "cross")
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")
    #: Half-width of an object as a fraction of the frame side (3.5 pixels at 32).
    radius: float = 0.11
    #: Probabilities of the event kinds, in the order of :data:`EVENT_KINDS`.
    event_probs: tuple[float, ...] = (0.55, 0.15, 0.15, 0.15)
    captions_per_clip: int = 5
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 500
    probe_pairs_per_kind: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        _check_words(self.shapes, self.colours)
        if len(self.event_probs) != len(EVENT_KINDS) or abs(sum(self.event_probs) - 1) > 1e-9:
            raise ValueError(f"event_probs must be {len(EVENT_KINDS)} probabilities summing to "
                             f"1 (for {EVENT_KINDS}), got {self.event_probs}")
        if self.captions_per_clip not in range(1, 6):
            raise ValueError(f"captions_per_clip must be 1 to 5 (one per template), got "
                             f"{self.captions_per_clip}")
        check_int_fields(self, "n_train", "n_val", "n_test", "probe_pairs_per_kind")
        if self.grid < 3:
            raise ValueError(f"grid must be at least 3 (room for two moves), got {self.grid}")

    def n_clips(self, split: str) -> int:
        """Number of clips in ``split``."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[
            check_clip_split(split)]

    def key(self) -> str:
        """Short hash naming this config's cache folder."""
        return _key(CLIP_GENERATOR_VERSION, self)
