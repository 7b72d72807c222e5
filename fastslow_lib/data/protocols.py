"""The two test protocols: 1K (Flickr30K-sized) and 5K (COCO-sized, with near-duplicates).

The paper reports Flickr30K's 1K test and COCO's 5K test. The course's 1K protocol is the
world's test split (1,000 images, 5,000 captions): :meth:`RetrievalProtocol.from_split`. On it
the release models sit near its ceiling, so effects cannot show their size. The **5K protocol**
(:func:`load_test5k`) is sized like COCO 5K and, like a real gallery, full of near-duplicates:

* the 1,000 test images, in the test split's order (so its first 5,000 queries are the 1K
  protocol's, caption for caption);
* for each test image, a **binding twin**: the same objects with one binding swapped (colour,
  position or size between two objects, the probe's rule,
  :func:`~fastslow_lib.data.scene.swap_attribute`), where the image allows one;
* for each test image, a **neighbour** that shares all objects but one: one object recoloured;
* images drawn like the test split (:func:`~fastslow_lib.data.world.generate_distractors`'s
  stream, so they are the first images notebook 04 adds when it grows the gallery), up to
  ``n_images`` in all.

Every image has five captions of its own, and every caption is a query (25,000 at 5,000
images, as in COCO 5K). Near-duplicates make some captions true of several gallery images; the
best any model can do is then :func:`~fastslow_lib.core.metrics.r1_ceiling`, the course's one
definition of a protocol's ceiling, and consistent@1 (any true image at the top) is reported
beside R@1. Deterministic: the same world config gives the same protocol, bit for bit, cached
beside the world's splits.

Taught in notebooks/04_rerank.ipynb (the 5K protocol); notebooks 02 and 03 use it.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from fastslow_lib.config.checks import check_int
from fastslow_lib.config.world import WorldConfig
from fastslow_lib.data.captions import caption_scene_n
from fastslow_lib.data.folders import cached_or_generated
from fastslow_lib.data.render import render_many
from fastslow_lib.data.scene import Scene, recolour, swap_attribute
from fastslow_lib.data.world import (
    PROBE_KINDS,
    Split,
    World,
    generate_distractors,
    pack_split,
    scene_swaps,
    unpack_split,
)

__all__ = ["TEST5K_IMAGES", "TEST5K_PARTS", "TEST5K_SHORTLIST_K", "TEST5K_SHORTLIST_QUERIES",
           "TEST5K_SLOW_QUERIES", "TEST5K_VERSION", "generate_test5k", "load_test5k",
           "nested_query_subsets", "parts_5k"]

#: Gallery size of the 5K protocol (COCO's 5K test).
TEST5K_IMAGES = 5000
#: The parts of the 5K gallery, in order (:func:`parts_5k` gives their index ranges).
TEST5K_PARTS: tuple[str, ...] = ("test", "twin", "neighbour", "drawn")
#: Bumped whenever the 5K protocol's recipe changes: it names the cached file.
TEST5K_VERSION = 1

_STREAM = 31   # the seed stream of the 5K protocol's twins, neighbours and captions


def _neighbour(scene: Scene, rng: np.random.Generator, colours: tuple[str, ...]) -> Scene:
    """``scene`` with one object recoloured: a scene that shares all its objects but one."""
    i = int(rng.integers(len(scene.objects)))
    others = [c for c in colours if c != scene.objects[i].colour]
    return recolour(scene, i, others[int(rng.integers(len(others)))], rng)


def _twin(scene: Scene, rng: np.random.Generator) -> Scene | None:
    """One binding twin of ``scene`` (a random valid swap of a random kind), or None."""
    options = [(i, j, kind) for kind in PROBE_KINDS for i, j in scene_swaps(scene, kind)]
    if not options:
        return None
    i, j, kind = options[int(rng.integers(len(options)))]
    return swap_attribute(scene, i, j, kind)


def generate_test5k(cfg: WorldConfig, test: Split, n_images: int = TEST5K_IMAGES) -> Split:
    """The 5K protocol's gallery and captions as a :class:`Split` named ``"test5k"`` (no cache).

    ``test`` is the world's test split (its images come first, in order). Raises a ValueError
    when ``n_images`` leaves no room for the test images and their near-duplicates.
    """
    check_int(n_images, "n_images", type_error=ValueError)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, _STREAM]))
    twins = [t for t in (_twin(s, rng) for s in test.scenes) if t is not None]
    neighbours = [_neighbour(s, rng, cfg.colours) for s in test.scenes]
    n_drawn = n_images - len(test) - len(twins) - len(neighbours)
    if n_drawn < 0:
        raise ValueError(f"n_images={n_images} is too small for the 5K protocol: the test split "
                         f"and its near-duplicates already hold "
                         f"{len(test) + len(twins) + len(neighbours)} images")
    drawn_images, drawn = generate_distractors(cfg, n_drawn) if n_drawn else (None, [])
    new = twins + neighbours + drawn
    captions, forms, owner = list(test.captions), list(test.forms), list(test.caption_image)
    for i, scene in enumerate(new, start=len(test)):
        for text, form in caption_scene_n(scene, rng, cfg.captions_per_image,
                                          detail=cfg.caption_detail):
            captions.append(text)
            forms.append(form)
            owner.append(i)
    parts = [test.images, render_many(twins + neighbours)]
    if drawn_images is not None:
        parts.append(drawn_images)
    return Split("test5k", np.concatenate(parts), list(test.scenes) + new, captions, forms,
                 np.asarray(owner, dtype=np.int64))


def parts_5k(test: Split, n_images: int) -> dict[str, tuple[int, int]]:
    """``{part: (start, stop)}``: where the test images, twins, neighbours and drawn images
    lie in the 5K gallery of ``n_images`` made from ``test`` (see :data:`TEST5K_PARTS`)."""
    n_twins = sum(1 for s in test.scenes if any(scene_swaps(s, kind) for kind in PROBE_KINDS))
    bounds = np.cumsum([0, len(test), n_twins, len(test), n_images - 2 * len(test) - n_twins])
    return {name: (int(bounds[i]), int(bounds[i + 1])) for i, name in enumerate(TEST5K_PARTS)}


def load_test5k(world: World, n_images: int = TEST5K_IMAGES) -> Split:
    """The 5K protocol of ``world``: read from the world's cache folder, else generated there.

    ``RetrievalProtocol.from_split(load_test5k(world))`` is the protocol (gallery, 25,000
    queries, ground truth and the truth matrix).
    """
    name = f"test5k-v{TEST5K_VERSION}-{n_images}"
    return cached_or_generated(world.folder, name, f"5K protocol {name!r}",
                               partial(generate_test5k, world.config, world.test, n_images),
                               pack_split, partial(unpack_split, "test5k"))


#: Queries of the 5K protocol that Slow scores against the whole gallery (Slow on everything):
#: enough that Slow's interval (about +-2 points at its R@1 here) sits below the ceiling and
#: decides Slow against Fast; 5M decoder pairs, about 45 minutes on 2 CPU cores, paid once by
#: ``scripts/test5k.py``.
TEST5K_SLOW_QUERIES = 1000
#: Queries on which every Slow-type model re-scores Fast's top :data:`TEST5K_SHORTLIST_K`
#: (the ablations' paired comparisons): five times as many, at a fiftieth of the pairs each.
TEST5K_SHORTLIST_QUERIES = 5000
#: The short list those queries re-score (Fast's R@100 is above 99.9 on the 5K protocol).
TEST5K_SHORTLIST_K = 100


def nested_query_subsets(n_queries: int, sizes: tuple[int, ...], seed: int = 0,
                         ) -> list[np.ndarray]:
    """Sorted query indices of each size in ``sizes``, each subset inside every larger one.

    One seeded permutation of ``range(n_queries)``; the subset of size ``n`` is its first ``n``
    entries, sorted. So the queries Slow scores exhaustively are also among those the short
    lists are scored on, and every model is compared on the same queries.
    """
    check_int(n_queries, "n_queries", type_error=ValueError)
    for n in sizes:
        check_int(n, "subset size", maximum=n_queries, type_error=ValueError)
    perm = np.random.default_rng(np.random.SeedSequence([seed, _STREAM])).permutation(n_queries)
    return [np.sort(perm[:n]) for n in sizes]
