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
objects satisfies every attribute, place and relation. :func:`parse_caption` reads a caption's
text back into its form, so the checker tests the words themselves, not the generator's notes.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fastslow_lib.config.world import COLOURS, SHAPES
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

    def to_dict(self) -> dict:
        """JSON-ready form (used by the cache)."""
        return {
            "mentions": [
                [m.shape, m.colour, m.size, m.vpos, m.hpos] for m in self.mentions
            ],
            "relations": [[r.a, r.rel, r.b] for r in self.relations],
        }

    @staticmethod
    def from_dict(d: dict) -> CaptionForm:
        """Inverse of :meth:`to_dict`."""
        return CaptionForm(
            tuple(Mention(*m) for m in d["mentions"]),
            tuple(Relation(int(a), str(rel), int(b)) for a, rel, b in d["relations"]),
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

    True when the scene has exactly ``len(form.mentions)`` objects and a one-to-one matching of
    mentions to objects satisfies every mention and every relation.
    """
    objs = scene.objects
    if len(objs) != len(form.mentions):
        return False
    fits = [[mention_matches(m, o, scene) for o in objs] for m in form.mentions]
    for perm in itertools.permutations(range(len(objs))):
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


def _where(scene: Scene, rng: np.random.Generator, size_prob: float) -> tuple[str, CaptionForm]:
    order = rng.permutation(len(scene.objects))
    parts, mentions = [], []
    for i in order:
        obj = scene.objects[int(i)]
        np_text, m = _np(obj, rng, size_prob)
        pp_text, v, h = _pp(obj, scene, rng)
        parts.append(f"{np_text} {pp_text}")
        mentions.append(Mention(m.shape, m.colour, m.size, v, h))
    text = _count_prefix(len(parts), rng, 0.3) + _join(parts, rng)
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


def _relation(scene: Scene, rng: np.random.Generator, size_prob: float) -> tuple[str, CaptionForm]:
    order = [scene.objects[int(i)] for i in rng.permutation(len(scene.objects))]
    clauses, mentions, relations = [], [], []
    for start in range(0, len(order) - 1, 2):
        a, b = order[start], order[start + 1]
        a_text, ma = _np(a, rng, size_prob)
        b_text, mb = _np(b, rng, size_prob)
        if len(order) == 2:  # a lone pair also says where the first object is
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
        last = order[-1]
        np_text, m = _np(last, rng, size_prob)
        pp_text, v, h = _pp(last, scene, rng)
        clauses.append(f"{np_text} {pp_text}")
        mentions.append(Mention(m.shape, m.colour, m.size, v, h))
    sep = (", and ", "; ", " and ")[int(rng.integers(3))]
    text = sep.join(clauses)
    return text, CaptionForm(tuple(mentions), tuple(relations))


CAPTION_KINDS: tuple[str, ...] = ("place", "relation")
"""What a caption's meaning rests on: places alone, or relations between objects too."""


def caption_kind(form: CaptionForm) -> str:
    """``"relation"`` for a caption that relates objects (relations, orders), else ``"place"``."""
    return "relation" if form.relations else "place"


def caption_scene(
    scene: Scene, rng: np.random.Generator, template: str | None = None
) -> tuple[str, CaptionForm]:
    """One random caption of ``scene`` with its meaning; ``template`` picks the kind."""
    size_prob = 0.9
    if template is None:
        template = TEMPLATES[int(rng.choice(3, p=[0.4, 0.3, 0.3]))]
    if template == "order":
        axes = _order_axes(scene) if len(scene.objects) > 2 else []
        if not axes:
            template = ("where", "relation")[int(rng.integers(2))]
        else:
            return _order(scene, rng, size_prob, axes[int(rng.integers(len(axes)))])
    if template == "where":
        return _where(scene, rng, size_prob)
    if template == "relation":
        return _relation(scene, rng, size_prob)
    raise ValueError(f"unknown caption template {template!r}; expected one of {TEMPLATES}")


def caption_scene_n(
    scene: Scene, rng: np.random.Generator, n: int = 5, max_tries: int = 50
) -> list[tuple[str, CaptionForm]]:
    """``n`` distinct captions of ``scene`` (as Flickr30K and COCO have five per image)."""
    out: list[tuple[str, CaptionForm]] = []
    seen: set[str] = set()
    for _ in range(max_tries):
        text, form = caption_scene(scene, rng)
        if text not in seen:
            seen.add(text)
            out.append((text, form))
            if len(out) == n:
                return out
    raise RuntimeError(f"could not find {n} distinct captions for scene {scene}")


# --------------------------------------------------------------------------------------------
# Reading: text back to meaning
# --------------------------------------------------------------------------------------------

_SIZE_OF = {w: size for size, words in SIZE_WORDS.items() for w in words}
_COUNT_OF = {w: n for n, w in COUNT_WORDS.items()}
_REL_TOKENS = sorted(
    ((tuple(p.split()), rel) for rel, ps in RELATION_WORDS.items() for p in ps),
    key=lambda x: -len(x[0]),
)
_ORDER_TOKENS = {tuple(p.split()): rel for p, rel in ORDER_WORDS.items()}


def tokenize_caption(text: str) -> list[str]:
    """Lower-case words with ``,``, ``:`` and ``;`` split off as tokens of their own."""
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a string, got {type(text).__name__}")
    for p in ",:;.":
        text = text.replace(p, f" {p} ")
    return text.lower().split()


class CaptionParseError(ValueError):
    """Raised when a caption is not a sentence of the world's grammar."""


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize_caption(text)
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, *words: str) -> bool:
        if tuple(self.toks[self.i : self.i + len(words)]) == words:
            self.i += len(words)
            return True
        return False

    def fail(self, what: str) -> CaptionParseError:
        at = " ".join(self.toks[self.i : self.i + 4]) or "<end>"
        return CaptionParseError(f"cannot read caption {self.text!r}: expected {what} at {at!r}")

    def noun_phrase(self) -> Mention:
        if not self.take("a"):
            raise self.fail("'a' starting an object")
        size = _SIZE_OF.get(self.peek() or "")
        if size is not None:
            self.i += 1
        colour = self.peek() if self.peek() in COLOURS else None
        if colour is not None:
            self.i += 1
        shape = self.peek()
        if shape not in SHAPES:
            raise self.fail(f"a shape ({', '.join(SHAPES)})")
        self.i += 1
        return Mention(shape, colour, size)

    def place(self) -> tuple[str | None, str | None] | None:
        for lead in ("in", "at", "on"):
            if self.peek() == lead and self.peek(1) == "the":
                v = self.peek(2) if self.peek(2) in ("top", "bottom") else None
                if v is not None:
                    self.i += 3
                    h = self.peek() if self.peek() in ("left", "right") else None
                    if h is not None:
                        self.i += 1
                        self.take("corner")
                    return v, h
                h = self.peek(2) if self.peek(2) in ("left", "right") else None
                if h is not None:
                    self.i += 3
                    return None, h
                raise self.fail("top, bottom, left or right")
        return None

    def relation(self) -> str | None:
        start = self.i
        self.take("is")
        for words, rel in _REL_TOKENS:
            if self.take(*words):
                return rel
        self.i = start
        return None

    def order_phrase(self) -> str | None:
        for words, rel in _ORDER_TOKENS.items():
            if self.take(*words):
                return rel
        return None


