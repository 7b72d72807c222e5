"""The clip world (notebook 05): scripts, events, drawing, reversal, captions, splits, probe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fastslow_lib.data.clips import (
    FRAMES,
    TIMELINE,
    Actor,
    ClipConfig,
    Event,
    apply_event,
    caption_clip,
    generate_clip_probe,
    generate_clip_split,
    load_clip_world,
    render_clip,
    sample_script,
)
from fastslow_lib.data.datasets import RetrievalProtocol, TrainPairs, images_to_tensor

TINY = ClipConfig(n_train=40, n_val=10, n_test=12, probe_pairs_per_kind=6)


@pytest.fixture(scope="module")
def scripts():
    rng = np.random.default_rng(0)
    return [sample_script(rng, ClipConfig()) for _ in range(60)]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown words"):
        ClipConfig(shapes=("circle", "hexagon"))
    with pytest.raises(ValueError, match="event_probs"):
        ClipConfig(event_probs=(0.5, 0.5))
    with pytest.raises(ValueError, match="captions_per_clip"):
        ClipConfig(captions_per_clip=6)
    with pytest.raises(ValueError, match="n_test"):
        ClipConfig(n_test=0)
    with pytest.raises(ValueError, match="unknown clip split"):
        TINY.n_clips("small")


def test_timeline_is_a_palindrome():
    assert len(TIMELINE) == FRAMES
    for t in range(FRAMES):
        p1, p2 = TIMELINE[t]
        q1, q2 = TIMELINE[FRAMES - 1 - t]
        # Played backwards, event 2 (progress p2) is the first event, undone: 1 - p2 == q1 etc.
        assert (1 - p2, 1 - p1) == pytest.approx((q1, q2))


def test_apply_event_checks_what_can_happen():
    state = (Actor("circle", "red", 0, 0, True), Actor("square", "blue", 0, 1, True),
             Actor("cross", "green", 2, 2, False))
    assert apply_event(state, Event("move", 0, direction="down"), 4)[0].row == 1
    with pytest.raises(ValueError, match="leaves the board"):
        apply_event(state, Event("move", 0, direction="up"), 4)
    with pytest.raises(ValueError, match="occupied"):
        apply_event(state, Event("move", 0, direction="right"), 4)
    with pytest.raises(ValueError, match="hidden actor"):
        apply_event(state, Event("appear", 0), 4)
    assert apply_event(state, Event("appear", 2), 4)[2].visible
    with pytest.raises(ValueError, match="visible actor"):
        apply_event(state, Event("disappear", 2), 4)
    with pytest.raises(ValueError, match="new colour"):
        apply_event(state, Event("turn", 0, colour="red"), 4)
    assert apply_event(state, Event("turn", 0, colour="blue"), 4)[0].colour == "blue"
    with pytest.raises(ValueError, match="unknown event kind"):
        apply_event(state, Event("jump", 0), 4)
    with pytest.raises(ValueError, match="out of range"):
        apply_event(state, Event("appear", 5), 4)


def test_sampled_scripts_are_valid_and_seeded(scripts):
    for s in scripts:
        s.check()
        assert len(s.events) == 2
    rng = np.random.default_rng(0)
    assert [sample_script(rng, ClipConfig()) for _ in range(5)] == scripts[:5]
    kinds = {e.kind for s in scripts for e in s.events}
    assert kinds == {"move", "appear", "disappear", "turn"}


def test_render_is_deterministic_and_shows_the_events(scripts):
    s = scripts[0]
    frames = render_clip(s)
    assert frames.shape == (FRAMES, 32, 32, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, render_clip(s))
    # Frames 2 and 3 both show the state after event 1: only their noise differs.
    assert np.abs(frames[2].astype(int) - frames[3].astype(int)).mean() < 6
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).max() > 100


def test_a_move_moves_the_object():
    start = (Actor("square", "red", 1, 1, True), Actor("circle", "blue", 3, 3, False))
    s = replace(sample_script(np.random.default_rng(1), ClipConfig()), start=start,
                events=(Event("move", 0, direction="right"), Event("appear", 1)),
                offsets=((0.0, 0.0), (0.0, 0.0)), tints=((0, 0, 0), (0, 0, 0)))
    frames = render_clip(s).astype(int)
    red = (frames[..., 0] > 150) & (frames[..., 2] < 100)
    cols = [np.flatnonzero(red[t].any(axis=0)).mean() for t in range(FRAMES)]
    assert cols[0] < cols[1] < cols[2]  # moving right over frames 0-2
    assert cols[2] - cols[0] == pytest.approx(8.0, abs=0.5)  # one 8-pixel cell
    blue = (frames[..., 2] > 150) & (frames[..., 0] < 100)
    assert not blue[0].any() and blue[-1].any()  # the circle appears


def test_reversed_clip_is_the_frames_backwards(scripts):
    for s in scripts[:30]:
        r = s.reversed()
        r.check()
        assert np.array_equal(render_clip(r), render_clip(s)[::-1])
        back = r.reversed()
        assert back.start == s.start and back.events == s.events
    inverse = {"move": "move", "appear": "disappear", "disappear": "appear", "turn": "turn"}
    for s in scripts:
        r = s.reversed()
        assert [inverse[e.kind] for e in s.events[::-1]] == [e.kind for e in r.events]


def test_captions_tell_both_events(scripts):
    rng = np.random.default_rng(0)
    for s in scripts[:20]:
        caps = caption_clip(s, rng)
        assert len(caps) == 5 and len(set(caps)) == 5
        names = {s.states[0][s.events[0].actor].name, s.states[1][s.events[1].actor].name}
        for c in caps:
            assert any(n in c for n in names), c
    with_order_words = [c for s in scripts[:20] for c in caption_clip(s, rng)]
    assert any(" after " in c for c in with_order_words)
    assert any(c.startswith("before ") for c in with_order_words)


def test_split_truth_and_training_views():
    split = generate_clip_split(TINY, "test")
    assert split.images.shape == (12, FRAMES, 32, 32, 3)
    assert len(split.captions) == 60 and split.caption_image.tolist()[:6] == [0] * 5 + [1]
    assert split.truth[np.arange(60), split.caption_image].all()
    assert split.fingerprint() == generate_clip_split(TINY, "test").fingerprint()
    assert split.fingerprint() != generate_clip_split(TINY, "val").fingerprint()
    item = TrainPairs(split)[3]
    assert item["image"].shape == (FRAMES, 3, 32, 32)
    assert images_to_tensor(split.images[:2]).shape == (2, FRAMES, 3, 32, 32)
    protocol = RetrievalProtocol.from_split(split)
    assert protocol.truth.shape == (60, 12)


def test_probe_pairs_differ_only_in_order():
    probe = generate_clip_probe(TINY)
    assert probe.kinds == ["reversed"] * 6 + ["swapped"] * 6
    rev = np.array(probe.kinds) == "reversed"
    assert np.array_equal(probe.images_b[rev], probe.images_a[rev][:, ::-1])
    for a, b, ca, cb in zip(probe.scripts_a, probe.scripts_b, probe.caption_a, probe.caption_b,
                            strict=True):
        assert a.key() != b.key() and ca != cb
        assert sorted(e.kind for e in a.events) == sorted(
            e.kind for e in (b.events if b.start == a.start else b.reversed().events))


def test_world_cache_roundtrip(tmp_cache):
    first = load_clip_world(TINY, tmp_cache)
    again = load_clip_world(TINY, tmp_cache)
    for name in ("train", "val", "test"):
        assert again.splits[name].fingerprint() == first.splits[name].fingerprint()
        assert again.splits[name].scripts == first.splits[name].scripts
    assert np.array_equal(again.probe.images_b, first.probe.images_b)
    assert len(first.tokenizer()) > 30
    (first.folder / "test.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(OSError, match="clip split 'test'.*unreadable.*delete the folder"):
        load_clip_world(TINY, tmp_cache)


def test_clip_world_reads_the_same_files_as_the_image_world(tmp_cache):
    """One cache layout for both worlds: config.json, then <name>.safetensors + <name>.json
    per item."""
    world = load_clip_world(TINY, tmp_cache)
    assert world.folder == tmp_cache / f"clips-{TINY.key()}"
    assert {p.name for p in world.folder.iterdir()} == {"config.json", "drawing.json"} | {
        f"{n}.{ext}" for n in ("train", "val", "test", "probe") for ext in ("safetensors", "json")}
    assert load_clip_world(TINY, use_cache=False).folder is None


def test_a_cache_drawn_on_another_timeline_is_refused(tmp_cache, monkeypatch):
    import fastslow_lib.data.clips as clips

    load_clip_world(TINY, tmp_cache)
    # an exercise's own timeline: the start, the middle and the end of the defaults
    monkeypatch.setattr(clips, "FRAMES", 3)
    monkeypatch.setattr(clips, "TIMELINE", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)))
    with pytest.raises(ValueError, match="drawn with 6 frames.*FRAMES = 3.*cache_dir of your own"):
        load_clip_world(TINY, tmp_cache)
    own = load_clip_world(TINY, tmp_cache / "mine")   # its own cache: drawn anew, 3 frames
    assert own.splits["test"].images.shape[1] == 3


def test_config_key_and_config_only_loading():
    assert ClipConfig().key() == "ef6d21cdde6e"  # the cache folder name before the move
    with pytest.raises(TypeError, match=r"ClipConfig.*get_preset\('tiny'\)\.clips"):
        load_clip_world("tiny")
