"""What happens in a clip, before any pixel is drawn: actors, events and the clip's script.

A clip of the clip world (:mod:`fastslow_lib.data.clips`) has two or three objects, the
*actors*, on a small board (one of them hidden at the start, so it can appear). Its
:class:`ClipScript` holds their start state and two :class:`Event` s in order, each one of

* ``move``: an actor moves one cell ``left`` / ``right`` / ``up`` / ``down``;
* ``appear`` / ``disappear``: an actor fades in or out;
* ``turn``: an actor changes colour.

:func:`apply_event` says whether an event can happen and what the board is after it;
:meth:`ClipScript.reversed` and :meth:`ClipScript.swapped` build the order probe's twins (a
clip played backwards, the same events in the other order); :func:`sample_script` draws a
valid random script from a seeded generator.

Taught in notebooks/05_video.ipynb.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import cached_property

import numpy as np

from fastslow_lib.config.world import EVENT_KINDS, ClipConfig

__all__ = [
    "DIRECTIONS",
    "EVENT_KINDS",
    "FRAMES",
    "OPPOSITE",
    "Actor",
    "ClipScript",
    "Event",
    "apply_event",
    "sample_script",
]

#: Frames per clip (a script draws one noise seed per frame).
FRAMES = 6
#: (row step, column step) of each direction.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0),
}
OPPOSITE: dict[str, str] = {"left": "right", "right": "left", "up": "down", "down": "up"}


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
