"""Captions that leave things out: ``WorldConfig.caption_detail`` (notebook 03's world setting)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from fastslow_lib.config.presets import get_preset
from fastslow_lib.data import WorldConfig, generate_split, is_true, parse_caption, truth_matrix
from fastslow_lib.data.caption_parser import caption_is_true

TINY = get_preset("tiny").world


def independent_partial_truth(form, scene) -> bool:
    """Written apart from ``is_true``: some injective assignment of mentions to objects fits
    every attribute, place (from pixel coordinates) and relation."""
    objs, size = scene.objects, scene.image_size
    cell = size / scene.grid

    def fits(m, o) -> bool:
        return (m.shape == o.shape and m.colour in (None, o.colour) and m.size in (None, o.size)
                and m.vpos in (None, "top" if o.y < size / 2 else "bottom")
                and m.hpos in (None, "left" if o.x < size / 2 else "right"))

    rel = {"left_of": lambda a, b: b.x - a.x > cell / 2,
           "right_of": lambda a, b: a.x - b.x > cell / 2,
           "above": lambda a, b: b.y - a.y > cell / 2,
           "below": lambda a, b: a.y - b.y > cell / 2}
    return any(all(fits(m, o) for m, o in zip(form.mentions, chosen, strict=True))
               and all(rel[r.rel](chosen[r.a], chosen[r.b]) for r in form.relations)
               for chosen in itertools.permutations(objs, len(form.mentions)))


@pytest.fixture(scope="module")
def sparse_split():
    """1,000 images and 5,000 captions of the cpu world whose captions say 0.6 of a scene."""
    return generate_split(replace(get_preset("cpu").world, n_val=1000, caption_detail=0.6), "val")


def test_full_captions_are_todays_bit_for_bit():
    """At detail 1 the generator draws exactly what it drew before the setting existed."""
    assert generate_split(TINY, "test").fingerprint() == (
        "74a8ac5a6cf74dc099d3254eb8843ea254a33cb78f504183dee01789afaa41e2")
    assert WorldConfig().key() == "5be51356f285"  # the released world keeps its key
    assert replace(WorldConfig(), caption_detail=0.6).key() != WorldConfig().key()


def test_partial_captions_are_true_of_their_scene_and_name_fewer_objects(sparse_split):
    named, objects = [], []
    for text, form, owner in zip(sparse_split.captions, sparse_split.forms,
                                 sparse_split.caption_image, strict=True):
        scene = sparse_split.scenes[owner]
        assert form.partial and parse_caption(text, partial=True) == form, text
        assert is_true(form, scene) and independent_partial_truth(form, scene), text
        assert caption_is_true(text, scene, partial=True), text
        n = len(scene.objects)
        assert len(form.mentions) == max(1, int(np.floor(0.6 * n + 0.5))), (text, n)
        named.append(len(form.mentions))
        objects.append(n)
        assert not text.startswith(("two ", "three ", "four ", "there are")), text  # no count
    assert np.mean(named) < 0.75 * np.mean(objects)
    # the largest objects are named first: no named object is smaller than an unnamed one
    rank = {"large": 0, "small": 1, "tiny": 2}
    for form, owner in zip(sparse_split.forms[:500], sparse_split.caption_image[:500],
                           strict=True):
        scene = sparse_split.scenes[owner]
        assert any(
            all(m.shape == o.shape and m.colour == o.colour for m, o in zip(form.mentions, pick,
                                                                            strict=True))
            and max(rank[o.size] for o in pick)
            <= min((rank[o.size] for o in scene.objects if o not in pick), default=9)
            for pick in itertools.permutations(scene.objects, len(form.mentions)))


def test_a_closed_caption_is_false_of_a_scene_with_more_objects(sparse_split):
    form = parse_caption("a red circle")
    scene = next(s for s in sparse_split.scenes
                 if len(s.objects) > 1 and any(o.shape == "circle" and o.colour == "red"
                                               for o in s.objects))
    assert not is_true(form, scene) and is_true(replace(form, partial=True), scene)


def test_less_detail_makes_captions_true_of_more_images():
    mean_true = []
    for detail in (1.0, 0.8, 0.6):
        split = generate_split(replace(get_preset("cpu").world, n_test=300,
                                       caption_detail=detail), "test")
        truth = truth_matrix(split.forms, split.scenes)
        assert truth[np.arange(len(split.captions)), split.caption_image].all()
        mean_true.append(truth.sum(1).mean())
    assert mean_true[0] < 1.1 < 1.5 < mean_true[1] < mean_true[2], mean_true


def test_the_truth_matrix_short_cut_agrees_with_the_checker(sparse_split):
    forms, scenes = sparse_split.forms[:300], sparse_split.scenes[:200]
    fast = truth_matrix(forms, scenes)
    slow = np.array([[is_true(f, s) for s in scenes] for f in forms])
    assert np.array_equal(fast, slow) and fast.any()


@pytest.mark.parametrize("detail", [0, -0.5, 1.5, "0.6"])
def test_bad_caption_detail_is_a_clear_error(detail):
    with pytest.raises(ValueError, match="caption_detail must be a number in"):
        replace(TINY, caption_detail=detail)


def test_a_preset_on_a_sparse_world_keeps_its_budgets_and_has_its_own_release_folder():
    from fastslow_course.manifest import release_dir

    cpu = get_preset("cpu")
    sparse = cpu.with_caption_detail(0.6)
    assert sparse.world.caption_detail == 0.6 and sparse.release == cpu.release
    assert release_dir(sparse) == release_dir(cpu) / "captions-60"


def test_reranked_hits_pick_slows_best_among_each_models_top_k():
    from fastslow_course.caption_detail import reranked_hits

    top = np.array([[3, 1, 2], [0, 2, 1]])
    cand = np.array([[1, 2, 3, 3], [0, 1, 2, 0]])  # the union, padded with its first
    scores = np.array([[0.9, 0.1, 0.5, 0.5], [0.2, 0.8, 0.7, 0.2]], dtype=np.float32)
    gt = np.array([1, 2])
    truth = np.zeros((2, 4), dtype=bool)
    truth[0, 1] = truth[1, 2] = truth[1, 0] = True
    hits = reranked_hits(top, cand, scores, gt, truth, ks=(1, 2, 3))
    assert hits[1]["labelled"].tolist() == [False, False]  # Fast's own top-1
    assert hits[1]["consistent"].tolist() == [False, True]
    assert hits[2]["labelled"].tolist() == [True, True]  # Slow prefers 1 over 3, 2 over 0
    assert hits[3]["labelled"].tolist() == [True, False]  # image 1 (0.8) beats 2 for query 1
    with pytest.raises(ValueError, match="union of the short lists"):
        reranked_hits(np.array([[3, 0]]), cand[:1], scores[:1], gt[:1], truth[:1], ks=(2,))


def test_world_statistics_count_false_negatives_in_training_batches():
    from fastslow_course.caption_detail import protocol_stats, training_false_negatives
    from fastslow_lib.data import load_world

    full = load_world(TINY, use_cache=False)
    sparse = load_world(replace(TINY, caption_detail=0.6), use_cache=False)
    fn_full = training_false_negatives(full, 32, batches=20)
    fn_sparse = training_false_negatives(sparse, 32, batches=20)
    assert fn_full["per_caption"] < 0.05 < fn_sparse["per_caption"]
    assert fn_sparse["per_batch"] == pytest.approx(fn_sparse["per_caption"] * 32, abs=0.01)
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=bool)
    assert protocol_stats(truth) == {"true_of_one_image": 33.33, "mean_true_images": 1.667,
                                     "ceiling_R@1": 66.67}


def test_teacher_mass_splits_the_target_between_own_true_and_false_images():
    from fastslow_course.caption_detail import teacher_mass
    from fastslow_lib.data import load_world

    split = load_world(replace(TINY, caption_detail=0.6), use_cache=False).train
    truth = truth_matrix(split.forms[:40], split.scenes)
    c = next(i for i in range(40) if truth[i].sum() > 1)  # a caption with a true other image
    other = next(g for g in np.flatnonzero(truth[c]) if g != split.caption_image[c])
    false = next(g for g in range(len(split)) if not truth[c, g])
    scores = np.full((len(split.captions), 3), np.nan, dtype=np.float32)
    candidates = np.zeros((len(split.captions), 3), dtype=np.int64)
    scores[c] = [0.0, 0.0, -1e4]  # own and the true other share it; the false one gets none
    candidates[c] = [split.caption_image[c], other, false]
    m = teacher_mass(scores, candidates, split, tau=1.0)
    assert m["captions"] == 1 and m["own"] == 50.0 and m["true_unlabelled"] == 50.0
    assert m["false"] == 0.0 and m["captions_with_true_unlabelled"] == 100.0


def test_where_captions_leave_things_out_negatives_are_mined_by_the_labels_alone():
    from fastslow_lib.data import load_world
    from fastslow_lib.fast.model import DualEncoder, FastConfig
    from fastslow_lib.registry import ranking_mining
    from fastslow_lib.slow.matching import mine_hard_negatives

    full = load_world(TINY, use_cache=False)
    sparse = load_world(replace(TINY, caption_detail=0.6), use_cache=False)
    assert ranking_mining(full) == {} and ranking_mining(sparse) == {"skip_true": False}
    tok = sparse.tokenizer()
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    fast = DualEncoder(FastConfig(vocab_size=len(tok), max_len=48, embed_dim=16, text_width=16,
                                  text_layers=1, text_heads=2, image_size=64)).eval()
    split = sparse.train
    by_labels = mine_hard_negatives(fast, tok, split, k=4, pool=8, skip_true=False)
    truth = np.array([[is_true(split.forms[c], split.scenes[int(g)]) for g in row]
                      for c, row in enumerate(by_labels)])
    assert (by_labels != split.caption_image[:, None]).all()  # never the labelled image
    assert truth.any()  # ... but images the caption is also true of are negatives here


def test_a_full_captions_form_reads_as_it_always_has():
    full, partial = parse_caption("a red circle"), parse_caption("a red circle", partial=True)
    assert "partial" not in repr(full) and repr(partial).endswith(", partial=True)")
    assert full.to_dict() == {"mentions": [["circle", "red", None, None, None]],
                              "relations": []}  # the cached worlds' JSON is unchanged


def test_the_claims_row_takes_the_best_regime_and_its_teachers_own_share():
    from fastslow_course.caption_detail import regime_decision, regime_gains
    from fastslow_lib.core.intervals import hits_as_bits

    rng = np.random.default_rng(0)
    n = 4000
    fast = rng.random(n) < 0.5

    def flipped(base, gain):  # flip a share of the misses to hits: a gain of about `gain` points
        out = base.copy()
        misses = np.flatnonzero(~base)
        out[misses[: int(gain / 100 * n)]] = True
        return out

    def model(hits):
        return {"labelled_bits": hits_as_bits(hits), "consistent_bits": hits_as_bits(hits)}

    def world(detail, students):
        return {"caption_detail": detail, "protocols": {"5k": {"models": {
            "fast": model(fast), **{k: model(v) for k, v in students.items()}}}}}

    control = flipped(fast, 1)
    record = {"worlds": [
        world(1.0, {"fast_distilled": flipped(fast, 10)}),  # full captions: not a regime here
        world(0.8, {"fast_distilled": flipped(fast, 6), "fast_lookalike_batches": control,
                    "fast_ranked": flipped(fast, 2)}),
        {"caption_detail": 0.6},  # no release models yet: skipped
    ]}
    gains = regime_gains(record, "5k")
    assert [(g["detail"], g["student"]) for g in gains] == [
        (1.0, "fast_distilled"), (0.8, "fast_distilled"), (0.8, "fast_ranked")]
    assert gains[2]["teacher_share"] is None  # its control is not built
    assert gains[2]["teacher_share_consistent"] is None
    assert gains[1]["teacher_share_consistent"].value == pytest.approx(5.0)
    text, decided, queries = regime_decision(record, "5k")
    assert decided == "met" and queries == n  # +6 with an interval above +3 at detail 0.8
    assert "signal (a), caption detail 0.8" in text and "+6.0" in text
    assert "minus its control) +5.0" in text
    # other seeds: each run against the Fast of its own seed and its control
    def est(v, lo, hi):
        return {"value": v, "low": lo, "high": hi, "n": n}

    def run(vs_fast, vs_control):
        return {"protocols": {"5k": {"fast_distilled": {
            "vs_fast": {"labelled": vs_fast}, "vs_release_fast": {"labelled": est(0, -1, 1)},
            "vs_control": {"labelled": vs_control}}}}}

    seeds = {"worlds": [{"caption_detail": 0.8, "release_seed": 0, "runs": {
        "0": run(est(9, 8, 10), est(9, 8, 10)),  # the release seed: caption_detail.json's
        "1": run(est(5.5, 4.0, 7.0), est(4.0, 2.5, 5.5)),
        "2": run(est(6.5, 5.0, 8.0), est(4.5, 3.0, 6.0))}}]}
    text, decided, _ = regime_decision(record, "5k", seeds=seeds)
    assert decided == "met"
    assert "at seeds 1 / 2: +5.5 [+4.0, +7.0] / +6.5 [+5.0, +8.0] minus the Fast of the " \
           "same seed, teacher's own share +4.0 [+2.5, +5.5] / +4.5 [+3.0, +6.0]" in text
    assert "+9.0" not in text  # the release seed is not counted twice
    seeds["worlds"][0]["runs"]["2"] = run(est(1.0, -0.5, 2.5), est(0.5, -1.0, 2.0))
    assert regime_decision(record, "5k", seeds=seeds)[1] == "undecided"  # a seed at zero
    seeds["worlds"][0]["runs"]["2"] = run(est(-4.0, -5.0, -3.0), est(0.5, -1.0, 2.0))
    assert regime_decision(record, "5k", seeds=seeds)[1] == "not met"  # a seed below Fast
    record["worlds"][1]["protocols"]["5k"]["models"]["fast_distilled"] = model(flipped(fast, 2))
    assert regime_decision(record, "5k")[1] == "not met"
    assert regime_decision(record, "1k") is None  # nothing measured on that protocol


def test_slow_scores_each_querys_union_of_short_lists_once_block_by_block():
    from types import SimpleNamespace

    from fastslow_course.caption_detail import slow_on_shortlists

    class FakeGallery:  # Slow's score of (text, image): a function of both, to check the lookup
        def __init__(self):
            self.pairs = 0

        def candidate_scores(self, tokenizer, texts, cand, *, max_len):
            self.pairs += cand.size
            return np.array([[10.0 * len(t) + c for c in row]
                             for t, row in zip(texts, cand, strict=True)], dtype=np.float32)

    rng = np.random.default_rng(0)
    queries = [" ".join(["w"] * int(n)) for n in rng.integers(1, 9, size=40)]
    protocol = SimpleNamespace(queries=queries)
    ids = np.arange(0, 40, 2)
    tops = [rng.integers(0, 60, size=(len(ids), k)) for k in (5, 12)]
    gallery = FakeGallery()
    cand, scores = slow_on_shortlists(gallery, None, protocol, ids, tops, max_len=8,
                                      query_block=4)
    for q, i in enumerate(ids):
        union = np.unique(np.concatenate([t[q] for t in tops]))
        assert set(cand[q]) == set(union)  # the union, padded by repeating an image of it
        np.testing.assert_array_equal(scores[q], 10.0 * len(queries[i]) + cand[q])
    assert gallery.pairs < cand.size  # blocks only as wide as their widest union
