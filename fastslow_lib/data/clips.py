"""Video clips of the embedded world: objects that move, appear, disappear or change colour.

A clip is :data:`FRAMES` frames of the image world's objects on a small board, drawn from a
:class:`~fastslow_lib.data.clip_scripts.ClipScript` (the start state and two events in order;
see :mod:`fastslow_lib.data.clip_scripts`). This module draws scripts, captions them, and
makes the clip world's seeded, cached splits and its order probe.

Five captions per clip tell the two events in order, with varied wording; in two of the five
templates the words come in the other order than the events ("the blue square appears *after*
the red circle moves left"), so word order alone does not give the event order.

The timeline is a palindrome (:data:`TIMELINE`): a clip played backwards is itself a clip of
this world, with inverse events in reverse order (``move left`` becomes ``move right``,
``appear`` becomes ``disappear``). That gives the **order probe** its two kinds:

* ``reversed``: the clip against the same frames played backwards. Both hold exactly the same
  frames, so any model that pools frames without order (mean pooling) cannot tell them apart;
* ``swapped``: the clip against a clip with the same start and the same two events in the
  other order (its frames differ in the middle).

Everything is seeded and cached like the image world (:func:`load_clip_world`, which takes a
:class:`~fastslow_lib.config.world.ClipConfig`, e.g. ``get_preset("cpu").clips``).

Taught in notebooks/05_video.ipynb.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerFast

from fastslow_lib.config.world import (
    CLIP_GENERATOR_VERSION,
    CLIP_SPLITS,
    COLOURS,
    EVENT_KINDS,
    ClipConfig,
    check_clip_split,
)
from fastslow_lib.core.checkpoint import write_atomic
from fastslow_lib.data.clip_scripts import (
    DIRECTIONS,
    FRAMES,
    OPPOSITE,
    Actor,
    ClipScript,
    Event,
    apply_event,
    sample_script,
)
from fastslow_lib.data.folders import (
    cache_folder,
    cached_or_generated,
    cached_tokenizer,
    check_loader_config,
)
from fastslow_lib.data.render import draw_object
from fastslow_lib.data.scene import Obj

__all__ = [
    "CLIP_GENERATOR_VERSION",
    "CLIP_PROBE_KINDS",
    "CLIP_SPLITS",
    "DIRECTIONS",
    "EVENT_KINDS",
    "FRAMES",
    "OPPOSITE",
    "TIMELINE",
    "Actor",
    "ClipConfig",
    "ClipProbe",
    "ClipScript",
    "ClipSplit",
    "ClipWorld",
    "Event",
    "apply_event",
    "caption_clip",
    "check_clip_split",
    "generate_clip_probe",
    "generate_clip_split",
    "load_clip_world",
    "render_clip",
    "render_clips",
    "sample_script",
]

#: Progress of (event 1, event 2) at each frame: the start, event 1 half-way, its end (held for
#: two frames), event 2 half-way, its end. A palindrome: frame t of a clip played backwards is
#: frame ``FRAMES - 1 - t`` of the forward clip, with the events inverted.
TIMELINE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (1.0, 0.0), (1.0, 0.5), (1.0, 1.0),
)
CLIP_PROBE_KINDS: tuple[str, ...] = ("reversed", "swapped")
#: The seed stream of each split (apart from the image world's streams).
_STREAM = {"train": 10, "val": 11, "test": 12, "probe": 13}


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def _rgb(colour: str, tint: tuple[int, int, int]) -> np.ndarray:
    return np.clip(np.asarray(COLOURS[colour], dtype=np.float32) + np.asarray(tint), 0, 255)


def _lerp(f, a: Actor, b: Actor, c: Actor, p1: float, p2: float):
    """``f`` of an actor's state at progress (p1, p2) through its three states a, b, c."""
    return f(a) + p1 * (f(b) - f(a)) + p2 * (f(c) - f(b))


