"""The embedded world: seeded, cached splits of images with five captions each, and the probe.

``load_world(config)`` returns every split of the world a :class:`WorldConfig` describes (a
preset's ``world``: ``load_world(get_preset("cpu").world)``). The first call generates them and
caches them under ``data/cache/`` (:mod:`fastslow_lib.data.folders`); later calls read the cache.
Everything is a function of the config and its seed: the same config gives the same images and
captions, bit for bit (``Split.fingerprint`` proves it).

Splits, as in the Karpathy splits of Flickr30K and COCO:

* ``train``, ``val``, ``test``: ordinary scenes, with a share of small-object scenes mixed in
  (``fine_fraction``); the ``cpu`` preset's test split has 1,000 images and 5,000 captions,
  the size of the Flickr30K test protocol;
* ``small``: small-object scenes only (tiny objects on a fine grid), where a coarse feature
  map loses detail: the split that tests gradual upsampling;
* ``probe``: the compositional probe, pairs of scenes with the same objects and one binding
  swapped (colour, place or size), each with a caption true of one and false of the other;
* :func:`held_out_probe`: more pairs of the same kind from a seed stream of their own, not
  cached and not part of the config's key, for deciding a target after the probe has been
  used to choose something (notebook 02 decides Slow's probe target on it).

The config itself, the vocabulary it checks against and the split names live in
:mod:`fastslow_lib.config.world` (re-exported here).

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerFast

from fastslow_lib.config.checks import check_int
from fastslow_lib.config.world import (
    GENERATOR_VERSION,
    OBJECT_COUNTS,
    SPLITS,
    WorldConfig,
    check_split,
)
from fastslow_lib.data.captions import CaptionForm, caption_scene_n, is_true
from fastslow_lib.data.folders import (
    cache_folder,
    cached_or_generated,
    cached_tokenizer,
    check_loader_config,
    default_cache_dir,
)
from fastslow_lib.data.render import render_many
from fastslow_lib.data.scene import Scene, sample_scene, swap_attribute
from fastslow_lib.data.truth import truth_matrix

__all__ = [
    "GENERATOR_VERSION",
    "LazySplits",
    "PROBE_KINDS",
    "SPLITS",
    "ProbeSet",
    "Split",
    "World",
    "WorldConfig",
    "binding_twins",
    "cached_tokenizer",
    "check_split",
    "default_cache_dir",
    "generate_distractors",
    "generate_probe",
    "generate_split",
    "held_out_probe",
    "load_world",
    "pack_split",
    "scene_swaps",
    "unpack_split",
]

PROBE_KINDS: tuple[str, ...] = ("colour", "position", "size")
#: The seed stream of each split: a split's contents do not depend on the other splits' sizes.
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2, "small": 3, "probe": 4, "distractors": 5,
                 "held_out_probe": 6}
_PROBE_STREAMS = ("probe", "held_out_probe")


def _rng(cfg: WorldConfig, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, _SPLIT_STREAM[stream]]))


def _scene(cfg: WorldConfig, rng: np.random.Generator, fine: bool) -> Scene:
    n = int(rng.choice(list(OBJECT_COUNTS), p=list(cfg.n_objects_probs)))
    return sample_scene(
        rng,
        image_size=cfg.image_size,
        grid=cfg.fine_grid if fine else cfg.grid,
        n_objects=n,
        kind="fine" if fine else "normal",
        shapes=cfg.shapes,
        colours=cfg.colours,
    )


@dataclass
class Split:
    """Images, their scenes, and their captions (``captions_per_image`` per image, in order)."""

    name: str
    images: np.ndarray  # (N, H, W, 3) uint8
    scenes: list[Scene]
    captions: list[str]
    forms: list[CaptionForm]
    caption_image: np.ndarray  # (N * captions_per_image,) int64: the image of each caption

    def __len__(self) -> int:
        return len(self.scenes)

    @cached_property
    def truth(self) -> np.ndarray:
        """``truth[q, g]``: caption q is true of image g of this split (scene descriptions)."""
        return truth_matrix(self.forms, self.scenes)

    def fingerprint(self) -> str:
        """SHA-256 of the pixels and captions: equal fingerprints, identical data."""
        h = hashlib.sha256(self.images.tobytes())
        h.update("\n".join(self.captions).encode())
        return h.hexdigest()


@dataclass
class ProbeSet:
    """Pairs of twin scenes (one binding swapped) with a caption that tells each from its twin.

    ``caption_a`` is true of ``scenes_a[i]`` and false of ``scenes_b[i]``; ``caption_b`` the
    other way round. A model passes a comparison when it scores the true image higher.
    """

    kinds: list[str]
    images_a: np.ndarray
    images_b: np.ndarray
    scenes_a: list[Scene]
    scenes_b: list[Scene]
    caption_a: list[str]
    caption_b: list[str]
    forms_a: list[CaptionForm] = field(repr=False)
    forms_b: list[CaptionForm] = field(repr=False)

    def __len__(self) -> int:
        return len(self.kinds)

    def fingerprint(self) -> str:
        """SHA-256 of the pixels and captions."""
        h = hashlib.sha256(self.images_a.tobytes() + self.images_b.tobytes())
        h.update("\n".join(self.caption_a + self.caption_b).encode())
        return h.hexdigest()


def generate_split(cfg: WorldConfig, split: str) -> Split:
    """Generate ``split`` of the world ``cfg`` (no cache): seeded, deterministic."""
    check_split(split)
    rng = _rng(cfg, split)
    scenes, captions, forms, owner = [], [], [], []
    for i in range(cfg.n_images(split)):
        fine = split == "small" or rng.random() < cfg.fine_fraction
        scene = _scene(cfg, rng, fine)
        scenes.append(scene)
        for text, form in caption_scene_n(scene, rng, cfg.captions_per_image,
                                          detail=cfg.caption_detail):
            captions.append(text)
            forms.append(form)
            owner.append(i)
    return Split(split, render_many(scenes), scenes, captions, forms,
                 np.asarray(owner, dtype=np.int64))


def generate_distractors(cfg: WorldConfig, n: int) -> tuple[np.ndarray, list[Scene]]:
    """``n`` extra gallery images drawn like the test split's (no captions): ``(images, scenes)``.

    Notebook 04 appends them to the 1k test gallery to measure re-ranking as the gallery grows
    (to 10^4 and beyond); a seeded stream of their own, so the same ``n`` gives the same images
    and a larger ``n`` extends a smaller one.
    """
    check_int(n, "n", type_error=ValueError)
    rng = _rng(cfg, "distractors")
    scenes = [_scene(cfg, rng, rng.random() < cfg.fine_fraction) for _ in range(n)]
    return render_many(scenes), scenes


def scene_swaps(scene: Scene, kind: str) -> list[tuple[int, int]]:
    """The object pairs ``(i, j)`` of ``scene`` whose ``kind`` swap makes a different scene
    that a caption can tell apart (the probe's rule; the 5K protocol's twins use it too)."""
    objs, pairs = scene.objects, []
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            a, b = objs[i], objs[j]
            if kind == "colour" and a.colour != b.colour and a.shape != b.shape:
                pairs.append((i, j))
            elif kind == "position" and (a.shape, a.colour) != (b.shape, b.colour):
                pairs.append((i, j))
            elif kind == "size" and a.size != b.size and (a.shape, a.colour) != (b.shape, b.colour):
                pairs.append((i, j))
    return pairs


def binding_twins(split: Split, seed: int = 0,
                  ) -> tuple[np.ndarray, np.ndarray, list[str], list[Scene]]:
    """Probe-style twins of a split's images, for its captions: ``(images, twin_of, kinds,
    scenes)``.

    For every image, its possible binding swaps (colour, position, size: the probe's kinds and
    rule, :func:`~fastslow_lib.data.scene.swap_attribute`) are taken in a seeded random order;
    each of its captions gets the first twin it is **false** of (so the twin is a true negative
    that differs from the image in one binding). ``images`` holds the twins used (rendered),
    ``twin_of[c]`` the index of caption ``c``'s twin in ``images`` (-1 when no swap makes its
    caption false), ``kinds`` each twin's swap kind and ``scenes`` its scene. Notebook 03 trains
    Fast with them as extra negatives: an upper bound on the bindings a dual encoder of this
    shape can learn.
    Deterministic: the same split and seed give the same twins.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 29]))
    twin_of = np.full(len(split.captions), -1, dtype=np.int64)
    scenes: list[Scene] = []
    kinds: list[str] = []
    captions_of = np.split(np.arange(len(split.captions)),
                           np.flatnonzero(np.diff(split.caption_image)) + 1)
    for captions in captions_of:
        scene = split.scenes[int(split.caption_image[captions[0]])]
        options = [(i, j, kind) for kind in PROBE_KINDS for i, j in scene_swaps(scene, kind)]
        made: dict[int, int] = {}
        for o in rng.permutation(len(options)):
            if not (twin_of[captions] < 0).any():
                break
            i, j, kind = options[int(o)]
            twin = swap_attribute(scene, i, j, kind)
            for c in captions[twin_of[captions] < 0]:
                if not is_true(split.forms[int(c)], twin):
                    if int(o) not in made:
                        made[int(o)] = len(scenes)
                        scenes.append(twin)
                        kinds.append(kind)
                    twin_of[c] = made[int(o)]
    if not scenes:
        raise ValueError(f"no binding swap makes any caption of split {split.name!r} false")
    return render_many(scenes), twin_of, kinds, scenes


