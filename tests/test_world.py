"""The embedded world: determinism, captions true of their scenes, identifying captions, probe."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.metrics import oracle_recall_at_1
from fastslow_lib.data import (
    SPLITS,
    CaptionParseError,
    WorldConfig,
    caption_is_true,
    generate_probe,
    generate_split,
    held_out_probe,
    is_true,
    load_world,
    parse_caption,
    truth_matrix,
)
from fastslow_lib.data.scene import COLOURS, sample_scene, swap_attribute

TINY = get_preset("tiny").world


def independent_truth(form, scene) -> bool:
    """A second checker, written apart from the library's: it reads places and relations off
    the drawn pixel centres (x, y) instead of grid cells."""
    import itertools

    size = scene.image_size
    objs = scene.objects
    if len(objs) != len(form.mentions):
        return False

    def fits(m, o) -> bool:
        if m.shape != o.shape or (m.colour and m.colour != o.colour):
            return False
        if m.size and m.size != o.size:
            return False
        if m.vpos and m.vpos != ("top" if o.y < size / 2 else "bottom"):
            return False
        return not (m.hpos and m.hpos != ("left" if o.x < size / 2 else "right"))

    cell = size / scene.grid
    rel = {
        "left_of": lambda a, b: b.x - a.x > cell / 2,
        "right_of": lambda a, b: a.x - b.x > cell / 2,
        "above": lambda a, b: b.y - a.y > cell / 2,
        "below": lambda a, b: a.y - b.y > cell / 2,
    }
    for perm in itertools.permutations(objs):
        if all(fits(m, o) for m, o in zip(form.mentions, perm, strict=True)) and all(
            rel[r.rel](perm[r.a], perm[r.b]) for r in form.relations
        ):
            return True
    return False


@pytest.fixture(scope="module")
def big_split():
    """2,000 images and 10,000 captions of the cpu world (normal and small-object scenes)."""
    return generate_split(replace(get_preset("cpu").world, n_val=2000), "val")


def test_same_seed_same_data_bit_for_bit():
    a, b = generate_split(TINY, "train"), generate_split(TINY, "train")
    assert a.fingerprint() == b.fingerprint()
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    c = generate_split(replace(TINY, seed=1), "train")
    assert c.fingerprint() != a.fingerprint()
    assert generate_split(TINY, "val").fingerprint() != a.fingerprint()


def test_split_sizes_and_five_captions_per_image():
    s = generate_split(TINY, "test")
    assert s.images.shape == (TINY.n_test, 64, 64, 3) and s.images.dtype == np.uint8
    assert len(s.captions) == 5 * TINY.n_test
    assert np.array_equal(s.caption_image, np.repeat(np.arange(TINY.n_test), 5))
    for i in range(TINY.n_test):
        assert len(set(s.captions[5 * i : 5 * i + 5])) == 5


def test_every_caption_is_true_of_its_scene_read_from_its_words(big_split):
    """10,000 captions: parse the words, check them with two independent checkers."""
    for text, form, owner in zip(big_split.captions, big_split.forms, big_split.caption_image,
                                 strict=True):
        scene = big_split.scenes[owner]
        parsed = parse_caption(text)
        assert parsed == form, text
        assert is_true(parsed, scene), text
        assert independent_truth(parsed, scene), text


def test_captions_use_all_templates_and_mention_every_object(big_split):
    texts = big_split.captions
    assert any(t.startswith("from ") or ", from " in t for t in texts)
    assert any(" in the " in t for t in texts)
    assert any(" above " in t or " below " in t for t in texts)
    for form, owner in zip(big_split.forms, big_split.caption_image, strict=True):
        assert len(form.mentions) == len(big_split.scenes[owner].objects)


def test_captions_identify_their_image_in_the_test_split():
    """The oracle Recall@1 ceiling: >= 95% of test captions are true of exactly one image."""
    cfg = get_preset("cpu").world
    for name in ("test", "small"):
        split = generate_split(cfg, name)
        assert len(split) == 1000 and len(split.captions) == 5000
        oracle = oracle_recall_at_1(split.truth, split.caption_image)
        assert oracle >= 95.0, (name, oracle)


def test_truth_matrix_equals_the_exact_checker_on_every_pair():
    s = generate_split(TINY, "val")
    forms = s.forms[:120]
    fast = truth_matrix(forms, s.scenes)
    slow = np.array([[is_true(f, sc) for sc in s.scenes] for f in forms])
    assert np.array_equal(fast, slow)
    assert fast[np.arange(len(forms)), s.caption_image[:120]].all()


def test_object_colours_are_drawn_where_the_scene_says():
    rng = np.random.default_rng(3)
    from fastslow_lib.data.render import render_scene

    for kind, grid in (("normal", 4), ("fine", 8)):
        for _ in range(30):
            scene = sample_scene(rng, image_size=64, grid=grid, n_objects=4, kind=kind)
            img = render_scene(scene).astype(int)
            for o in scene.objects:
                px = img[int(o.y), int(o.x)]
                assert np.abs(px - np.array(o.rgb)).max() <= 30, (o, px)


def test_small_split_has_only_small_objects_on_the_fine_grid():
    s = generate_split(TINY, "small")
    assert all(sc.kind == "fine" and sc.grid == TINY.fine_grid for sc in s.scenes)
    assert {o.size for sc in s.scenes for o in sc.objects} <= {"tiny", "small"}
    mixed = generate_split(get_preset("cpu").world, "test")
    share = np.mean([sc.kind == "fine" for sc in mixed.scenes])
    assert 0.2 < share < 0.4


def test_probe_pairs_swap_one_binding_and_captions_tell_them_apart():
    probe = generate_probe(replace(TINY, probe_pairs_per_kind=40))
    assert len(probe) == 120 and sorted(set(probe.kinds)) == ["colour", "position", "size"]
    for k, a, b, ca, cb in zip(probe.kinds, probe.scenes_a, probe.scenes_b, probe.caption_a,
                               probe.caption_b, strict=True):
        assert caption_is_true(ca, a) and not caption_is_true(ca, b)
        assert caption_is_true(cb, b) and not caption_is_true(cb, a)
        shapes = sorted(o.shape for o in a.objects)
        assert shapes == sorted(o.shape for o in b.objects)
        assert sorted(o.colour for o in a.objects) == sorted(o.colour for o in b.objects)
        assert sorted(o.size for o in a.objects) == sorted(o.size for o in b.objects)
        same_bag = sorted(o.name for o in a.objects) == sorted(o.name for o in b.objects)
        assert same_bag == (k == "position")
    assert not np.array_equal(probe.images_a, probe.images_b)


def test_held_out_probe_is_a_fresh_sample_of_the_same_kind():
    probe = generate_probe(TINY)
    held = held_out_probe(TINY, 15)
    again = held_out_probe(TINY, 15)
    assert len(held) == 45 and held.kinds == ["colour"] * 15 + ["position"] * 15 + ["size"] * 15
    # same seed and size: the same pairs, bit for bit
    assert np.array_equal(held.images_a, again.images_a) and held.caption_a == again.caption_a
    # its own seed stream: none of the world probe's scenes comes back
    seen = {s.to_dict().__repr__() for s in probe.scenes_a}
    assert not seen & {s.to_dict().__repr__() for s in held.scenes_a}
    for a, b, ca, cb in zip(held.scenes_a, held.scenes_b, held.caption_a, held.caption_b,
                            strict=True):
        assert caption_is_true(ca, a) and not caption_is_true(ca, b)
        assert caption_is_true(cb, b) and not caption_is_true(cb, a)


def test_probe_rejects_unknown_stream_and_bad_size():
    with pytest.raises(ValueError, match="unknown probe stream 'train'"):
        generate_probe(TINY, stream="train")
    with pytest.raises(ValueError, match="pairs_per_kind must be at least 1"):
        held_out_probe(TINY, 0)


def test_swap_attribute_rejects_unknown_attribute():
    scene = sample_scene(np.random.default_rng(0), image_size=64, grid=4, n_objects=2)
    with pytest.raises(ValueError, match="unknown attribute 'shape'"):
        swap_attribute(scene, 0, 1, "shape")


def test_load_world_caches_and_reloads_identically(tmp_path):
    w1 = load_world(TINY, tmp_path)
    w2 = load_world(TINY, tmp_path)
    for name in ("train", "val", "test", "small"):
        assert w1[name].fingerprint() == w2[name].fingerprint()
        assert w2[name].scenes == w1[name].scenes and w2[name].forms == w1[name].forms
    assert w1.probe.fingerprint() == w2.probe.fingerprint()
    tok = w2.tokenizer()
    assert (w2.folder / "tokenizer" / "tokenizer.json").exists()
    assert w2.tokenizer().get_vocab() == tok.get_vocab()


def test_truncated_cache_gives_a_clear_error(tmp_path):
    w = load_world(TINY, tmp_path)
    assert len(w.test) == TINY.n_test   # generated and cached when first used
    path = w.folder / "test.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(OSError, match="split 'test'.*unreadable.*delete the folder"):
        _ = load_world(TINY, tmp_path).test   # read when first used


def test_cache_with_missing_fields_gives_a_clear_error(tmp_path):
    w = load_world(TINY, tmp_path)
    (w.folder / "probe.json").write_text('{"kinds": []}')
    with pytest.raises(OSError, match="probe.*unreadable.*delete the folder"):
        load_world(TINY, tmp_path)


def test_cache_layout_and_use_cache_false(tmp_path):
    w = load_world(TINY, tmp_path)
    assert w.folder == tmp_path / f"world-{TINY.key()}"
    for name in SPLITS:
        assert len(w[name]) > 0   # each split is generated and cached when first used
    names = {p.name for p in w.folder.iterdir()}
    assert names == {"config.json"} | {f"{n}.{ext}" for n in (*SPLITS, "probe")
                                       for ext in ("safetensors", "json")}
    fresh = load_world(TINY, tmp_path / "unused", use_cache=False)
    assert fresh.folder is None and not (tmp_path / "unused").exists()
    assert fresh.test.fingerprint() == w.test.fingerprint()


def test_config_keys_name_the_same_cache_folders_as_before():
    """The cache key hashes the config and the generator version: a new key orphans caches."""
    assert WorldConfig().key() == "5be51356f285"
    assert TINY.key() == "c5e60790b2dd"
    assert replace(TINY, seed=1).key() != TINY.key()


def test_load_world_takes_a_config_not_a_preset_name():
    with pytest.raises(TypeError, match=r"WorldConfig.*get_preset\('tiny'\)\.world"):
        load_world("tiny")
    with pytest.raises(TypeError, match="WorldConfig.*got dict"):
        load_world({"n_train": 10})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": 1.5}, TypeError, "seed must be an int, got float"),
        ({"seed": True}, TypeError, "seed must be an int, got bool"),
        ({"seed": -1}, ValueError, r"seed must satisfy 0 <= seed < 2\*\*32"),
        ({"shapes": ("circle", "hexagon")}, ValueError, "unknown words \\['hexagon'\\]"),
        ({"n_objects_probs": (0.5, 0.5, 0.5)}, ValueError, "summing to 1"),
        ({"n_test": 0}, ValueError, "n_test must be at least 1"),
    ],
)
def test_bad_world_config(kwargs, error, match):
    with pytest.raises(error, match=match):
        WorldConfig(**kwargs)


def test_unknown_split_and_preset():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        generate_split(TINY, "dev")
    with pytest.raises(ValueError, match="unknown preset 'laptop'"):
        get_preset("laptop")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty caption"),
        ("   ", "empty caption"),
        ("a red hexagon", "expected a shape"),
        ("a red circle in the middle", "expected top, bottom, left or right"),
        ("three shapes: a red circle and a blue square", "says 3 objects but names 2"),
        ("a red circle is above", "expected 'a' starting an object"),
        ("a red circle, from left to right, a blue square", "end of the caption"),
    ],
)
def test_unreadable_captions_raise(text, match):
    with pytest.raises(CaptionParseError, match=match):
        parse_caption(text)


def test_caption_must_be_a_string():
    with pytest.raises(TypeError, match="must be a string"):
        parse_caption(None)  # type: ignore[arg-type]


def test_relations_and_places_mean_what_they_say():
    rng = np.random.default_rng(0)
    scene = sample_scene(rng, image_size=64, grid=4, n_objects=2)
    a, b = scene.objects  # sorted by (row, col): a is above or left of b
    lhs = f"a {a.size} {a.colour} {a.shape}"
    rhs = f"a {b.size} {b.colour} {b.shape}"
    if a.row < b.row:
        assert caption_is_true(f"{lhs} is above {rhs}", scene)
        assert not caption_is_true(f"{lhs} is below {rhs}", scene)
    if a.col < b.col:
        assert caption_is_true(f"from left to right: {lhs} and {rhs}", scene)
        assert not caption_is_true(f"from right to left: {lhs} and {rhs}", scene)
    v = "top" if a.row < 2 else "bottom"
    h = "left" if a.col < 2 else "right"
    other_v = "bottom" if v == "top" else "top"
    assert caption_is_true(f"{lhs} in the {v} {h} and {rhs}", scene)
    assert not caption_is_true(f"{lhs} in the {other_v} {h} and {rhs}", scene)
    # a caption naming fewer objects than the scene holds is not true of it
    assert not caption_is_true(lhs, scene)
    assert set(COLOURS) >= {a.colour, b.colour}


def test_swapped_objects_stay_inside_their_cells():
    """A swap keeps every object inside its grid cell (no object cut by the image border)."""
    rng = np.random.default_rng(5)
    for kind, grid in (("normal", 4), ("fine", 8)):
        for _ in range(40):
            scene = sample_scene(rng, image_size=64, grid=grid, n_objects=4, kind=kind)
            for attribute in ("position", "size"):
                twin = swap_attribute(scene, 0, 3, attribute)
                cell = 64 / grid
                for o in twin.objects:
                    assert o.col * cell - 0.01 <= o.x - o.radius, (attribute, o)
                    assert o.x + o.radius <= (o.col + 1) * cell + 0.01, (attribute, o)
                    assert o.row * cell - 0.01 <= o.y - o.radius, (attribute, o)
                    assert o.y + o.radius <= (o.row + 1) * cell + 0.01, (attribute, o)


def _library_modules_after_importing(name: str) -> list[str]:
    code = f"import sys, {name}; print(*(m for m in sys.modules if m.startswith('fastslow_lib')))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("fastslow_lib.config.world", ("fastslow_lib.config.world", "fastslow_lib.config.checks")),
        *[(f"fastslow_lib.data.{m}", ("fastslow_lib.config.world", "fastslow_lib.config.checks",
                                       "fastslow_lib.core", "fastslow_lib.data"))
          for m in ("world", "clips", "datasets", "karpathy", "vatex", "tokenizer", "protocols")],
    ],
)
def test_data_and_its_configs_import_nothing_above_them(name, allowed):
    """config.world imports only config.checks; data only config.world, config.checks, core,
    data."""
    package = set(_library_modules_after_importing("fastslow_lib"))
    # The package itself loads only its flat-namespace machinery (stdlib only), nothing of core's.
    assert package <= {"fastslow_lib", "fastslow_lib.core", "fastslow_lib.core.namespace"}, package
    loaded = _library_modules_after_importing(name)
    above = [m for m in loaded if m not in package | {"fastslow_lib.config"}
             and not m.startswith(allowed)]
    assert not above, above


def test_splits_are_read_when_first_used_and_the_tokenizer_needs_no_training_split(tmp_path):
    load_world(TINY, tmp_path).tokenizer()             # generates and caches train (its captions)
    for name in SPLITS:
        assert len(load_world(TINY, tmp_path)[name]) > 0
    w = load_world(TINY, tmp_path)
    assert w.splits.loaded() == []
    w.tokenizer()                                       # from the cache: train is not read
    assert w.test is w.test and w.splits.loaded() == ["test"]
    assert set(w.splits) == set(SPLITS) and len(w.splits) == len(SPLITS)
    assert w.train.fingerprint() == load_world(TINY, tmp_path, use_cache=False).train.fingerprint()
