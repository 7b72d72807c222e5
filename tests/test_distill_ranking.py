"""Distillation signal (b): hard-negative candidates, the listwise term, its extra loss and the
student's recipe (keys, control, bad input); the upper bound's binding twins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from shared import TINY_FAST

from fastslow_lib.config.training import FastTrainConfig, RankingDistillConfig
from fastslow_lib.core.cache import load_or_train
from fastslow_lib.data.captions import is_true
from fastslow_lib.data.world import PROBE_KINDS, binding_twins
from fastslow_lib.distill import (
    candidate_distillation_loss,
    ranking_candidates,
    ranking_extra_loss,
    ranking_recipe,
    soft_cross_entropy,
)
from fastslow_lib.fast.model import DualEncoder, FastConfig

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = TINY_FAST


@pytest.fixture(scope="module")
def fast(tok):
    torch.manual_seed(0)
    return DualEncoder(FastConfig(vocab_size=len(tok), **FAST)).eval()


def test_candidates_are_the_own_image_then_false_hard_negatives(fast, tok, world):
    split = world.train
    cand = ranking_candidates(fast, tok, split, negatives=2, max_len=48, pool=8)
    assert cand.shape == (len(split.captions), 3) and cand.dtype == np.int64
    np.testing.assert_array_equal(cand[:, 0], split.caption_image)
    for c in range(0, len(split.captions), 7):
        for g in cand[c, 1:]:
            assert g != split.caption_image[c] and not is_true(split.forms[c], split.scenes[g])


def test_the_listwise_term_by_hand():
    txt = F.normalize(torch.randn(3, 4), dim=1)
    cand = F.normalize(torch.randn(3, 2, 4), dim=2)
    teacher = torch.tensor([[0.0, -5.0], [1.0, 1.0], [-2.0, 0.0]])
    logits = 10.0 * torch.einsum("nd,nmd->nm", txt, cand)
    expected = soft_cross_entropy(logits, teacher, 2.0)
    torch.testing.assert_close(candidate_distillation_loss(txt, cand, 10.0, teacher, 2.0), expected)
    hard = candidate_distillation_loss(txt, cand, 10.0, None, 2.0)
    torch.testing.assert_close(hard, F.cross_entropy(logits, torch.zeros(3, dtype=torch.long)))
    with pytest.raises(ValueError, match="candidate_emb must be"):
        candidate_distillation_loss(txt, cand[:2], 10.0, teacher, 2.0)


def test_the_extra_loss_embeds_only_the_negatives_and_the_scale_gets_no_gradient(fast, world):
    split = world.train
    n = len(split.captions)
    cand = np.stack([split.caption_image, (split.caption_image + 1) % len(split)], axis=1)
    teacher = np.zeros(cand.shape, dtype=np.float32)
    cfg = RankingDistillConfig(negatives=1, rows=4)
    extra = ranking_extra_loss(split, cand, teacher, cfg)
    model = DualEncoder(fast.config).train()
    caption = np.arange(6)
    from fastslow_lib.data.datasets import images_to_tensor
    img = model.encode_image(images_to_tensor(split.images[split.caption_image[caption]]))
    txt = F.normalize(torch.randn(6, img.shape[1]), dim=1)
    scale = model.scale()
    loss = extra(model, {"caption_index": caption}, img, txt, scale)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert model.logit_scale.grad is None or model.logit_scale.grad.abs().item() == 0
    with pytest.raises(ValueError, match="candidates must be"):
        ranking_extra_loss(split, cand[:, :1], teacher, cfg)
    with pytest.raises(ValueError, match="must match candidates"):
        ranking_extra_loss(split, cand, teacher[: n - 1], cfg)


def test_the_student_is_keyed_on_its_candidates_and_teacher(fast, tok, world, tmp_path):
    split = world.train
    cand = ranking_candidates(fast, tok, split, negatives=1, max_len=48, pool=4)
    teacher = np.zeros(cand.shape, dtype=np.float32)
    teacher[:, 0] = 3.0
    cfg = FastTrainConfig(epochs=1, batch_size=16, val_queries=20)
    rcfg = RankingDistillConfig(negatives=1, rows=4)
    parent = tmp_path / "miner"
    fast.save_pretrained(parent)
    kw = {"parents": {"miner": parent}}
    model, history, loaded = load_or_train(
        tmp_path / "s", ranking_recipe(world, tok, FAST, cfg, rcfg, cand, teacher, **kw))
    assert not loaded and history["steps"] > 0 and np.isfinite(history["final_loss"])
    _, _, loaded = load_or_train(
        tmp_path / "s", ranking_recipe(world, tok, FAST, cfg, rcfg, cand, teacher, **kw))
    assert loaded
    with pytest.raises(ValueError, match="trained from"):
        load_or_train(tmp_path / "s", ranking_recipe(world, tok, FAST, cfg, rcfg, cand,
                                                     teacher + 1, **kw), may_train=False)
    with pytest.raises(ValueError, match="cfg.teacher is True"):
        ranking_recipe(world, tok, FAST, cfg, rcfg, cand, None, **kw)


def test_binding_twins_are_false_one_swap_negatives_and_deterministic(world):
    split = world.train
    images, twin_of, kinds, scenes = binding_twins(split, seed=0)
    assert images.shape[1:] == split.images.shape[1:] and images.dtype == np.uint8
    assert len(images) == len(kinds) == len(scenes) and set(kinds) <= set(PROBE_KINDS)
    assert twin_of.shape == (len(split.captions),) and twin_of.min() >= -1
    assert (twin_of >= 0).mean() > 0.8   # nearly every caption has a twin it is false of
    for c in np.flatnonzero(twin_of >= 0)[::11]:
        own, twin = split.scenes[split.caption_image[c]], scenes[twin_of[c]]
        assert is_true(split.forms[c], own) and not is_true(split.forms[c], twin)
        assert twin != own and len(twin.objects) == len(own.objects)
    again = binding_twins(split, seed=0)
    np.testing.assert_array_equal(again[0], images)
    np.testing.assert_array_equal(again[1], twin_of)
    assert not np.array_equal(binding_twins(split, seed=1)[1], twin_of)


def test_the_extra_loss_takes_negatives_from_given_images_and_skips_captions_without(
        fast, world):
    split = world.train
    n = len(split.captions)
    images = split.images[:3][::-1].copy()
    twin = np.full(n, -1)
    twin[[1, 3, 4]] = [0, 1, 2]
    cand = np.stack([split.caption_image, twin], axis=1)
    cfg = RankingDistillConfig(negatives=1, rows=2, teacher=False, weight=1.0)
    extra = ranking_extra_loss(split, cand, None, cfg, images=images)
    model = DualEncoder(fast.config).eval()
    caption = np.arange(6)
    from fastslow_lib.data.datasets import images_to_tensor
    with torch.no_grad():
        img = model.encode_image(images_to_tensor(split.images[split.caption_image[caption]]))
        txt = F.normalize(torch.randn(6, img.shape[1]), dim=1)
        loss = extra(model, {"caption_index": caption}, img, txt, 10.0)
        # by hand: captions 1 and 3 (the first two with a twin) against images[0] and images[1]
        neg = model.encode_image(images_to_tensor(images[[0, 1]]))
        cands = torch.stack([img[[1, 3]], neg], dim=1)
        expected = candidate_distillation_loss(txt[[1, 3]], cands, 10.0, None, 1.0)
        torch.testing.assert_close(loss, expected)
        none = extra(model, {"caption_index": np.array([0, 2, 5])}, img[:3], txt[:3], 10.0)
    assert float(none) == 0.0
    with pytest.raises(ValueError, match="-1 only with images"):
        ranking_extra_loss(split, cand, None, cfg)
    with pytest.raises(ValueError, match="index the 3"):
        ranking_extra_loss(split, np.stack([split.caption_image, twin + 5], axis=1), None, cfg,
                           images=images)


@pytest.mark.parametrize("field, value", [("negatives", 0), ("rows", 0), ("tau", 0.0),
                                          ("weight", -1.0), ("teacher", 1)])
def test_bad_ranking_settings_are_clear_errors(field, value):
    with pytest.raises(ValueError, match=field):
        RankingDistillConfig(**{field: value})
