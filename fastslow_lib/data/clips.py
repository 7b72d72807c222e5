"""Video clips of the embedded world: objects that move, appear, disappear or change colour.

A clip is :data:`FRAMES` frames (6) of the image world's objects on a small board. Its
:class:`ClipScript` says what happens: a start state and two events in order, each one of

* ``move``: an object moves one cell ``left`` / ``right`` / ``up`` / ``down``;
* ``appear`` / ``disappear``: an object fades in or out;
* ``turn``: an object changes colour.

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

Everything is seeded and cached like the image world (:func:`load_clip_world`).

Taught in notebooks/05_video.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from fastslow_lib.data.render import draw_object
from fastslow_lib.data.scene import COLOURS, SHAPES, Obj

#: Frames per clip.
FRAMES = 6
#: Progress of (event 1, event 2) at each frame: the start, event 1 half-way, its end (held for
#: two frames), event 2 half-way, its end. A palindrome: frame t of a clip played backwards is
#: frame ``FRAMES - 1 - t`` of the forward clip, with the events inverted.
TIMELINE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (1.0, 0.0), (1.0, 0.5), (1.0, 1.0),
)
EVENT_KINDS: tuple[str, ...] = ("move", "appear", "disappear", "turn")
#: (row step, column step) of each direction.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0),
}
OPPOSITE: dict[str, str] = {"left": "right", "right": "left", "up": "down", "down": "up"}
CLIP_PROBE_KINDS: tuple[str, ...] = ("reversed", "swapped")
#: Bump when generation changes, so old caches are not mistaken for new ones.
CLIP_GENERATOR_VERSION = 2
CLIP_SPLITS: tuple[str, ...] = ("train", "val", "test")
_STREAM = {"train": 10, "val": 11, "test": 12, "probe": 13}


@dataclass(frozen=True)
class ClipConfig:
    """Everything that decides the clip world's contents (notebook 05)."""

    image_size: int = 32
    grid: int = 4
    #: Four shapes and four colours (the image world uses three of each): with 16 object names
    #: a caption fits one clip of the 500-clip test gallery in 92% of cases (with 9, 84%).
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
        unknown = [s for s in self.shapes if s not in SHAPES]
        unknown += [c for c in self.colours if c not in COLOURS]
        if unknown:
            raise ValueError(f"unknown words {unknown}; shapes: {SHAPES}, colours: "
                             f"{tuple(COLOURS)}")
        if len(self.event_probs) != len(EVENT_KINDS) or abs(sum(self.event_probs) - 1) > 1e-9:
            raise ValueError(f"event_probs must be {len(EVENT_KINDS)} probabilities summing to "
                             f"1 (for {EVENT_KINDS}), got {self.event_probs}")
        if self.captions_per_clip not in range(1, 6):
            raise ValueError(f"captions_per_clip must be 1 to 5 (one per template), got "
                             f"{self.captions_per_clip}")
        for name in ("n_train", "n_val", "n_test", "probe_pairs_per_kind"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.grid < 3:
            raise ValueError(f"grid must be at least 3 (room for two moves), got {self.grid}")

    def n_clips(self, split: str) -> int:
        """Number of clips in ``split``."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[
            check_clip_split(split)]

    def key(self) -> str:
        """Short hash naming this config's cache folder."""
        blob = json.dumps({"v": CLIP_GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def check_clip_split(split: str) -> str:
    """``split`` itself, or a ValueError naming the clip world's splits."""
    if split not in CLIP_SPLITS:
        raise ValueError(f"unknown clip split {split!r}; expected one of {CLIP_SPLITS}")
    return split


# --------------------------------------------------------------------------------------------
# Scripts: what happens in a clip
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """One object's state: what it is, which cell it is on, whether it is visible."""

    shape: str
    colour: str
    row: int
    col: int
    visible: bool

    @property
    def name(self) -> str:
        """``"red circle"``."""
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Event:
    """Something one actor does: ``move`` (``direction``), ``appear``, ``disappear``, ``turn``
    (to ``colour``)."""

    kind: str
    actor: int
    direction: str | None = None
    colour: str | None = None


def apply_event(state: tuple[Actor, ...], event: Event, grid: int) -> tuple[Actor, ...]:
    """The state after ``event``; a ValueError if the event cannot happen in ``state``."""
    if not 0 <= event.actor < len(state):
        raise ValueError(f"event actor {event.actor} out of range for {len(state)} actors")
    a = state[event.actor]
    others = [o for i, o in enumerate(state) if i != event.actor and o.visible]
    if event.kind == "move":
        if not a.visible or event.direction not in DIRECTIONS:
            raise ValueError(f"cannot move {a}: invisible or direction {event.direction!r}")
        dr, dc = DIRECTIONS[event.direction]
        row, col = a.row + dr, a.col + dc
        if not (0 <= row < grid and 0 <= col < grid):
            raise ValueError("move leaves the board")
        if any((o.row, o.col) == (row, col) for o in others):
            raise ValueError("move onto an occupied cell")
        new = replace(a, row=row, col=col)
    elif event.kind == "appear":
        if a.visible or any((o.row, o.col) == (a.row, a.col) for o in others):
            raise ValueError("appear needs a hidden actor on a free cell")
        new = replace(a, visible=True)
    elif event.kind == "disappear":
        if not a.visible:
            raise ValueError("disappear needs a visible actor")
        new = replace(a, visible=False)
    elif event.kind == "turn":
        if not a.visible or event.colour is None or event.colour == a.colour:
            raise ValueError("turn needs a visible actor and a new colour")
        new = replace(a, colour=event.colour)
    else:
        raise ValueError(f"unknown event kind {event.kind!r}; expected one of {EVENT_KINDS}")
    return tuple(new if i == event.actor else o for i, o in enumerate(state))


@dataclass(frozen=True)
class ClipScript:
    """A clip before any pixel is drawn: the start state, two events, the drawing details.

    ``offsets[i]`` is actor i's sub-cell offset (pixels), ``noise_seeds`` one per frame.
    """

    start: tuple[Actor, ...]
    events: tuple[Event, Event]
    grid: int
    image_size: int
    radius: float
    background: int
    offsets: tuple[tuple[float, float], ...]
    tints: tuple[tuple[int, int, int], ...]
    noise_seeds: tuple[int, ...]

    @cached_property
    def states(self) -> tuple[tuple[Actor, ...], tuple[Actor, ...], tuple[Actor, ...]]:
        """The state before event 1, after event 1, after event 2 (errors if invalid)."""
        s1 = apply_event(self.start, self.events[0], self.grid)
        s2 = apply_event(s1, self.events[1], self.grid)
        return self.start, s1, s2

    def check(self) -> None:
        """A ValueError unless the events can happen and every actor keeps a unique name."""
        states = self.states
        owner: dict[str, int] = {}
        for state in states:
            for i, a in enumerate(state):
                if owner.setdefault(a.name, i) != i:
                    raise ValueError(f"two actors are called {a.name!r}")
        if not any(a.visible for a in states[0]) and not any(a.visible for a in states[2]):
            raise ValueError("a clip must show something")

    def event_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What the events mean, with each actor named as it looks when the event starts.

        Two clips with equal ``event_names`` make the same captions true: the caption key.
        """
        out = []
        for state, ev in zip(self.states[:2], self.events, strict=True):
            a = state[ev.actor]
            detail = ev.direction if ev.kind == "move" else ev.colour if ev.kind == "turn" else ""
            out.append((ev.kind, a.name, detail or ""))
        same = self.events[0].actor == self.events[1].actor
        return tuple(out[0]), (*out[1], "same" if same else "other")

    def key(self) -> str:
        """The meaning of this clip's captions as one string (see :meth:`event_names`)."""
        return json.dumps(self.event_names())

    def reversed(self) -> ClipScript:
        """The same clip played backwards: the end state, inverse events in reverse order."""
        s0, s1, s2 = self.states
        inverse = []
        for ev, before in ((self.events[1], s1), (self.events[0], s0)):
            if ev.kind == "move":
                inverse.append(Event("move", ev.actor, direction=OPPOSITE[ev.direction]))
            elif ev.kind == "appear":
                inverse.append(Event("disappear", ev.actor))
            elif ev.kind == "disappear":
                inverse.append(Event("appear", ev.actor))
            else:
                inverse.append(Event("turn", ev.actor, colour=before[ev.actor].colour))
        return replace(self, start=s2, events=(inverse[0], inverse[1]),
                       noise_seeds=tuple(reversed(self.noise_seeds)))

    def swapped(self) -> ClipScript:
        """The same start and the same two events in the other order (may be invalid)."""
        return replace(self, events=(self.events[1], self.events[0]))

    def to_dict(self) -> dict:
        """JSON-ready description (the cache stores it)."""
        return json.loads(json.dumps(asdict(self)))

    @staticmethod
    def from_dict(d: dict) -> ClipScript:
        """Inverse of :meth:`to_dict`."""
        return ClipScript(
            start=tuple(Actor(**a) for a in d["start"]),
            events=tuple(Event(**e) for e in d["events"]),  # type: ignore[arg-type]
            grid=int(d["grid"]), image_size=int(d["image_size"]), radius=float(d["radius"]),
            background=int(d["background"]),
            offsets=tuple((float(x), float(y)) for x, y in d["offsets"]),
            tints=tuple((int(r), int(g), int(b)) for r, g, b in d["tints"]),
            noise_seeds=tuple(int(s) for s in d["noise_seeds"]),
        )


def _event_options(state: tuple[Actor, ...], kind: str, cfg: ClipConfig) -> list[Event]:
    out = []
    for i, a in enumerate(state):
        if kind == "move" and a.visible:
            out += [Event("move", i, direction=d) for d in DIRECTIONS]
        elif kind == "appear" and not a.visible:
            out.append(Event("appear", i))
        elif kind == "disappear" and a.visible:
            out.append(Event("disappear", i))
        elif kind == "turn" and a.visible:
            out += [Event("turn", i, colour=c) for c in cfg.colours if c != a.colour]
    return out


def sample_script(rng: np.random.Generator, cfg: ClipConfig) -> ClipScript:
    """Draw a valid random clip: 1 or 2 visible objects, one hidden one, two events."""
    names = [(s, c) for s in cfg.shapes for c in cfg.colours]
    cell = cfg.image_size / cfg.grid
    while True:
        n_visible = int(rng.choice([1, 2], p=[0.4, 0.6]))
        n = n_visible + 1
        picked = rng.choice(len(names), size=n, replace=False)
        cells = rng.choice(cfg.grid * cfg.grid, size=n, replace=False)
        start = tuple(
            Actor(names[p][0], names[p][1], int(c) // cfg.grid, int(c) % cfg.grid, i < n_visible)
            for i, (p, c) in enumerate(zip(picked, cells, strict=True))
        )
        state, events = start, []
        for _ in range(2):
            kind = EVENT_KINDS[int(rng.choice(len(EVENT_KINDS), p=list(cfg.event_probs)))]
            options = _event_options(state, kind, cfg)
            valid = []
            for ev in options:
                try:
                    apply_event(state, ev, cfg.grid)
                    valid.append(ev)
                except ValueError:
                    pass
            if not valid:
                break
            ev = valid[int(rng.integers(len(valid)))]
            events.append(ev)
            state = apply_event(state, ev, cfg.grid)
        if len(events) < 2:
            continue
        slack = max(cell / 2 - cfg.radius * cfg.image_size - 0.5, 0.0)
        script = ClipScript(
            start=start, events=(events[0], events[1]), grid=cfg.grid, image_size=cfg.image_size,
            radius=cfg.radius, background=int(rng.integers(25, 60)),
            offsets=tuple((float(x), float(y)) for x, y in rng.uniform(-slack, slack, (n, 2))),
            tints=tuple((int(r), int(g), int(b)) for r, g, b in rng.integers(-15, 16, (n, 3))),
            noise_seeds=tuple(int(s) for s in rng.integers(2**31 - 1, size=FRAMES)),
        )
        try:
            script.check()
        except ValueError:
            continue
        return script


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
    fields :func:`fastslow_lib.evaluate.probe_accuracy` reads, as for the image probe.
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
    # A reversed clip is exactly the forward frames backwards (rendering it from its own script
    # agrees up to float rounding, a few pixel levels at most): the same frames, bit for bit.
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

    def tokenizer(self):  # -> transformers.PreTrainedTokenizerFast
        """The word-level tokenizer of the training captions, cached beside the splits."""
        from fastslow_lib.data.world import cached_tokenizer

        return cached_tokenizer(self.folder, self.train.captions)


def _save(folder: Path, name: str, arrays: dict, meta: dict) -> None:
    tmp = folder / f"{name}.tmp.npz"
    np.savez(tmp, **arrays)
    (folder / f"{name}.json").write_text(json.dumps(meta))
    os.replace(tmp, folder / f"{name}.npz")


def _load(folder: Path, name: str) -> tuple[dict, dict]:
    try:
        with np.load(folder / f"{name}.npz") as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise OSError(f"clip cache {name!r} in {folder} is unreadable ({e}); delete the folder "
                      f"to regenerate it") from e
    return arrays, meta


def load_clip_world(
    config: ClipConfig | str = "cpu", cache_dir: str | Path | None = None, *,
    use_cache: bool = True,
) -> ClipWorld:
    """Every split of the clip world and its probe: read from the cache, else generated.

    ``config`` is a :class:`ClipConfig` or a preset name (its ``clips`` setting). The cache is
    ``data/cache/clips-<key>/`` (or under ``$FASTSLOW_DATA``).
    """
    if isinstance(config, str):
        from fastslow_lib.presets import get_preset

        config = get_preset(config).clips
    folder = None
    if use_cache:
        from fastslow_lib.data.world import default_cache_dir

        folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) \
            / f"clips-{config.key()}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(asdict(config), indent=1))
    splits = {}
    for name in CLIP_SPLITS:
        if folder is not None and (folder / f"{name}.npz").exists():
            arrays, meta = _load(folder, name)
            splits[name] = ClipSplit(name, arrays["images"],
                                     [ClipScript.from_dict(d) for d in meta["scripts"]],
                                     meta["captions"], arrays["caption_image"])
        else:
            splits[name] = generate_clip_split(config, name)
            if folder is not None:
                s = splits[name]
                _save(folder, name, {"images": s.images, "caption_image": s.caption_image},
                      {"scripts": [x.to_dict() for x in s.scripts], "captions": s.captions})
    if folder is not None and (folder / "probe.npz").exists():
        arrays, meta = _load(folder, "probe")
        probe = ClipProbe(meta["kinds"], arrays["images_a"], arrays["images_b"],
                          [ClipScript.from_dict(d) for d in meta["scripts_a"]],
                          [ClipScript.from_dict(d) for d in meta["scripts_b"]],
                          meta["caption_a"], meta["caption_b"])
    else:
        probe = generate_clip_probe(config)
        if folder is not None:
            _save(folder, "probe", {"images_a": probe.images_a, "images_b": probe.images_b},
                  {"kinds": probe.kinds, "caption_a": probe.caption_a,
                   "caption_b": probe.caption_b,
                   "scripts_a": [x.to_dict() for x in probe.scripts_a],
                   "scripts_b": [x.to_dict() for x in probe.scripts_b]})
    return ClipWorld(config, splits, probe, folder)
