"""Video Fast and Slow (notebook 05): shapes, order (in)sensitivity, clear errors, and the image
pipeline (training, scoring, re-ranking, distillation's teacher) running on clips unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.cache import load_or_train
from fastslow_lib.data.clips import FRAMES, load_clip_world
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.fast.index import VectorIndex
from fastslow_lib.fast.model import FastConfig
from fastslow_lib.rerank import SlowGallery, rerank
from fastslow_lib.slow.model import SlowConfig
from fastslow_lib.slow.scoring import slow_pair_scores, slow_scores
from fastslow_lib.video.model import (
    SpaceTimePyramid,
    VideoDualEncoder,
    VideoSlowModel,
    position_code_1d,
)
from fastslow_lib.video.training import video_fast_recipe, video_slow_recipe

SETTINGS = get_preset("tiny").video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return load_clip_world(get_preset("tiny").clips, tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def ctok(clips):
    return clips.tokenizer()


def fast(tok, temporal):
    torch.manual_seed(0)
    return VideoDualEncoder(FastConfig(vocab_size=len(tok), **SETTINGS.fast_model), FRAMES,
                            temporal).eval()


def slow(tok):
    torch.manual_seed(0)
    return VideoSlowModel(SlowConfig(vocab_size=len(tok), **SETTINGS.slow_model), FRAMES).eval()


def test_mean_pooling_is_order_blind_and_the_transformer_is_not(clips, ctok, one_thread):
    x = images_to_tensor(clips.test.images[:4])
    backwards = x.flip(1)
    with torch.no_grad():
        mean = fast(ctok, "mean")
        torch.testing.assert_close(mean.encode_image(x), mean.encode_image(backwards),
                                   rtol=1e-5, atol=1e-6)
        mixer = fast(ctok, "transformer")
        assert (mixer.encode_image(x) - mixer.encode_image(backwards)).abs().max() > 1e-4
        assert mean.encode_image(x).shape == (4, SETTINGS.fast_model.get("embed_dim", 32))


def test_video_models_reject_images_and_wrong_frame_counts(clips, ctok):
    model = fast(ctok, "mean")
    with pytest.raises(ValueError, match="batch of images"):
        model.encode_image(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match=f"{FRAMES} frames"):
        model.encode_image(torch.rand(2, FRAMES + 1, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown temporal"):
        VideoDualEncoder(FastConfig(vocab_size=len(ctok), **SETTINGS.fast_model), FRAMES, "lstm")
    with pytest.raises(ValueError, match="clips must have shape"):
        slow_scores(slow(ctok), ctok, ["a red circle appears, then moves up"],
                    clips.test.images[0], max_len=48)


def test_space_time_tokens_carry_when_and_where(ctok):
    model = slow(ctok)
    assert isinstance(model.vision, SpaceTimePyramid)
    tokens = model.vision(torch.rand(2, FRAMES, 3, 32, 32))
    assert {s: tuple(t.shape) for s, t in tokens.items()} == {
        32: (2, FRAMES * 1, 32), 16: (2, FRAMES * 4, 32), 8: (2, FRAMES * 16, 32)}
    code = position_code_1d(FRAMES, 32)
    assert code.shape == (FRAMES, 32)
    assert torch.cdist(code, code).fill_diagonal_(9).min() > 0.1  # every frame distinct


def test_slow_scores_on_clips_see_order(clips, ctok, one_thread):
    model = slow(ctok)
    texts = clips.test.captions[:3]
    grid = slow_scores(model, ctok, texts, clips.test.images[:4], max_len=48)
    assert grid.shape == (3, 4) and np.isfinite(grid).all()
    pairs = slow_pair_scores(model, ctok, texts, clips.test.images[:3], max_len=48)
    np.testing.assert_allclose(pairs, np.diag(grid[:, :3]), rtol=1e-4, atol=1e-3)
    backwards = np.ascontiguousarray(clips.test.images[:3, ::-1])
    flipped = slow_pair_scores(model, ctok, texts, backwards, max_len=48)
    assert np.abs(flipped - pairs).max() > 1e-4


def test_training_rerank_and_checkpoints_reuse_the_image_pipeline(clips, ctok, tmp_path,
                                                                   one_thread):
    f, hist, loaded = load_or_train(tmp_path / "vf", video_fast_recipe(
        clips, ctok, SETTINGS, temporal="transformer"))
    assert not loaded and len(hist["loss"]) == hist["steps"] > 0
    assert np.isfinite(hist["loss"]).all()
    again, _, loaded = load_or_train(tmp_path / "vf", video_fast_recipe(
        clips, ctok, SETTINGS, temporal="transformer"))
    assert loaded and again.temporal == "transformer"
    for a, b in zip(f.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    s, shist, loaded = load_or_train(tmp_path / "vs",
                                     video_slow_recipe(clips, ctok, SETTINGS))
    assert not loaded and np.isfinite(shist["loss"]).all()

    gallery_clips = clips.test.images
    index = VectorIndex(f.embed_dim, "flat")
    from fastslow_lib.fast.evaluate import embed_images

    index.add(embed_images(f, gallery_clips).numpy())
    gallery = SlowGallery(s, gallery_clips)
    queries = clips.test.captions[:5]
    out = rerank(queries, fast_model=f, tokenizer=ctok, index=index, gallery=gallery, k=4)
    assert out.ids.shape == (5, 4)
    full = slow_scores(s, ctok, queries, gallery_clips, max_len=48)
    expected = np.take_along_axis(full, out.fast_ids, axis=1)
    np.testing.assert_allclose(np.sort(out.slow_scores, 1), np.sort(expected, 1),
                               rtol=1e-4, atol=1e-3)


def test_transfer_weights_copies_what_fits(ctok):
    from fastslow_lib.video.training import transfer_weights

    source, target = slow(ctok), slow(ctok)
    torch.nn.init.constant_(target.vision.lateral["8"].weight, 0.0)
    copied, skipped = transfer_weights(source.vision, target.vision)
    assert "lateral.8.weight" in copied and not skipped
    torch.testing.assert_close(target.vision.lateral["8"].weight, source.vision.lateral["8"].weight)
    image_fast = fast(ctok, "mean")
    copied, skipped = transfer_weights(image_fast, fast(ctok, "transformer"))
    assert "vision.proj.weight" in copied and "logit_scale" in copied
    with pytest.raises(ValueError, match="no tensor"):
        transfer_weights(torch.nn.Linear(3, 3), image_fast.vision)


def test_distillation_runs_on_clips_unchanged(clips, ctok, one_thread):
    from dataclasses import replace

    from fastslow_lib.distill import (
        GroupBatchSampler,
        distillation_extra_loss,
        lookalike_groups,
        teacher_scores,
        training_captions,
    )
    from fastslow_lib.fast.training import train_fast

    student, teacher = fast(ctok, "transformer"), slow(ctok)
    cfg = replace(SETTINGS.fast_train, epochs=1)
    groups = lookalike_groups(student, clips.train, 4)
    assert groups.shape == (len(clips.train) // 4, 4)
    caps = training_captions(clips.train, cfg.epochs, seed=cfg.seed)
    table = teacher_scores(teacher, ctok, clips.train, groups, caps, max_len=48)
    assert np.isfinite(table[caps]).all() and np.isnan(np.delete(table, caps, axis=0)).all()
    # Row c holds Slow's score of caption c against every clip of its clip's group.
    c = int(caps[0])
    owner = int(clips.train.caption_image[c])
    members = groups[np.flatnonzero((groups == owner).any(1))[0]]
    want = slow_scores(teacher, ctok, [clips.train.captions[c]], clips.train.images[members],
                       max_len=48)[0]
    np.testing.assert_allclose(table[c], want, rtol=1e-4, atol=1e-3)
    sampler = GroupBatchSampler(groups, cfg.batch_size, n_images=len(clips.train))
    hist = train_fast(student, clips, ctok, cfg, batch_sampler=sampler,
                      extra_loss=distillation_extra_loss(table, sampler, weight=1.0, tau=2.0))
    assert np.isfinite(hist["loss"]).all() and hist["steps"] == len(clips.train) // cfg.batch_size


def test_video_checkpoints_are_keyed_on_the_image_checkpoint_they_start_from(clips, ctok,
                                                                             tmp_path, one_thread):
    from fastslow_lib.core.checkpoint import save_checkpoint
    from fastslow_lib.fast.model import DualEncoder

    torch.manual_seed(0)
    image = DualEncoder(FastConfig(vocab_size=len(ctok), **SETTINGS.fast_model))
    parent = save_checkpoint(image, tmp_path / "fast_image",
                             {"model": image.config.to_dict()})
    path = tmp_path / "vf"
    _, _, loaded = load_or_train(path, video_fast_recipe(clips, ctok, SETTINGS, init_from=parent))
    assert not loaded
    _, _, loaded = load_or_train(path, video_fast_recipe(clips, ctok, SETTINGS, init_from=parent))
    assert loaded
    with torch.no_grad():
        image.vision.backbone.conv1[0].weight.mul_(0.5)
    save_checkpoint(image, parent, {"model": image.config.to_dict()})  # the image model retrained
    with pytest.warns(UserWarning, match="parents"):
        _, _, loaded = load_or_train(path, video_fast_recipe(clips, ctok, SETTINGS,
                                                             init_from=parent))
    assert not loaded
    with pytest.raises(FileNotFoundError, match="parent checkpoint"):
        load_or_train(path, video_fast_recipe(clips, ctok, SETTINGS,
                                              init_from=tmp_path / "missing"))
