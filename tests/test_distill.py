"""Distillation: the loss on hand-computed cases, look-alike groups, group batches, teacher scores,
and a tiny distilled training run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from shared import TINY_FAST, TINY_VISION

from fastslow_lib.config.training import FastTrainConfig
from fastslow_lib.core.metrics import ranks_of_gt
from fastslow_lib.data import RetrievalProtocol
from fastslow_lib.distill import (
    GroupBatchSampler,
    check_teacher_covers,
    distillation_extra_loss,
    group_distillation_loss,
    lookalike_groups,
    soft_cross_entropy,
    teacher_scores,
    training_captions,
)
from fastslow_lib.fast.evaluate import (
    fast_pair_scorer,
    fast_scores,
    probe_outcomes,
    student_outcomes,
)
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.training import train_fast
from fastslow_lib.slow.model import SlowConfig, SlowModel
from fastslow_lib.slow.scoring import slow_pair_scores

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = TINY_FAST


@pytest.fixture(scope="module")
def fast(tok):
    torch.manual_seed(0)
    return DualEncoder(FastConfig(vocab_size=len(tok), **FAST)).eval()


# ------------------------------------------------------------------ the loss, by hand


def test_soft_cross_entropy_hand_computed():
    # Teacher log-likelihoods (0, ln 3) at tau 1 -> p = (1/4, 3/4); student logits (0, 0) -> q
    # = (1/2, 1/2). KL = 1/4 ln(1/2) + 3/4 ln(3/2).
    teacher = torch.tensor([[0.0, math.log(3.0)]])
    student = torch.zeros(1, 2)
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert soft_cross_entropy(student, teacher, 1.0).item() == pytest.approx(expected, abs=1e-6)
    # tau 2 halves the teacher's logits: p = softmax(0, ln 3 / 2) = (1, sqrt 3) / (1 + sqrt 3).
    r = math.sqrt(3.0)
    p = (1 / (1 + r), r / (1 + r))
    expected2 = p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5)
    assert soft_cross_entropy(student, teacher, 2.0).item() == pytest.approx(expected2, abs=1e-6)


def test_soft_cross_entropy_zero_when_student_matches_and_gradient_only_to_student():
    teacher = torch.tensor([[1.0, -2.0, 0.5], [3.0, 3.0, -1.0]])
    student = (teacher / 2.0).clone().requires_grad_(True)
    loss = soft_cross_entropy(student, teacher, 2.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    student2 = torch.zeros(2, 3, requires_grad=True)
    soft_cross_entropy(student2, teacher, 1.0).backward()
    # d KL / d student = q - p per row (mean over 2 rows).
    p = F.softmax(teacher, dim=1)
    torch.testing.assert_close(student2.grad, (torch.full((2, 3), 1 / 3) - p) / 2)


def test_soft_cross_entropy_bad_input():
    with pytest.raises(ValueError, match="same"):
        soft_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)
    with pytest.raises(ValueError, match="at least 2 candidates"):
        soft_cross_entropy(torch.zeros(2, 1), torch.zeros(2, 1), 1.0)
    with pytest.raises(ValueError, match="tau"):
        soft_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)
    with pytest.raises(TypeError):
        soft_cross_entropy(np.zeros((2, 3)), torch.zeros(2, 3), 1.0)


def test_group_loss_uses_each_rows_own_group():
    torch.manual_seed(0)
    txt = F.normalize(torch.randn(6, 4), dim=1)
    img = F.normalize(torch.randn(6, 4), dim=1)
    teacher = torch.randn(6, 3)
    got = group_distillation_loss(txt, img, 10.0, teacher, 3, 2.0)
    rows = []
    for r in range(6):
        g = r // 3
        student = 10.0 * txt[r] @ img[3 * g : 3 * g + 3].T
        rows.append(soft_cross_entropy(student[None], teacher[r][None], 2.0))
    torch.testing.assert_close(got, torch.stack(rows).mean())
    with pytest.raises(ValueError, match="whole groups"):
        group_distillation_loss(txt[:5], img[:5], 10.0, teacher[:5], 3, 2.0)
    with pytest.raises(ValueError, match="teacher must be"):
        group_distillation_loss(txt, img, 10.0, teacher[:, :2], 3, 2.0)


# ------------------------------------------------------------------ groups and batches


def test_lookalike_groups_partition_and_are_deterministic(fast, world):
    groups = lookalike_groups(fast, world.train, 4)
    assert groups.shape == (len(world.train) // 4, 4)
    assert len(np.unique(groups)) == groups.size  # a partition: no image twice
    np.testing.assert_array_equal(groups, lookalike_groups(fast, world.train, 4))
    # Members are nearer to their anchor than random images are, by Fast's embeddings.
    from fastslow_lib.fast.evaluate import embed_images

    emb = embed_images(fast, world.train.images).numpy()
    within = np.mean([emb[g[0]] @ emb[g[1]] for g in groups])
    rng = np.random.default_rng(0)
    random_pairs = np.mean([emb[a] @ emb[b] for a, b in rng.integers(len(emb), size=(200, 2))])
    assert within > random_pairs
    with pytest.raises(ValueError, match="group_size"):
        lookalike_groups(fast, world.train, 1)


def test_group_batch_sampler_groups_only():
    groups = np.arange(40).reshape(10, 4)
    sampler = GroupBatchSampler(groups, 8, group_share=1.0, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5 and sampler.group_rows == 8
    for b in batches:
        assert len(b) == 8 and b[0] % 4 == 0 and b[:4] == list(range(b[0], b[0] + 4))
    assert sorted(sum(batches, [])) == list(range(40))  # one pass over the groups
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches


def test_group_batch_sampler_mixed():
    groups = np.arange(100).reshape(25, 4)[::2]  # 13 groups; images of odd groups are free
    sampler = GroupBatchSampler(groups, 16, n_images=100, group_share=0.5, seed=1)
    assert sampler.group_rows == 8 and len(sampler) == 100 // 16
    for b in sampler:
        assert len(b) == 16 and len(set(b)) == 16  # no image twice in a batch
        head = np.array(b[:8]).reshape(2, 4)
        assert all(any((h == g).all() for g in groups) for h in head)  # whole groups first
    with pytest.raises(ValueError, match="group_share"):
        GroupBatchSampler(groups, 16, group_share=0.0)
    with pytest.raises(ValueError, match="no whole group"):
        GroupBatchSampler(groups, 4, group_share=0.5)
    with pytest.raises(ValueError, match="no batch"):
        GroupBatchSampler(groups, 128, n_images=100)


def test_training_captions_are_those_the_loop_shows(world):
    from fastslow_lib.data.datasets import TrainPairs

    caps = training_captions(world.train, 2, seed=0)
    pairs = TrainPairs(world.train, seed=0)
    shown = set()
    for epoch in range(2):
        pairs.set_epoch(epoch)
        shown |= {pairs[i]["caption_index"] for i in range(len(pairs))}
    assert set(caps.tolist()) == shown
    # From start_epoch on: the epochs whose batches hold groups, the only ones needing a teacher.
    pairs.set_epoch(1)
    later = training_captions(world.train, 2, seed=0, start_epoch=1)
    assert set(later.tolist()) == {pairs[i]["caption_index"] for i in range(len(pairs))}
    assert len(later) < len(caps)
    with pytest.raises(ValueError, match="start_epoch"):
        training_captions(world.train, 2, seed=0, start_epoch=-1)


# ------------------------------------------------------------------ teacher and training


def test_teacher_scores_match_pair_scores(tok, world, fast):
    torch.manual_seed(0)
    slow = SlowModel(SlowConfig(vocab_size=len(tok), width=32, heads=2,
                                vision_kwargs=TINY_VISION)).eval()
    groups = lookalike_groups(fast, world.train, 4)
    caps = np.array([0, 1, 7, 42])
    table = teacher_scores(slow, tok, world.train, groups, caps, max_len=48)
    assert np.isnan(table[2]).all() and not np.isnan(table[caps]).any()
    group_of = {int(m): g for g, members in enumerate(groups) for m in members}
    for c in caps:
        members = groups[group_of[int(world.train.caption_image[c])]]
        want = slow_pair_scores(slow, tok, [world.train.captions[c]] * 4,
                                world.train.images[members], max_len=48)
        np.testing.assert_allclose(table[c], want, rtol=1e-4, atol=1e-3)


def test_teacher_scores_compute_the_image_side_of_the_scored_groups_only(tok, world, fast,
                                                                         monkeypatch):
    import fastslow_lib.distill.groups as groups_module

    torch.manual_seed(0)
    slow = SlowModel(SlowConfig(vocab_size=len(tok), width=32, heads=2,
                                vision_kwargs=TINY_VISION)).eval()
    groups = lookalike_groups(fast, world.train, 4)
    seen = []
    real = groups_module.image_cache
    monkeypatch.setattr(groups_module, "image_cache",
                        lambda model, images, device: seen.append(len(images)) or
                        real(model, images, device))
    caps = np.array([0, 1, 7, 42])
    groups_module.teacher_scores(slow, tok, world.train, groups, caps, max_len=48)
    group_of = {int(m): g for g, members in enumerate(groups) for m in members}
    scored = {group_of[int(world.train.caption_image[c])] for c in caps}
    assert sum(seen) == 4 * len(scored) < groups.size


def test_distilled_training_runs_and_missing_teacher_rows_are_named(tok, world, fast):
    groups = lookalike_groups(fast, world.train, 4)
    cfg = FastTrainConfig(epochs=1, batch_size=32, val_queries=20)
    teacher = np.random.default_rng(0).normal(size=(len(world.train.captions), 4))
    torch.manual_seed(0)
    student = DualEncoder(FastConfig(vocab_size=len(tok), **FAST))
    sampler = GroupBatchSampler(groups, 32, n_images=len(world.train))
    extra = distillation_extra_loss(teacher.astype(np.float32), sampler, weight=1.0, tau=1.0)
    history = train_fast(student, world, tok, cfg, extra_loss=extra, batch_sampler=sampler)
    assert history["steps"] == len(world.train) // 32 and np.isfinite(history["final_loss"])
    # Coverage is checked where the scores enter (get_teacher_scores), not in the step.
    shown = training_captions(world.train, cfg.epochs, seed=cfg.seed)
    check_teacher_covers(teacher, world.train, groups, shown)
    holes = teacher.astype(np.float32).copy()
    in_group = shown[np.isin(world.train.caption_image[shown], groups)]
    holes[in_group[3]] = np.nan
    with pytest.raises(ValueError, match=rf"no teacher scores .*\[{in_group[3]}\]"):
        check_teacher_covers(holes, world.train, groups, shown)
    holes[:] = np.nan
    holes[in_group] = 0.0  # captions no batch shows may stay empty
    check_teacher_covers(holes, world.train, groups, shown)
    with pytest.raises(ValueError, match="weight"):
        distillation_extra_loss(teacher, sampler, weight=-1.0, tau=1.0)


def test_student_outcomes_are_every_test_rank_and_the_probe(tok, world, fast):
    """What the trial scripts of notebook 03 keep per student: lists a results file can hold."""
    out = student_outcomes(fast, tok, world, max_len=48)
    test = RetrievalProtocol.from_split(world.test)
    want = ranks_of_gt(fast_scores(fast, tok, test, max_len=48), test.gt)
    assert out["test_ranks"] == want.tolist() and len(out["test_ranks"]) == len(test.queries)
    probe = probe_outcomes(fast_pair_scorer(fast, tok, max_len=48), world.probe)
    assert set(out) == {"test_ranks", *probe}
    assert all(out[k] == v.tolist() for k, v in probe.items())


def test_distill_config_validation():
    from fastslow_lib.config.training import DistillConfig

    assert DistillConfig().to_dict()["group_size"] == 4
    for bad in ({"groups": "nearest"}, {"group_size": 1}, {"group_share": 0.0},
                {"weight": -1.0}, {"tau": 0.0}, {"start_epoch": -1}):
        with pytest.raises(ValueError):
            DistillConfig(**bad)


def test_random_groups_partition():
    from fastslow_lib.distill import random_groups

    g = random_groups(10, 3, seed=0)
    assert g.shape == (3, 3) and len(np.unique(g)) == 9
    np.testing.assert_array_equal(g, random_groups(10, 3, seed=0))
    with pytest.raises(ValueError, match="cannot form"):
        random_groups(2, 3)


def test_get_teacher_scores_caches_and_keys_on_the_teacher(tok, world, fast, tmp_path):
    from fastslow_lib.core.checkpoint import save_checkpoint
    from fastslow_lib.distill import get_teacher_scores

    torch.manual_seed(0)
    slow = SlowModel(SlowConfig(vocab_size=len(tok), width=32, heads=2,
                                vision_kwargs=TINY_VISION)).eval()
    ckpt = save_checkpoint(slow, tmp_path / "slow", slow.config.to_dict())
    groups = lookalike_groups(fast, world.train, 4)
    cfg = FastTrainConfig(epochs=1, batch_size=32)
    cache = tmp_path / "teacher.safetensors"
    first, loaded = get_teacher_scores(world, tok, slow, ckpt, groups, cfg, cache)
    assert not loaded and (~np.isnan(first[:, 0])).sum() == len(world.train) - len(world.train) % 4
    again, loaded = get_teacher_scores(world, tok, slow, ckpt, groups, cfg, cache)
    assert loaded
    np.testing.assert_array_equal(first, again)
    with torch.no_grad():
        slow.forward_decoder.embed.weight.mul_(2.0)
    save_checkpoint(slow, ckpt, slow.config.to_dict())  # a retrained teacher
    with pytest.warns(UserWarning, match="different config"):
        _, loaded = get_teacher_scores(world, tok, slow, ckpt, groups, cfg, cache)
    assert not loaded


def test_the_student_is_keyed_on_its_teacher_and_on_the_fast_model_that_mined_its_groups(
        tok, world, tmp_path, one_thread):
    from fastslow_lib.config.presets import get_preset
    from fastslow_lib.core.cache import load_or_train
    from fastslow_lib.core.checkpoint import read_metadata, save_checkpoint
    from fastslow_lib.distill import distilled_recipe
    from fastslow_lib.fast.training import fast_recipe
    from fastslow_lib.slow.training import slow_recipe

    preset = get_preset("tiny")
    fast, _, _ = load_or_train(tmp_path / "fast_tiny",
                               fast_recipe(world, tok, preset.fast_model, preset.fast_train))
    slow, _, _ = load_or_train(tmp_path / "slow_tiny",
                               slow_recipe(world, tok, preset.slow_model, preset.slow_train))

    def student_of(slow):
        return load_or_train(tmp_path / "student", distilled_recipe(
            world, tok, preset.fast_model, preset.distill_demo(), preset.distill,
            fast_model=fast, slow_model=slow, fast_checkpoint=tmp_path / "fast_tiny",
            slow_checkpoint=tmp_path / "slow_tiny",
            teacher_cache=tmp_path / "teacher.safetensors"))

    student, info, loaded = student_of(slow)
    assert not loaded and info["steps"] > 0 and info["teacher_seconds"] > 0
    _, again, loaded = student_of(slow)
    assert loaded and again["loss"] == info["loss"]
    assert again["teacher_seconds"] == info["teacher_seconds"]  # kept beside the history
    meta = read_metadata(tmp_path / "student")
    assert set(meta["config"]["parents"]) == {"teacher", "groups_from"}
    with torch.no_grad():
        slow.forward_decoder.embed.weight.mul_(2.0)
    save_checkpoint(slow, tmp_path / "slow_tiny",
                    read_metadata(tmp_path / "slow_tiny")["config"])  # retrained
    with pytest.warns(UserWarning, match="parents"):
        _, _, loaded = student_of(slow)
    assert not loaded


def test_signal_a_control_trains_on_the_same_batches_without_a_teacher(tok, world, tmp_path,
                                                                         one_thread):
    from dataclasses import replace

    from fastslow_lib.config.presets import get_preset
    from fastslow_lib.core.cache import load_or_train
    from fastslow_lib.core.checkpoint import read_metadata
    from fastslow_lib.distill import distilled_recipe
    from fastslow_lib.fast.training import fast_recipe

    preset = get_preset("tiny")
    fast, _, _ = load_or_train(tmp_path / "fast_tiny",
                               fast_recipe(world, tok, preset.fast_model, preset.fast_train))
    control_cfg = replace(preset.distill, weight=0.0)
    common = dict(fast_model=fast, fast_checkpoint=tmp_path / "fast_tiny")
    with pytest.raises(ValueError, match="weight 0.*no teacher.*slow_checkpoint"):
        distilled_recipe(world, tok, preset.fast_model, preset.distill_demo(), control_cfg,
                         slow_model=None, slow_checkpoint=tmp_path / "slow", teacher_cache=None,
                         **common)
    with pytest.raises(ValueError, match="needs its teacher.*slow_model"):
        distilled_recipe(world, tok, preset.fast_model, preset.distill_demo(), preset.distill,
                         slow_model=None, slow_checkpoint=None, teacher_cache=None, **common)
    student, info, loaded = load_or_train(tmp_path / "control", distilled_recipe(
        world, tok, preset.fast_model, preset.distill_demo(), control_cfg, slow_model=None,
        slow_checkpoint=None, teacher_cache=None, **common))
    assert not loaded and info["steps"] > 0 and "teacher_seconds" not in info
    config = read_metadata(tmp_path / "control")["config"]
    assert set(config["parents"]) == {"groups_from"} and config["distill"]["weight"] == 0.0
    assert not list(tmp_path.glob("*teacher*"))  # no teacher scores were computed
