"""Captions of the embedded world: a small grammar, its meaning, and a checker.

Every caption names every object of its scene (its colour and shape, usually its size) and says
where they are, in one of three ways:

* **where**: each object with its place, "a large red circle in the top left and a small blue
  square at the bottom right";
* **order**: the objects in order along one axis, "from left to right: a red circle, a blue
  square and a green cross";
* **relation**: pairs of objects related by a preposition, "a red circle is above a blue
  square, and a small green cross is to the left of a large yellow triangle".

A caption's meaning is a :class:`CaptionForm`: the mentioned objects (attributes and optional
places) and the relations between them. A caption is *true of* a scene when the scene has
exactly as many objects as the caption mentions and some one-to-one matching of mentions to
objects satisfies every attribute, place and relation. ``parse_caption``
(:mod:`fastslow_lib.data.caption_parser`) reads a caption's text back into its form, so the
checker tests the words themselves, not the generator's notes.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from fastslow_lib.data.scene import Obj, Scene

COUNT_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little"),
    "large": ("large", "big"),
    "tiny": ("tiny",),
}
#: Relation name -> the phrasings the grammar uses for it.
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    "left_of": ("to the left of", "left of"),
    "right_of": ("to the right of", "right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
#: "from left to right" says: each object is left of the next one.
ORDER_WORDS: dict[str, str] = {
    "from left to right": "left_of",
    "from right to left": "right_of",
    "from top to bottom": "above",
    "from bottom to top": "below",
}
TEMPLATES: tuple[str, ...] = ("where", "order", "relation")


@dataclass(frozen=True)
class Mention:
    """One object named by a caption; ``None`` means the caption does not say."""

    shape: str
    colour: str | None = None
    size: str | None = None
    vpos: str | None = None
    hpos: str | None = None


@dataclass(frozen=True)
class Relation:
    """``mentions[a]`` stands in relation ``rel`` to ``mentions[b]``."""

    a: int
    rel: str
    b: int


@dataclass(frozen=True)
class CaptionForm:
    """The meaning of a caption: who is mentioned, where, and how they relate."""

    mentions: tuple[Mention, ...]
    relations: tuple[Relation, ...] = ()
    #: False: the caption names every object of its scene (true only of scenes with exactly
    #: these objects). True: it may leave objects out (true of any scene holding at least the
    #: objects it names), as real captions do (``WorldConfig.caption_detail`` below 1).
    partial: bool = False

    def __repr__(self) -> str:
        # ``partial`` only where it is set: a full caption's form reads as it always has.
        more = ", partial=True" if self.partial else ""
        return f"CaptionForm(mentions={self.mentions!r}, relations={self.relations!r}{more})"

    def to_dict(self) -> dict:
        """JSON-ready form (used by the cache)."""
        out: dict = {
            "mentions": [
                [m.shape, m.colour, m.size, m.vpos, m.hpos] for m in self.mentions
            ],
            "relations": [[r.a, r.rel, r.b] for r in self.relations],
        }
        if self.partial:
            out["partial"] = True
        return out

    @staticmethod
    def from_dict(d: dict) -> CaptionForm:
        """Inverse of :meth:`to_dict`."""
        return CaptionForm(
            tuple(Mention(*m) for m in d["mentions"]),
            tuple(Relation(int(a), str(rel), int(b)) for a, rel, b in d["relations"]),
            bool(d.get("partial", False)),
        )


# --------------------------------------------------------------------------------------------
# Meaning: is a form true of a scene?
# --------------------------------------------------------------------------------------------


def relation_holds(rel: str, a: Obj, b: Obj) -> bool:
    """Whether ``a`` is ``rel`` ``b`` on the grid (strictly: different columns or rows)."""
    if rel == "left_of":
        return a.col < b.col
    if rel == "right_of":
        return a.col > b.col
    if rel == "above":
        return a.row < b.row
    if rel == "below":
        return a.row > b.row
    raise ValueError(f"unknown relation {rel!r}; expected one of {sorted(RELATION_WORDS)}")


def mention_matches(m: Mention, obj: Obj, scene: Scene) -> bool:
    """Whether object ``obj`` of ``scene`` fits everything mention ``m`` says about it."""
    return (
        m.shape == obj.shape
        and (m.colour is None or m.colour == obj.colour)
        and (m.size is None or m.size == obj.size)
        and (m.vpos is None or m.vpos == scene.vpos(obj))
        and (m.hpos is None or m.hpos == scene.hpos(obj))
    )


def is_true(form: CaptionForm, scene: Scene) -> bool:
    """Whether the caption with meaning ``form`` is true of ``scene``.

    True when the scene has exactly ``len(form.mentions)`` objects (at least that many for a
    ``partial`` form) and a one-to-one matching of mentions to distinct objects satisfies every
    mention and every relation.
    """
    objs, k = scene.objects, len(form.mentions)
    if len(objs) < k or (len(objs) > k and not form.partial):
        return False
    fits = [[mention_matches(m, o, scene) for o in objs] for m in form.mentions]
    for perm in itertools.permutations(range(len(objs)), k):
        if not all(fits[k][perm[k]] for k in range(len(perm))):
            continue
        if all(relation_holds(r.rel, objs[perm[r.a]], objs[perm[r.b]]) for r in form.relations):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Words: render a caption for a scene
# --------------------------------------------------------------------------------------------


def _np(obj: Obj, rng: np.random.Generator, size_prob: float) -> tuple[str, Mention]:
    """Noun phrase for ``obj``: "a [size] colour shape"."""
    words = ["a"]
    size = None
    if rng.random() < size_prob:
        size = obj.size
        options = SIZE_WORDS[size]
        words.append(options[int(rng.integers(len(options)))])
    words += [obj.colour, obj.shape]
    return " ".join(words), Mention(obj.shape, obj.colour, size)


def _pp(obj: Obj, scene: Scene, rng: np.random.Generator) -> tuple[str, str | None, str | None]:
    """Place phrase for ``obj``: both halves ("in the top left") or one ("on the left")."""
    v, h = scene.vpos(obj), scene.hpos(obj)
    u = rng.random()
    if u < 0.6:
        return f"in the {v} {h}", v, h
    if u < 0.75:
        return f"in the {v} {h} corner", v, h
    if u < 0.9:
        return f"at the {v} {h}", v, h
    if u < 0.95:
        return f"at the {v}", v, None
    return f"on the {h}", None, h


def _join(parts: list[str], rng: np.random.Generator) -> str:
    """ "a, b and c" """
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _count_prefix(n: int, rng: np.random.Generator, prob: float) -> str:
    if rng.random() >= prob:
        return ""
    noun = ("shapes", "objects")[int(rng.integers(2))]
    if rng.random() < 0.5:
        return f"{COUNT_WORDS[n]} {noun}: "
    return f"there are {COUNT_WORDS[n]} {noun}: "


def _placed(obj: Obj, scene: Scene, rng: np.random.Generator, size_prob: float,
            place_prob: float) -> tuple[str, Mention]:
    """Noun phrase and, with ``place_prob`` (always at 1, drawing nothing), its place."""
    np_text, m = _np(obj, rng, size_prob)
    if place_prob < 1 and rng.random() >= place_prob:
        return np_text, m
    pp_text, v, h = _pp(obj, scene, rng)
    return f"{np_text} {pp_text}", Mention(m.shape, m.colour, m.size, v, h)


def _where(scene: Scene, rng: np.random.Generator, size_prob: float,
           place_prob: float = 1.0) -> tuple[str, CaptionForm]:
    order = rng.permutation(len(scene.objects))
    parts, mentions = [], []
    for i in order:
        text, m = _placed(scene.objects[int(i)], scene, rng, size_prob, place_prob)
        parts.append(text)
        mentions.append(m)
    count_prob = 0.3 if place_prob >= 1 else 0.0  # a partial caption does not count the scene
    text = _count_prefix(len(parts), rng, count_prob) + _join(parts, rng)
    return text, CaptionForm(tuple(mentions))


def _order_axes(scene: Scene) -> list[str]:
    """Order phrases usable for this scene (objects on distinct columns / rows)."""
    objs = scene.objects
    out = []
    if len({o.col for o in objs}) == len(objs):
        out += ["from left to right", "from right to left"]
    if len({o.row for o in objs}) == len(objs):
        out += ["from top to bottom", "from bottom to top"]
    return out


def _order(
    scene: Scene, rng: np.random.Generator, size_prob: float, phrase: str
) -> tuple[str, CaptionForm]:
    rel = ORDER_WORDS[phrase]
    key = {
        "left_of": lambda o: o.col,
        "right_of": lambda o: -o.col,
        "above": lambda o: o.row,
        "below": lambda o: -o.row,
    }[rel]
    objs = sorted(scene.objects, key=key)
    parts, mentions = [], []
    for obj in objs:
        np_text, m = _np(obj, rng, size_prob)
        parts.append(np_text)
        mentions.append(m)
    body = _join(parts, rng)
    text = f"{phrase}: {body}" if rng.random() < 0.7 else f"{body}, {phrase}"
    relations = tuple(Relation(k, rel, k + 1) for k in range(len(objs) - 1))
    return text, CaptionForm(tuple(mentions), relations)


def _true_relations(a: Obj, b: Obj) -> list[str]:
    return [r for r in RELATION_WORDS if relation_holds(r, a, b)]


def _relation(scene: Scene, rng: np.random.Generator, size_prob: float,
              place_prob: float = 1.0) -> tuple[str, CaptionForm]:
    order = [scene.objects[int(i)] for i in rng.permutation(len(scene.objects))]
    clauses, mentions, relations = [], [], []
    for start in range(0, len(order) - 1, 2):
        a, b = order[start], order[start + 1]
        a_text, ma = _np(a, rng, size_prob)
        b_text, mb = _np(b, rng, size_prob)
        # a lone pair also says where the first object is (a partial caption: sometimes)
        if len(order) == 2 and (place_prob >= 1 or rng.random() < place_prob):
            pp_text, v, h = _pp(a, scene, rng)
            a_text = f"{a_text} {pp_text}"
            ma = Mention(ma.shape, ma.colour, ma.size, v, h)
        rels = _true_relations(a, b)
        rel = rels[int(rng.integers(len(rels)))]
        words = RELATION_WORDS[rel]
        phrase = words[int(rng.integers(len(words)))]
        if phrase in ("left of", "right of") or rng.random() < 0.5:
            phrase = "is " + phrase
        clauses.append(f"{a_text} {phrase} {b_text}")
        k = len(mentions)
        mentions += [ma, mb]
        relations.append(Relation(k, rel, k + 1))
    if len(order) % 2 == 1:
        text, m = _placed(order[-1], scene, rng, size_prob, place_prob)
        clauses.append(text)
        mentions.append(m)
    sep = (", and ", "; ", " and ")[int(rng.integers(3))]
    text = sep.join(clauses)
    return text, CaptionForm(tuple(mentions), tuple(relations))


CAPTION_KINDS: tuple[str, ...] = ("place", "relation")
"""What a caption's meaning rests on: places alone, or relations between objects too."""