def render_clip(script: ClipScript, noise_std: float = 3.0) -> np.ndarray:
    """Draw ``script`` as ``(FRAMES, H, W, 3)`` uint8 frames. Same script, same pixels.

    Frame t shows each actor at progress :data:`TIMELINE` ``[t]`` of the two events: positions,
    colours and opacities are interpolated linearly, so a move is seen half-way, a turn as a
    blend of the two colours and an appearance as a fade-in.
    """
    s0, s1, s2 = script.states
    size, cell = script.image_size, script.image_size / script.grid
    frames = np.empty((FRAMES, size, size, 3), dtype=np.uint8)
    for t, (p1, p2) in enumerate(TIMELINE):
        noise = np.random.default_rng(script.noise_seeds[t]).normal(0.0, noise_std,
                                                                     (size, size, 1))
        img = np.full((size, size, 3), float(script.background), dtype=np.float32)
        img += noise.astype(np.float32)
        for i in range(len(s0)):
            a, b, c = s0[i], s1[i], s2[i]
            alpha = float(_lerp(lambda o: float(o.visible), a, b, c, p1, p2))
            if alpha <= 0.0:
                continue
            rgb = _lerp(lambda o, i=i: _rgb(o.colour, script.tints[i]), a, b, c, p1, p2)
            dx, dy = script.offsets[i]
            x = float(_lerp(lambda o: (o.col + 0.5) * cell, a, b, c, p1, p2)) + dx
            y = float(_lerp(lambda o: (o.row + 0.5) * cell, a, b, c, p1, p2)) + dy
            obj = Obj(a.shape, a.colour, "small", a.row, a.col, x, y, script.radius * size,
                      tuple(int(round(float(v))) for v in rgb))  # type: ignore[arg-type]
            draw_object(img, obj, alpha)
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frames


def render_clips(scripts: list[ClipScript]) -> np.ndarray:
    """Draw a list of scripts into one ``(N, FRAMES, H, W, 3)`` uint8 array."""
    if not scripts:
        raise ValueError("render_clips needs at least one script")
    return np.stack([render_clip(s) for s in scripts])


# --------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------

_VERBS = {
    "move": (("moves {d}", "goes {d}", "slides {d}"), "moving {d}"),
    "appear": (("appears", "shows up"), "appearing"),
    "disappear": (("disappears", "vanishes"), "disappearing"),
    "turn": (("turns {c}", "changes to {c}"), "turning {c}"),
}
#: Caption templates: same actor twice (``s``), or two actors (``o``). ``{np}`` is the actor's
#: noun phrase, ``{v1}`` / ``{v2}`` verb phrases, ``{g1}`` event 1's gerund. The last two of each
#: list tell the events in the other order than they happen.
_TEMPLATES = {
    "s": ("{np} {v1}, then {v2}", "first {np} {v1}, then it {v2}", "{np} {v1} and then {v2}",
          "{np} {v2} after {g1}", "after {g1}, {np} {v2}"),
    "o": ("{c1}, then {c2}", "first {c1}, then {c2}", "{c1} and then {c2}",
          "{c2} after {c1}", "before {c2}, {c1}"),
}


def _verb(ev: Event, rng: np.random.Generator) -> tuple[str, str]:
    forms, gerund = _VERBS[ev.kind]
    fill = {"d": ev.direction, "c": ev.colour}
    return forms[int(rng.integers(len(forms)))].format(**fill), gerund.format(**fill)


