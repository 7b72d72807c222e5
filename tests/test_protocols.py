"""The 5K protocol (fastslow_lib.data.protocols): the test images first, a binding twin and a
one-object neighbour of each, drawn images to the size; five captions each; deterministic;
nested query subsets; the one definition of a ceiling (core.metrics.r1_ceiling)."""

from __future__ import annotations

import numpy as np
import pytest

from fastslow_lib.core.metrics import oracle_recall_at_1, r1_ceiling
from fastslow_lib.data import RetrievalProtocol, is_true
from fastslow_lib.data.protocols import (
    TEST5K_PARTS,
    generate_test5k,
    load_test5k,
    nested_query_subsets,
    parts_5k,
)
from fastslow_lib.data.scene import recolour
from fastslow_lib.data.world import generate_distractors

N = 200   # a 5K-like gallery of 200 images around the tiny world's 60 test images


@pytest.fixture(scope="module")
def t5(world):
    return generate_test5k(world.config, world.test, N)


def _differences(a, b) -> list[tuple[str, str, str]]:
    """(shape, attribute, value a / value b) of objects whose attributes differ."""
    key = {(o.row, o.col): o for o in b.objects}
    out = []
    for o in a.objects:
        other = key.get((o.row, o.col))
        if other is None:
            out.append((o.shape, "place", "moved"))
            continue
        for attr in ("shape", "colour", "size"):
            if getattr(o, attr) != getattr(other, attr):
                out.append((o.shape, attr, f"{getattr(o, attr)}/{getattr(other, attr)}"))
    return out


def test_the_gallery_holds_the_test_split_first_then_twins_neighbours_and_drawn(world, t5):
    test = world.test
    parts = parts_5k(test, N)
    assert list(parts) == list(TEST5K_PARTS) and parts["test"] == (0, len(test))
    assert parts["drawn"][1] == len(t5) == N
    assert sum(b - a for a, b in parts.values()) == N
    np.testing.assert_array_equal(t5.images[: len(test)], test.images)
    assert t5.captions[: len(test.captions)] == test.captions   # the 1K protocol's queries first
    # five captions per image, each true of its own scene
    assert len(t5.captions) == 5 * N
    np.testing.assert_array_equal(np.bincount(t5.caption_image), np.full(N, 5))
    assert all(is_true(f, t5.scenes[int(i)]) for f, i in zip(t5.forms, t5.caption_image,
                                                             strict=True))
    # the drawn images are generate_distractors' first ones
    a, b = parts["drawn"]
    np.testing.assert_array_equal(t5.images[a:b], generate_distractors(world.config, b - a)[0])


def test_twins_swap_one_binding_and_neighbours_recolour_one_object(world, t5):
    parts = parts_5k(world.test, N)
    a, b = parts["neighbour"]
    for i, scene in enumerate(t5.scenes[a:b]):
        diff = _differences(world.test.scenes[i], scene)
        assert len(diff) == 1 and diff[0][1] == "colour", diff
    a, b = parts["twin"]
    twins = t5.scenes[a:b]
    assert len(twins) > 0.8 * len(world.test)   # most scenes allow a swap
    for twin in twins:
        originals = [s for s in world.test.scenes
                     if sorted((o.shape, o.colour, o.size) for o in s.objects)
                     == sorted((o.shape, o.colour, o.size) for o in twin.objects)
                     or len(_differences(s, twin)) == 2]
        assert originals, "every twin is one binding swap away from a test scene"


def test_near_duplicates_make_captions_fit_several_images_and_the_ceiling_says_so(t5):
    p = RetrievalProtocol.from_split(t5)
    counts = p.truth.sum(axis=1)
    assert (counts >= 1).all() and (counts > 1).any()
    ceiling = r1_ceiling(p.truth)
    assert oracle_recall_at_1(p.truth, p.gt) < ceiling < 100
    np.testing.assert_allclose(ceiling, 100 * np.mean(1 / counts))


def test_the_5k_protocol_is_deterministic_and_cached(world):
    again = generate_test5k(world.config, world.test, N)
    first = load_test5k(world, N)   # generated and cached in the world's folder
    assert again.fingerprint() == first.fingerprint()
    assert any(p.name.startswith("test5k-") for p in world.folder.iterdir())
    assert load_test5k(world, N).fingerprint() == first.fingerprint()


def test_a_gallery_too_small_for_the_near_duplicates_is_refused(world):
    with pytest.raises(ValueError, match="too small for the 5K protocol"):
        generate_test5k(world.config, world.test, len(world.test) + 3)


def test_nested_query_subsets_are_nested_sorted_and_seeded():
    small, large = nested_query_subsets(1000, (50, 300))
    assert set(small) <= set(large) and len(set(large)) == 300
    assert (np.diff(large) > 0).all() and (np.diff(small) > 0).all()
    again = nested_query_subsets(1000, (50, 300))
    np.testing.assert_array_equal(again[0], small)
    assert not np.array_equal(nested_query_subsets(1000, (50,), seed=1)[0], small)
    with pytest.raises(ValueError, match="subset size"):
        nested_query_subsets(10, (20,))


def test_r1_ceiling_is_the_mean_of_one_over_the_true_images():
    truth = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=bool)
    assert r1_ceiling(truth) == pytest.approx(100 * (1 + 1 / 2 + 1 / 3 + 1) / 4)
    with pytest.raises(ValueError, match="all False"):
        r1_ceiling(np.array([[1, 0], [0, 0]], dtype=bool))


def test_recolour_paints_one_object_and_refuses_unknown_colours(world):
    scene = world.test.scenes[0]
    rng = np.random.default_rng(0)
    colour = next(c for c in world.config.colours if c != scene.objects[0].colour)
    out = recolour(scene, 0, colour, rng)
    assert out.objects[0].colour == colour and out.objects[1:] == scene.objects[1:]
    with pytest.raises(ValueError, match="unknown colour"):
        recolour(scene, 0, "mauve", rng)