def caption_kind(form: CaptionForm) -> str:
    """``"relation"`` for a caption that relates objects (relations, orders), else ``"place"``."""
    return "relation" if form.relations else "place"


#: Size order for choosing which objects a partial caption names: the largest first.
_SALIENCE = {"large": 0, "small": 1, "tiny": 2}


def named_objects(scene: Scene, rng: np.random.Generator, detail: float) -> Scene:
    """The objects a caption of ``detail`` names, as a scene of their own.

    ``round(detail * n)`` of the scene's ``n`` objects (at least one), the largest first (ties
    drawn at random): what people mention first is what stands out. At ``detail=1`` the scene
    itself, drawing nothing.
    """
    n = len(scene.objects)
    k = max(1, min(n, int(np.floor(detail * n + 0.5))))
    if k == n:
        return scene
    ties = rng.random(n)
    keep = sorted(sorted(range(n), key=lambda i: (_SALIENCE[scene.objects[i].size], ties[i]))[:k])
    return replace(scene, objects=tuple(scene.objects[i] for i in keep))


def caption_scene(
    scene: Scene, rng: np.random.Generator, template: str | None = None, detail: float = 1.0,
) -> tuple[str, CaptionForm]:
    """One random caption of ``scene`` with its meaning; ``template`` picks the kind.

    ``detail`` is how much the caption says (``WorldConfig.caption_detail``): 1 names every
    object and its place (today's world); below 1 the caption names
    :func:`named_objects` only, says a place with probability ``detail`` and a size with
    ``0.9 * detail``, and its form is ``partial`` (true of any scene holding what it names).
    """
    if not 0 < detail <= 1:
        raise ValueError(f"detail must be in (0, 1], got {detail!r}")
    full = detail >= 1
    named = scene if full else named_objects(scene, rng, detail)
    size_prob, place_prob = 0.9 * detail, (1.0 if full else detail)
    if template is None:
        template = TEMPLATES[int(rng.choice(3, p=[0.4, 0.3, 0.3]))]
    if template == "order":
        axes = _order_axes(named) if len(named.objects) > 2 else []
        if not axes:
            template = ("where", "relation")[int(rng.integers(2))]
        else:
            text, form = _order(named, rng, size_prob, axes[int(rng.integers(len(axes)))])
            return text, replace(form, partial=not full)
    if template == "where":
        text, form = _where(named, rng, size_prob, place_prob)
    elif template == "relation":
        text, form = _relation(named, rng, size_prob, place_prob)
    else:
        raise ValueError(f"unknown caption template {template!r}; expected one of {TEMPLATES}")
    return text, replace(form, partial=not full)


def caption_scene_n(
    scene: Scene, rng: np.random.Generator, n: int = 5, max_tries: int = 50,
    detail: float = 1.0,
) -> list[tuple[str, CaptionForm]]:
    """``n`` distinct captions of ``scene`` (as Flickr30K and COCO have five per image), each
    saying as much as ``detail`` (:func:`caption_scene`)."""
    out: list[tuple[str, CaptionForm]] = []
    seen: set[str] = set()
    for _ in range(max_tries):
        text, form = caption_scene(scene, rng, detail=detail)
        if text not in seen:
            seen.add(text)
            out.append((text, form))
            if len(out) == n:
                return out
    raise RuntimeError(f"could not find {n} distinct captions for scene {scene}")
