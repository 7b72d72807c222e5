"""PyTorch datasets of the world: training pairs and the retrieval protocol."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fastslow_lib.config.presets import get_preset
from fastslow_lib.data import (
    RetrievalProtocol,
    TrainPairs,
    WorldConfig,
    generate_distractors,
    images_to_tensor,
    load_world,
    make_collate,
)
from fastslow_lib.data.tokenizer import encode

TINY = get_preset("tiny").world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return load_world(TINY, tmp_path_factory.mktemp("world"))


def test_images_to_tensor_shape_range_and_errors():
    x = images_to_tensor(np.full((2, 8, 8, 3), 255, dtype=np.uint8))
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32 and float(x.max()) == 1.0
    with pytest.raises(TypeError, match="uint8"):
        images_to_tensor(np.zeros((2, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*got \(2, 8, 8, 4\)"):
        images_to_tensor(np.zeros((2, 8, 8, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(N, T, H, W, 3\) for clips"):
        images_to_tensor(np.zeros((2, 2, 2, 8, 8, 3), dtype=np.uint8))
    clips = images_to_tensor(np.zeros((2, 5, 8, 8, 3), dtype=np.uint8))
    assert clips.shape == (2, 5, 3, 8, 8)


def test_train_pairs_one_caption_per_image_and_epochs_differ(world):
    ds = TrainPairs(world.train, seed=0)
    assert len(ds) == len(world.train)
    item = ds[3]
    assert item["image"].shape == (3, 64, 64)
    assert world.train.caption_image[item["caption_index"]] == 3
    assert world.train.captions[item["caption_index"]] == item["caption"]
    first = [ds[i]["caption_index"] for i in range(len(ds))]
    ds.set_epoch(1)
    second = [ds[i]["caption_index"] for i in range(len(ds))]
    assert first != second
    ds.set_epoch(0)
    assert [ds[i]["caption_index"] for i in range(len(ds))] == first


def test_collate_tokenizes_and_batches_have_distinct_images(world):
    tok = world.tokenizer()
    ds = TrainPairs(world.train)
    loader = DataLoader(ds, batch_size=16, shuffle=True,
                        collate_fn=make_collate(functools.partial(encode, tok, max_len=64)))
    batch = next(iter(loader))
    assert batch["image"].shape == (16, 3, 64, 64)
    assert batch["input_ids"].shape[0] == 16 and batch["attention_mask"].shape[0] == 16
    assert len(set(batch["image_index"].tolist())) == 16


def test_retrieval_protocol_from_split(world):
    p = RetrievalProtocol.from_split(world.test)
    assert p.gallery.shape[0] == len(world.test)
    assert len(p.queries) == 5 * len(world.test) == len(p.gt)
    assert p.truth.shape == (len(p.queries), len(world.test))
    assert p.truth[np.arange(len(p.gt)), p.gt].all()
    assert p.gallery_tensor().shape == (len(world.test), 3, 64, 64)


def test_query_subset_is_stated_and_repeatable(world):
    p = RetrievalProtocol.from_split(world.test)
    a, b = p.query_subset(50, seed=0), p.query_subset(50, seed=0)
    assert np.array_equal(a, b) and len(set(a.tolist())) == 50
    assert not np.array_equal(a, p.query_subset(50, seed=1))
    sub = p.restrict(a)
    assert sub.queries == [p.queries[i] for i in a] and np.array_equal(sub.gt, p.gt[a])
    with pytest.raises(ValueError, match="n must be between 1 and 300"):
        p.query_subset(301)
    with pytest.raises(ValueError, match="out of range"):
        p.restrict(np.array([0, 300]))


def test_sub_gallery_keeps_queries_with_their_images(tmp_cache):
    world = load_world(TINY, tmp_cache)
    full = RetrievalProtocol.from_split(world.test)
    sub = full.sub_gallery(20, 30, seed=1)
    assert sub.gallery.shape[0] == 20 and len(sub.queries) == 30
    assert sub.truth.shape == (30, 20) and sub.truth[np.arange(30), sub.gt].all()
    for q, text in enumerate(sub.queries):
        i = full.queries.index(text)
        np.testing.assert_array_equal(sub.gallery[sub.gt[q]], full.gallery[full.gt[i]])
    again = full.sub_gallery(20, 30, seed=1)
    assert again.queries == sub.queries
    with pytest.raises(ValueError, match="n_queries"):
        full.sub_gallery(2, 50)
    with pytest.raises(ValueError, match="n_images"):
        full.sub_gallery(0, 5)


def test_distractors_are_seeded_and_a_larger_n_extends_a_smaller_one():
    cfg = WorldConfig(n_train=10, n_val=10, n_test=10, n_small=10, probe_pairs_per_kind=2)
    a, scenes = generate_distractors(cfg, 5)
    b, _ = generate_distractors(cfg, 8)
    assert a.shape == (5, 64, 64, 3) and a.dtype == np.uint8 and len(scenes) == 5
    np.testing.assert_array_equal(a, b[:5])
    np.testing.assert_array_equal(a, generate_distractors(cfg, 5)[0])
    with pytest.raises(ValueError, match="n must be at least 1"):
        generate_distractors(cfg, 0)