def caption_clip(script: ClipScript, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` captions of ``script`` (1 to 5), each from a different template, in random order."""
    states = script.states
    e1, e2 = script.events
    a1, a2 = states[0][e1.actor], states[1][e2.actor]
    kind = "s" if e1.actor == e2.actor else "o"
    out = []
    for t in rng.permutation(len(_TEMPLATES[kind]))[:n]:
        (v1, g1), (v2, _) = _verb(e1, rng), _verb(e2, rng)
        art1, art2 = (("a", "the")[int(rng.integers(2))] for _ in range(2))
        np1, np2 = f"{art1} {a1.name}", f"{art2} {a2.name}"
        out.append(_TEMPLATES[kind][int(t)].format(
            np=np1, v1=v1, v2=v2, g1=g1, c1=f"{np1} {v1}", c2=f"{np2} {v2}"))
    return out


# --------------------------------------------------------------------------------------------
# Splits, probe, world
# --------------------------------------------------------------------------------------------


@dataclass
class ClipSplit:
    """Clips, their scripts and their captions (``captions_per_clip`` per clip, in order).

    Has what the image world's :class:`~fastslow_lib.data.world.Split` gives the training loops
    and :class:`~fastslow_lib.data.datasets.RetrievalProtocol`: ``name``, ``images`` (here
    ``(N, FRAMES, H, W, 3)`` clips), ``captions``, ``caption_image``, ``truth``, ``len()``.
    """

    name: str
    images: np.ndarray
    scripts: list[ClipScript]
    captions: list[str]
    caption_image: np.ndarray

    def __len__(self) -> int:
        return len(self.scripts)

    @cached_property
    def truth(self) -> np.ndarray:
        """``truth[q, g]``: caption q is true of clip g (the same events, in the same order)."""
        keys = np.array([s.key() for s in self.scripts])
        return keys[self.caption_image][:, None] == keys[None, :]

    def fingerprint(self) -> str:
        """SHA-256 of the pixels and captions: equal fingerprints, identical data."""
        h = hashlib.sha256(self.images.tobytes())
        h.update("\n".join(self.captions).encode())
        return h.hexdigest()


@dataclass
class ClipProbe:
    """Pairs of clips with the same content and the other event order, a caption for each.

    ``caption_a`` is true of clip a and false of clip b, ``caption_b`` the other way round; the
    fields :func:`fastslow_lib.fast.evaluate.probe_accuracy` reads, as for the image probe.
    """

    kinds: list[str]
    images_a: np.ndarray
    images_b: np.ndarray
    scripts_a: list[ClipScript] = field(repr=False)
    scripts_b: list[ClipScript] = field(repr=False)
    caption_a: list[str] = field(repr=False)
    caption_b: list[str] = field(repr=False)

    def __len__(self) -> int:
        return len(self.kinds)


def _rng(cfg: ClipConfig, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, _STREAM[stream]]))


def generate_clip_split(cfg: ClipConfig, split: str) -> ClipSplit:
    """Generate ``split`` of the clip world (no cache): seeded, deterministic."""
    rng = _rng(cfg, check_clip_split(split))
    scripts, captions, owner = [], [], []
    for i in range(cfg.n_clips(split)):
        script = sample_script(rng, cfg)
        scripts.append(script)
        captions += caption_clip(script, rng, cfg.captions_per_clip)
        owner += [i] * cfg.captions_per_clip
    return ClipSplit(split, render_clips(scripts), scripts, captions,
                     np.asarray(owner, dtype=np.int64))


def generate_clip_probe(cfg: ClipConfig) -> ClipProbe:
    """``probe_pairs_per_kind`` pairs of each kind of :data:`CLIP_PROBE_KINDS`."""
    rng = _rng(cfg, "probe")
    kinds, sa, sb, ca, cb = [], [], [], [], []
    for kind in CLIP_PROBE_KINDS:
        made = 0
        while made < cfg.probe_pairs_per_kind:
            a = sample_script(rng, cfg)
            b = a.reversed() if kind == "reversed" else a.swapped()
            try:
                b.check()
            except ValueError:
                continue
            if a.key() == b.key():  # e.g. "moves left, then right" played backwards
                continue
            kinds.append(kind)
            sa.append(a)
            sb.append(b)
            ca.append(caption_clip(a, rng, 1)[0])
            cb.append(caption_clip(b, rng, 1)[0])
            made += 1
    images_a = render_clips(sa)
    images_b = render_clips(sb)
    # A reversed clip is exactly the forward frames backwards, bit for bit (rendering it from its
    # own script agrees only up to float rounding), so the pair holds the very same frames.
    rev = np.array([k == "reversed" for k in kinds])
    images_b[rev] = images_a[rev][:, ::-1]
    return ClipProbe(kinds, images_a, images_b, sa, sb, ca, cb)


@dataclass
class ClipWorld:
    """All splits of one clip config, the order probe, and where they are cached."""

    config: ClipConfig
    splits: dict[str, ClipSplit]
    probe: ClipProbe
    folder: Path | None

    @property
    def train(self) -> ClipSplit:
        return self.splits["train"]

    @property
    def val(self) -> ClipSplit:
        return self.splits["val"]

    @property
    def test(self) -> ClipSplit:
        return self.splits["test"]

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The word-level tokenizer of the training captions, cached beside the splits."""
        return cached_tokenizer(self.folder, self.train.captions)


def _pack_split(split: ClipSplit) -> tuple[dict, dict]:
    return ({"images": split.images, "caption_image": split.caption_image},
            {"scripts": [x.to_dict() for x in split.scripts], "captions": split.captions})


def _unpack_split(name: str, arrays: dict, meta: dict) -> ClipSplit:
    return ClipSplit(name, arrays["images"], [ClipScript.from_dict(d) for d in meta["scripts"]],
                     meta["captions"], arrays["caption_image"])


def _pack_probe(probe: ClipProbe) -> tuple[dict, dict]:
    return ({"images_a": probe.images_a, "images_b": probe.images_b},
            {"kinds": probe.kinds, "caption_a": probe.caption_a, "caption_b": probe.caption_b,
             "scripts_a": [x.to_dict() for x in probe.scripts_a],
             "scripts_b": [x.to_dict() for x in probe.scripts_b]})


def _unpack_probe(arrays: dict, meta: dict) -> ClipProbe:
    return ClipProbe(meta["kinds"], arrays["images_a"], arrays["images_b"],
                     [ClipScript.from_dict(d) for d in meta["scripts_a"]],
                     [ClipScript.from_dict(d) for d in meta["scripts_b"]],
                     meta["caption_a"], meta["caption_b"])


def _check_drawing(folder: Path) -> None:
    """The frames a cache holds are drawn with this module's :data:`FRAMES` and :data:`TIMELINE`
    (not fields of :class:`ClipConfig`): kept in ``drawing.json`` beside the splits, and a cache
    drawn with others is refused, never silently reused (e.g. an exercise that changes them)."""
    drawing = {"frames": FRAMES, "timeline": [list(map(float, p)) for p in TIMELINE]}
    path = folder / "drawing.json"
    if path.is_file():
        kept = json.loads(path.read_text())
        if kept != drawing:
            raise ValueError(f"the clip cache {folder} was drawn with {kept['frames']} frames on "
                             f"the timeline {kept['timeline']}, not with this module's FRAMES = "
                             f"{FRAMES} and TIMELINE = {drawing['timeline']}: pass a cache_dir of "
                             f"your own to load_clip_world (or delete that folder)")
        return
    write_atomic(path, json.dumps(drawing))   # a new cache (or one from before this record)


def load_clip_world(
    config: ClipConfig, cache_dir: str | Path | None = None, *, use_cache: bool = True,
) -> ClipWorld:
    """Every split of the clip world ``config`` and its probe: read from the cache, else generated.

    ``config`` is a :class:`ClipConfig`, e.g. a preset's: ``load_clip_world(get_preset("cpu")
    .clips)``. The cache is ``<cache_dir>/clips-<key>/`` (``cache_dir`` defaults to
    :func:`~fastslow_lib.data.folders.default_cache_dir`); ``use_cache=False`` generates without
    reading or writing it.
    """
    check_loader_config(config, ClipConfig, "load_clip_world", "clips")
    folder = cache_folder(cache_dir, "clips", config) if use_cache else None
    if folder is not None:
        _check_drawing(folder)
    splits = {
        name: cached_or_generated(folder, name, f"clip split {name!r}",
                                  partial(generate_clip_split, config, name), _pack_split,
                                  partial(_unpack_split, name))
        for name in CLIP_SPLITS
    }
    probe = cached_or_generated(folder, "probe", "clip probe",
                                partial(generate_clip_probe, config), _pack_probe, _unpack_probe)
    return ClipWorld(config, splits, probe, folder)