def _probe_pair(
    cfg: WorldConfig, rng: np.random.Generator, kind: str
) -> tuple[Scene, Scene, tuple[str, CaptionForm], tuple[str, CaptionForm]] | None:
    """One probe pair of ``kind``, or None when this draw offers no valid swap."""
    fine = rng.random() < cfg.fine_fraction
    scene = _scene(cfg, rng, fine)
    pairs = scene_swaps(scene, kind)
    if not pairs:
        return None
    i, j = pairs[int(rng.integers(len(pairs)))]
    twin = swap_attribute(scene, i, j, kind)
    chosen = []
    for this, other in ((scene, twin), (twin, scene)):
        options = [c for c in caption_scene_n(this, rng, cfg.captions_per_image,
                                              detail=cfg.caption_detail)
                   if not is_true(c[1], other)]
        if not options:
            return None
        chosen.append(options[0])
    return scene, twin, chosen[0], chosen[1]


def generate_probe(cfg: WorldConfig, *, pairs_per_kind: int | None = None,
                   stream: str = "probe") -> ProbeSet:
    """Generate the compositional probe: ``pairs_per_kind`` pairs of each kind (default: the
    config's ``probe_pairs_per_kind``), drawn from seed ``stream`` (``"probe"``, the world's
    probe, or ``"held_out_probe"``, see :func:`held_out_probe`)."""
    if stream not in _PROBE_STREAMS:
        raise ValueError(f"unknown probe stream {stream!r}; expected one of {_PROBE_STREAMS}")
    n = cfg.probe_pairs_per_kind if pairs_per_kind is None else check_int(
        pairs_per_kind, "pairs_per_kind", minimum=1)
    rng = _rng(cfg, stream)
    kinds, sa, sb, ca, cb = [], [], [], [], []
    for kind in PROBE_KINDS:
        made = 0
        while made < n:
            pair = _probe_pair(cfg, rng, kind)
            if pair is None:
                continue
            kinds.append(kind)
            sa.append(pair[0])
            sb.append(pair[1])
            ca.append(pair[2])
            cb.append(pair[3])
            made += 1
    return ProbeSet(
        kinds, render_many(sa), render_many(sb), sa, sb,
        [c[0] for c in ca], [c[0] for c in cb], [c[1] for c in ca], [c[1] for c in cb],
    )