def parse_caption(text: str) -> CaptionForm:
    """Read a caption of the world's grammar back into its :class:`CaptionForm`.

    Raises :class:`CaptionParseError` (a ``ValueError``) naming the words it could not read.
    """
    r = _Reader(text)
    if not r.toks:
        raise CaptionParseError("empty caption")
    count = None
    if r.take("there", "are") or r.peek() in _COUNT_OF:
        word = r.peek()
        if word not in _COUNT_OF:
            raise r.fail("a number")
        count = _COUNT_OF[word]
        r.i += 1
        if not (r.take("shapes") or r.take("objects")):
            raise r.fail("'shapes' or 'objects'")
        if not r.take(":"):
            raise r.fail("':'")
    order_rel = r.order_phrase()
    if order_rel is not None and not r.take(":"):
        raise r.fail("':' after the order phrase")
    mentions: list[Mention] = []
    relations: list[Relation] = []
    pending_rel: str | None = None
    while True:
        m = r.noun_phrase()
        where = r.place()
        if where is not None:
            m = Mention(m.shape, m.colour, m.size, where[0], where[1])
        mentions.append(m)
        if pending_rel is not None:
            relations.append(Relation(len(mentions) - 2, pending_rel, len(mentions) - 1))
            pending_rel = None
        if r.peek() is None:
            break
        rel = r.relation()
        if rel is not None:
            pending_rel = rel
            continue
        if r.take(",", "and") or r.take(",") or r.take("and") or r.take(";"):
            suffix = r.order_phrase()
            if suffix is not None:
                if order_rel is not None:
                    raise r.fail("only one order phrase")
                order_rel = suffix
                if r.peek() is not None:
                    raise r.fail("the end of the caption after the order phrase")
                break
            continue
        if r.peek() == ".":
            r.i += 1
            if r.peek() is None:
                break
        raise r.fail("',', 'and', ';' or a relation")
    if pending_rel is not None:
        raise r.fail("an object after the relation")
    if order_rel is not None:
        relations += [Relation(k, order_rel, k + 1) for k in range(len(mentions) - 1)]
    if count is not None and count != len(mentions):
        raise CaptionParseError(
            f"caption {text!r} says {count} objects but names {len(mentions)}"
        )
    return CaptionForm(tuple(mentions), tuple(relations))


def caption_is_true(text: str, scene: Scene) -> bool:
    """Read ``text`` and check it against ``scene``: the end-to-end caption checker."""
    return is_true(parse_caption(text), scene)
