"""Reading a caption back into its meaning: the parser of the world's grammar.

:func:`parse_caption` reads a caption's text into its :class:`~fastslow_lib.data.captions.
CaptionForm` (who is mentioned, where, how they relate), so the checker
(:func:`caption_is_true`) tests the words themselves, not the generator's notes. A caption that
is not a sentence of the grammar raises :class:`CaptionParseError` naming the words it could not
read.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

from fastslow_lib.config.world import COLOURS, SHAPES
from fastslow_lib.data.captions import (
    COUNT_WORDS,
    ORDER_WORDS,
    RELATION_WORDS,
    SIZE_WORDS,
    CaptionForm,
    Mention,
    Relation,
    is_true,
)
from fastslow_lib.data.scene import Scene

__all__ = ["CaptionParseError", "caption_is_true", "parse_caption", "tokenize_caption"]


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


def parse_caption(text: str, *, partial: bool = False) -> CaptionForm:
    """Read a caption of the world's grammar back into its :class:`CaptionForm`.

    ``partial``: the caption may leave objects out (a world whose ``caption_detail`` is below
    1); the words alone cannot say so. Raises :class:`CaptionParseError` (a ``ValueError``)
    naming the words it could not read.
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
    return CaptionForm(tuple(mentions), tuple(relations), partial)


def caption_is_true(text: str, scene: Scene, *, partial: bool = False) -> bool:
    """Read ``text`` and check it against ``scene``: the end-to-end caption checker
    (``partial`` as in :func:`parse_caption`)."""
    return is_true(parse_caption(text, partial=partial), scene)