def held_out_probe(cfg: WorldConfig, pairs_per_kind: int) -> ProbeSet:
    """A probe drawn for one decision: ``pairs_per_kind`` pairs of each kind from the world's
    generator, on a seed stream of its own (never the world's probe, never a training split).

    The world's probe is for watching: notebooks score it after every change, and a budget may
    be chosen by it. Once it has chosen something, its figure is no longer an unbiased test of
    a target. This probe is generated on demand (not cached, not in ``cfg.key()``, so its size
    can change without retraining any model), scored once, and used only to decide. Same
    ``cfg`` and size: the same pairs, bit for bit.

    Taught in notebooks/02_slow.ipynb (section 8).
    """
    return generate_probe(cfg, pairs_per_kind=pairs_per_kind, stream="held_out_probe")


# --------------------------------------------------------------------------------------------
# The world, cached
# --------------------------------------------------------------------------------------------


def pack_split(split: Split) -> tuple[dict, dict]:
    """``(arrays, meta)`` of ``split`` for the world's cache (:func:`unpack_split` reads it)."""
    arrays = {"images": split.images, "caption_image": split.caption_image}
    meta = {
        "scenes": [s.to_dict() for s in split.scenes],
        "captions": split.captions,
        "forms": [f.to_dict() for f in split.forms],
    }
    return arrays, meta


