"""Fast training loop and evaluation helpers, on the tiny world (seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastslow_lib.config.training import FastTrainConfig
from fastslow_lib.core.cache import load_or_train
from fastslow_lib.core.loop import cosine_schedule
from fastslow_lib.data import RetrievalProtocol
from fastslow_lib.fast.evaluate import (
    embed_images,
    embed_texts,
    fast_pair_scorer,
    fast_scores,
    probe_accuracy,
    retrieval_report,
    twin_cosines,
)
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.training import fast_recipe, train_fast

SMALL = {"embed_dim": 32, "text_width": 32, "text_layers": 1, "text_heads": 2}


def model_for(tok) -> DualEncoder:
    torch.manual_seed(0)
    return DualEncoder(FastConfig(vocab_size=len(tok), max_len=48, **SMALL))


def test_cosine_schedule_warms_up_then_decays():
    f = cosine_schedule(total_steps=10, warmup_steps=2)
    assert f(0) == 0.5 and f(1) == 1.0
    assert f(2) == pytest.approx(1.0) and f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(2, 10))


def test_training_lowers_the_loss_and_records_history(world, tok):
    torch.set_num_threads(1)
    model = model_for(tok)
    cfg = FastTrainConfig(epochs=3, batch_size=32, lr=3e-3, val_queries=50)
    h = train_fast(model, world, tok, cfg)
    steps_per_epoch = len(world.train) // 32
    assert h["steps"] == 3 * steps_per_epoch == len(h["loss"])
    assert len(h["val_R@1"]) == 3 and h["epoch_end_step"][-1] == h["steps"]
    first = np.mean(h["loss"][:steps_per_epoch])
    last = np.mean(h["loss"][-steps_per_epoch:])
    assert last < first, (first, last)
    assert not model.training


def test_training_is_reproducible(world, tok):
    torch.set_num_threads(1)
    cfg = FastTrainConfig(epochs=1, batch_size=32, val_queries=20)
    a = train_fast(model_for(tok), world, tok, cfg)["loss"]
    b = train_fast(model_for(tok), world, tok, cfg)["loss"]
    assert a == pytest.approx(b, rel=1e-4)


def test_fast_scores_are_dot_products_of_embeddings(world, tok):
    model = model_for(tok)
    p = RetrievalProtocol.from_split(world.test)
    s = fast_scores(model, tok, p, max_len=48)
    img = embed_images(model, p.gallery, batch_size=7)
    txt = embed_texts(model, tok, p.queries, max_len=48, batch_size=11)
    assert s.shape == (len(p.queries), len(p.gallery))
    np.testing.assert_allclose(s, (txt @ img.T).numpy(), atol=1e-5)
    np.testing.assert_allclose(img.norm(dim=1).numpy(), 1.0, atol=1e-5)
    report = retrieval_report(s, p)
    assert {"R@1", "R@10", "MedR", "consistent@1", "i2t_R@1"} <= set(report)
    sub = p.restrict(p.query_subset(10))
    assert "i2t_R@1" not in retrieval_report(s[:10], sub)


def test_probe_accuracy_counts_both_directions_per_kind(world):
    probe = world.probe
    calls = []

    def scorer(texts, images):
        calls.append((texts, images))
        is_a_text = texts is probe.caption_a
        is_a_img = images is probe.images_a
        return np.full(len(texts), 1.0 if is_a_text == is_a_img else 0.0)

    acc = probe_accuracy(scorer, probe)
    assert len(calls) == 4 and acc["probe"] == 100.0
    assert {"probe_colour", "probe_position", "probe_size"} <= set(acc)
    flat = probe_accuracy(lambda texts, images: np.zeros(len(texts)), probe)
    assert flat["probe"] == 0.0  # ties count as failures
    inverted = probe_accuracy(lambda texts, images: -scorer(texts, images), probe)
    assert inverted["probe"] == 0.0 and len(probe) == 30


def test_fast_pair_scorer_matches_the_score_matrix(world, tok):
    model = model_for(tok)
    scorer = fast_pair_scorer(model, tok, max_len=48)
    texts = world.test.captions[:6]
    images = world.test.images[world.test.caption_image[:6]]
    pairs = scorer(texts, images)
    p = RetrievalProtocol.from_split(world.test)
    s = fast_scores(model, tok, p, max_len=48)
    np.testing.assert_allclose(pairs, s[np.arange(6), world.test.caption_image[:6]], atol=1e-5)


def test_twin_cosines_are_mean_cosines_of_aligned_twins(world, tok):
    model = model_for(tok)
    probe = world.probe
    cos = twin_cosines(model, tok, probe, max_len=48)
    kinds = np.array(probe.kinds)
    ta = embed_texts(model, tok, probe.caption_a, max_len=48)
    tb = embed_texts(model, tok, probe.caption_b, max_len=48)
    sel = kinds == "size"
    want = float(np.mean([float(ta[i] @ tb[i]) for i in np.flatnonzero(sel)]))
    assert cos["text_size"] == pytest.approx(want, abs=1e-5)
    ia = embed_images(model, probe.images_a)
    want_random = float(np.mean([float(ia[i] @ ia[i + 1]) for i in range(len(probe) - 1)]))
    assert cos["image_random"] == pytest.approx(want_random, abs=1e-5)
    keys = {f"{side}_{k}" for side in ("text", "image") for k in ("colour", "position", "size")}
    assert keys <= set(cos)
    assert all(-1.0 <= v <= 1.0 + 1e-6 for v in cos.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"epochs": 1.5}, "epochs must be an int, got float"),
    ],
)
def test_bad_train_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FastTrainConfig(**kwargs)


def test_batch_larger_than_the_training_split_is_an_error(world, tok):
    cfg = FastTrainConfig(epochs=1, batch_size=len(world.train) + 1)
    with pytest.raises(ValueError, match="no training step"):
        train_fast(model_for(tok), world, tok, cfg)


def test_a_fast_model_trains_once_then_loads(world, tok, tmp_path):
    from fastslow_lib.config.presets import get_preset

    torch.set_num_threads(1)
    preset = get_preset("tiny")
    ck = tmp_path / "fast"
    m1, h1, loaded1 = load_or_train(ck, fast_recipe(world, tok, preset.fast_model,
                                                    preset.fast_train))
    m2, h2, loaded2 = load_or_train(ck, fast_recipe(world, tok, preset.fast_model,
                                                    preset.fast_train))
    assert (loaded1, loaded2) == (False, True)
    assert h2["val_R@1"] == h1["val_R@1"] and h2["steps"] == h1["steps"]
    p = RetrievalProtocol.from_split(world.test)
    np.testing.assert_allclose(fast_scores(m1, tok, p, max_len=48),
                               fast_scores(m2, tok, p, max_len=48), atol=1e-5)