def unpack_split(name: str, arrays: dict, meta: dict) -> Split:
    """The split ``name`` from what :func:`pack_split` wrote."""
    return Split(
        name, arrays["images"], [Scene.from_dict(d) for d in meta["scenes"]], meta["captions"],
        [CaptionForm.from_dict(d) for d in meta["forms"]], arrays["caption_image"],
    )


def _pack_probe(probe: ProbeSet) -> tuple[dict, dict]:
    arrays = {"images_a": probe.images_a, "images_b": probe.images_b}
    meta = {
        "kinds": probe.kinds,
        "scenes_a": [s.to_dict() for s in probe.scenes_a],
        "scenes_b": [s.to_dict() for s in probe.scenes_b],
        "caption_a": probe.caption_a, "caption_b": probe.caption_b,
        "forms_a": [f.to_dict() for f in probe.forms_a],
        "forms_b": [f.to_dict() for f in probe.forms_b],
    }
    return arrays, meta


def _unpack_probe(arrays: dict, m: dict) -> ProbeSet:
    return ProbeSet(
        m["kinds"], arrays["images_a"], arrays["images_b"],
        [Scene.from_dict(d) for d in m["scenes_a"]], [Scene.from_dict(d) for d in m["scenes_b"]],
        m["caption_a"], m["caption_b"],
        [CaptionForm.from_dict(d) for d in m["forms_a"]],
        [CaptionForm.from_dict(d) for d in m["forms_b"]],
    )


class LazySplits(Mapping[str, Split]):
    """A world's splits, each read (or generated) the first time it is asked for.

    The training split is most of a world's memory and reading time; a notebook that only
    evaluates (the test and validation splits) never pays for it."""

    def __init__(self, loaders: Mapping[str, Callable[[], Split]]):
        self._loaders = dict(loaders)
        self._loaded: dict[str, Split] = {}

    def __getitem__(self, name: str) -> Split:
        if name not in self._loaded:
            self._loaded[name] = self._loaders[name]()
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def loaded(self) -> list[str]:
        """The splits read so far."""
        return list(self._loaded)


@dataclass
class World:
    """All splits of one world config, plus where they are cached."""

    config: WorldConfig
    splits: Mapping[str, Split]
    probe: ProbeSet
    folder: Path | None

    def __getitem__(self, split: str) -> Split:
        return self.splits[check_split(split)]

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    @property
    def small(self) -> Split:
        return self.splits["small"]

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The word-level tokenizer of the training captions, cached beside the splits."""
        return cached_tokenizer(self.folder, lambda: self.train.captions)


def load_world(
    config: WorldConfig,
    cache_dir: str | Path | None = None,
    *,
    use_cache: bool = True,
) -> World:
    """Every split of the world ``config`` and its probe: read from the cache, else generated.

    Each split is read (or generated and cached) when it is first used (:class:`LazySplits`);
    the probe at once.

    ``config`` is a :class:`WorldConfig`, e.g. a preset's: ``load_world(get_preset("cpu").world)``.
    The cache is ``<cache_dir>/world-<key>/`` (``cache_dir`` defaults to
    :func:`default_cache_dir`); ``use_cache=False`` generates without reading or writing it.
    """
    check_loader_config(config, WorldConfig, "load_world", "world")
    folder = cache_folder(cache_dir, "world", config) if use_cache else None
    splits = LazySplits({
        name: partial(cached_or_generated, folder, name, f"world split {name!r}",
                      partial(generate_split, config, name), pack_split,
                      partial(unpack_split, name))
        for name in SPLITS
    })
    probe = cached_or_generated(folder, "probe", "world probe", partial(generate_probe, config),
                                _pack_probe, _unpack_probe)
    return World(config, splits, probe, folder)
