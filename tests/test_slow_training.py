"""Slow training loop, ITM (hard negatives, matching model), grounding, scoring options and
bad input, on the tiny world (seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shared import TINY_VISION

from fastslow_lib.core.cache import load_or_train
from fastslow_lib.core.checkpoint import checkpoint_exists, read_metadata
from fastslow_lib.data.caption_parser import tokenize_caption
from fastslow_lib.data.captions import is_true
from fastslow_lib.data.datasets import images_to_tensor
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.slow.grounding import upsample_map, word_heatmaps
from fastslow_lib.slow.matching import (
    HARD_NEGATIVES,
    MATCHING_FROM,
    RANDOM_NEGATIVES,
    itm_learned,
    itm_step,
    matching_recipe,
    mine_hard_negatives,
    start_from_captioner,
)
from fastslow_lib.slow.model import MatchingModel, SlowConfig, SlowModel
from fastslow_lib.slow.scoring import slow_pair_scores, slow_scores
from fastslow_lib.slow.training import (
    SlowTrainConfig,
    shuffled_batches,
    slow_batch,
    slow_recipe,
    train_slow,
)

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = {"width": 32, "heads": 2, "vision_kwargs": TINY_VISION}


def slow(tok, cls=SlowModel, **over) -> torch.nn.Module:
    torch.manual_seed(0)
    values = dict(vocab_size=len(tok), **SMALL)
    values.update(over)
    return cls(SlowConfig(**values))


# ------------------------------------------------------------------ batches, length chunks


def test_shuffled_batches_cover_each_index_once():
    batches = shuffled_batches(250, 100, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert len(batches) == 2 and len(np.unique(flat)) == 200
    assert not np.array_equal(flat, np.sort(flat))


def test_length_chunks_give_the_same_loss_and_gradients(world, tok):
    model = slow(tok)
    caps = list(world.train.captions[:12])
    b = slow_batch(tok, caps, world.train.images[world.train.caption_image[:12]], 48)
    model.eval()  # BatchNorm in eval mode: the comparison is about the decoders only
    out = {}
    for chunks in (1, 3, 12):
        model.zero_grad()
        loss = model(b["image"], b["forward"], b["backward"], length_chunks=chunks)
        loss["loss"].backward()
        out[chunks] = (loss, model.forward_decoder.embed.weight.grad.clone())
    for chunks in (3, 12):
        for key in ("forward", "backward", "loss"):
            torch.testing.assert_close(out[chunks][0][key], out[1][0][key], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out[chunks][1], out[1][1], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="length_chunks"):
        model(b["image"], b["forward"], b["backward"], length_chunks=0)


def test_slow_batch_trims_padding_in_both_directions(world, tok):
    caps = ["a red circle", "a big blue square on the left"]
    b = slow_batch(tok, caps, world.train.images[:2], 48)
    assert b["image"].shape == (2, 3, 64, 64)
    assert b["forward"]["input_ids"].shape == b["backward"]["input_ids"].shape
    assert b["forward"]["attention_mask"][:, -1].any()  # no column is padding only


# ------------------------------------------------------------------ training


def test_train_slow_lowers_the_loss(world, tok):
    model = slow(tok)
    h = train_slow(model, world, tok, SlowTrainConfig(epochs=3, batch_size=32, lr=3e-3))
    per_epoch = len(world.train) // 32
    assert h["steps"] == 3 * per_epoch == len(h["loss"]) and len(h["epoch_loss"]) == 3
    assert h["epoch_loss"][-1] < h["epoch_loss"][0] - 0.5, h["epoch_loss"]
    assert not model.training


def test_a_slow_model_trains_once_then_loads(world, tok, tmp_path):
    cfg = SlowTrainConfig(epochs=1, batch_size=32)
    path = tmp_path / "slow"
    m1, h1, loaded1 = load_or_train(path, slow_recipe(world, tok, SMALL, cfg))
    assert not loaded1 and checkpoint_exists(path)
    m2, h2, loaded2 = load_or_train(path, slow_recipe(world, tok, SMALL, cfg))
    assert loaded2 and h2["loss"] == h1["loss"]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs"):
        SlowTrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        SlowTrainConfig(lr=0.0)
    with pytest.raises(ValueError, match="length_chunks"):
        SlowTrainConfig(length_chunks=0)


# ------------------------------------------------------------------ ITM


@pytest.fixture(scope="module")
def fast(tok):
    torch.manual_seed(0)
    return DualEncoder(FastConfig(vocab_size=len(tok), max_len=48, embed_dim=32, text_width=32,
                                  text_layers=1, text_heads=2)).eval()


def test_hard_negatives_are_never_the_own_image_nor_true(world, tok, fast):
    split = world.train
    neg = mine_hard_negatives(fast, tok, split, k=4, pool=16)
    assert neg.shape == (len(split.captions), 4)
    assert not (neg == split.caption_image[:, None]).any()
    for c in range(0, len(split.captions), 37):
        for g in neg[c]:
            assert not is_true(split.forms[c], split.scenes[int(g)])
    with pytest.raises(ValueError, match="pool"):
        mine_hard_negatives(fast, tok, split, k=8, pool=4)


def test_itm_learns_to_tell_matches_from_hard_negatives(world, tok, fast, tmp_path):
    neg = mine_hard_negatives(fast, tok, world.train, k=4, pool=16)
    cfg = SlowTrainConfig(epochs=6, batch_size=32, lr=3e-3)
    model, h, loaded = load_or_train(tmp_path / "itm",
                                     matching_recipe(world, tok, SMALL, cfg, neg))
    assert isinstance(model, MatchingModel) and not loaded
    per_epoch = len(world.train) // cfg.batch_size
    matching_from = int(MATCHING_FROM * cfg.epochs * per_epoch)
    assert matching_from > 0 and len(h["matching_loss"]) == h["steps"] - matching_from
    chance = np.log(1 + HARD_NEGATIVES + RANDOM_NEGATIVES)
    assert h["matching_loss"][0] == pytest.approx(chance, abs=0.3)  # starts near guessing
    assert itm_learned(h["final_matching_loss"]), (h["final_matching_loss"], chance)
    # The matching part itself leaves guessing on training captions against hard negatives.
    caps = np.arange(0, 120, 5)
    batch = slow_batch(tok, [world.train.captions[c] for c in caps],
                       world.train.images[world.train.caption_image[caps]], 48)
    with torch.no_grad():
        negatives = images_to_tensor(world.train.images[neg[caps, :3].ravel()])
        out = model(batch["image"], batch["forward"], negatives, listwise=True)
    assert float(out["matching"]) < 0.9 * chance, float(out["matching"])
    with pytest.raises(ValueError, match="one row per training caption"):
        matching_recipe(world, tok, SMALL, cfg, neg[:5])


def test_itm_learned_compares_with_guessing_among_the_candidates():
    assert not itm_learned(np.log(4) - 0.01)          # guessing among own + 3 negatives
    assert itm_learned(0.8 * np.log(4))
    assert not itm_learned(0.6929, negatives=1)       # the binary loss's ln 2
    assert itm_learned(0.5, negatives=1)


def test_listwise_matching_is_a_softmax_over_own_and_negatives(world, tok):
    model = slow(tok, MatchingModel, bidirectional=False).eval()
    n, k = 4, 3
    batch = slow_batch(tok, world.train.captions[:n], world.train.images[:n], 48)
    neg_idx = np.arange(n, n + n * k)
    negatives = images_to_tensor(world.train.images[neg_idx])
    with torch.no_grad():
        out = model(batch["image"], batch["forward"], negatives, listwise=True)
        ids, mask = batch["forward"]["input_ids"], batch["forward"]["attention_mask"]
        own = model.logits(ids, mask, model.vision(batch["image"]))
        other = model.logits(ids.repeat_interleave(k, 0), mask.repeat_interleave(k, 0),
                             model.vision(negatives)).view(n, k)
    table = torch.cat([own[:, None], other], dim=1)
    expected = torch.nn.functional.cross_entropy(table, torch.zeros(n, dtype=torch.long))
    torch.testing.assert_close(out["matching"], expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        none = model(batch["image"], batch["forward"], None, listwise=True, caption_weight=1.0)
    assert float(none["matching"]) == 0.0 and torch.isfinite(none["caption"])
    with pytest.raises(ValueError, match="k per caption"):
        model(batch["image"], batch["forward"], negatives[:5], listwise=True)
    with pytest.raises(ValueError, match="one negative per caption"):
        model(batch["image"], batch["forward"], negatives)


def test_matching_model_starts_from_a_captioner(world, tok, fast, tmp_path):
    captioner = slow(tok, bidirectional=False)
    captioner.save_pretrained(tmp_path / "captioner")
    model = start_from_captioner(slow(tok, MatchingModel, bidirectional=False), captioner)
    for a, b in ((model.vision, captioner.vision), (model.trunk, captioner.forward_decoder)):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            torch.testing.assert_close(x, y, msg=name)
    with pytest.raises(ValueError, match="same shape"):
        start_from_captioner(slow(tok, MatchingModel, width=16, heads=2), captioner)
    neg = mine_hard_negatives(fast, tok, world.train, k=4, pool=16)
    cfg = SlowTrainConfig(epochs=1, batch_size=32)
    _, h, _ = load_or_train(tmp_path / "itm", matching_recipe(
        world, tok, SMALL, cfg, neg, init_from=tmp_path / "captioner",
        negatives_key={"by": "test"}))
    assert len(h["matching_loss"]) == h["steps"]  # a warm trunk matches from the first step
    key = read_metadata(tmp_path / "itm")["config"]
    assert key["negatives"] == {"by": "test"} and set(key["parents"]) == {"captioner"}
    assert key["itm"]["matching_from_steps"] == 0


def test_matching_loss_adds_the_captioning_loss_of_the_matches(world, tok):
    model = slow(tok, MatchingModel).eval()
    batch = slow_batch(tok, world.train.captions[:30:5], world.train.images[:6], 48)
    neg = images_to_tensor(world.train.images[6:12])
    plain = model(batch["image"], batch["forward"], neg)  # the binary form
    both = model(batch["image"], batch["forward"], neg, caption_weight=0.5)
    torch.testing.assert_close(plain["loss"], plain["matching"])
    ids, mask = batch["forward"]["input_ids"], batch["forward"]["attention_mask"]
    logits = model.trunk(ids[:, :-1], model.vision(batch["image"]))  # the usual captioner call
    target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    caption = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                target.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(both["caption"], caption)
    torch.testing.assert_close(both["loss"], plain["matching"] + 0.5 * caption)
    with pytest.raises(ValueError, match="caption_weight"):
        model(batch["image"], batch["forward"], neg, caption_weight=-1.0)


def test_itm_step_adds_hard_and_random_negatives_per_caption(world, tok):
    neg = np.tile(np.arange(4), (len(world.train.captions), 1))
    model = slow(tok, MatchingModel)
    batch = slow_batch(tok, world.train.captions[:6], world.train.images[:6], 48)
    batch["caption_index"] = np.arange(6)
    seen = []
    forward = model.forward
    model.forward = lambda *a, **kw: (seen.append(a[2]), forward(*a, **kw))[1]
    step = itm_step(neg, world.train, hard=2, random=1, matching_from=1)
    first = step(model, batch)            # captioning only: no negatives
    loss = step(model, batch)
    assert seen[0] is None and seen[1].shape[0] == 6 * 3
    assert loss.ndim == 0 and torch.isfinite(loss) and torch.isfinite(first)
    assert len(step.matching_losses) == 1 and step.matching_losses[0].ndim == 0


def test_matching_scores_batched_equal_per_pair(world, tok):
    model = slow(tok, MatchingModel).eval()
    texts, imgs = world.test.captions[:5], world.test.images[:4]
    matrix = slow_scores(model, tok, texts, imgs, max_len=48, text_block=2, image_block=3)
    for t in range(5):
        pairs = slow_pair_scores(model, tok, [texts[t]] * 4, imgs, max_len=48)
        np.testing.assert_allclose(matrix[t], pairs, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ scoring options, errors


def test_forward_only_scores_are_the_forward_half(world, tok):
    model = slow(tok).eval()
    texts, imgs = world.test.captions[:3], world.test.images[:3]
    both = slow_scores(model, tok, texts, imgs, max_len=48)
    fwd = slow_scores(model, tok, texts, imgs, max_len=48, directions=("forward",))
    bwd = slow_scores(model, tok, texts, imgs, max_len=48, directions="backward")
    np.testing.assert_allclose(both, fwd + bwd, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="directions"):
        slow_scores(model, tok, texts, imgs, max_len=48, directions=("sideways",))


def test_length_sorted_blocks_keep_each_score_in_its_row(world, tok):
    model = slow(tok).eval()
    texts = ["a red circle", world.test.captions[0], "a blue square", world.test.captions[1]]
    imgs = world.test.images[:2]
    matrix = slow_scores(model, tok, texts, imgs, max_len=48, text_block=1)
    for t, text in enumerate(texts):
        np.testing.assert_allclose(
            matrix[t], slow_pair_scores(model, tok, [text] * 2, imgs, max_len=48),
            rtol=1e-4, atol=1e-3)


def test_bad_input_gets_clear_errors(world, tok):
    model = slow(tok, max_len=12).eval()
    imgs = world.test.images[:2]
    long = " ".join(["a red circle"] * 10)
    with pytest.raises(ValueError, match="more than max_len=12"):
        slow_scores(model, tok, [long], imgs, max_len=12)
    with pytest.raises(ValueError, match="empty"):
        slow_scores(model, tok, ["  "], imgs, max_len=12)
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        slow_scores(model, tok, ["a red circle"], imgs[:, :32, :32], max_len=12)
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        slow_scores(model, tok, ["a red circle"], imgs[..., :1], max_len=12)
    with pytest.raises(ValueError, match="pairs must align"):
        slow_pair_scores(model, tok, ["a red circle"], imgs, max_len=12)
    ids = torch.ones(1, 13, dtype=torch.long)
    with pytest.raises(ValueError, match="longer than the decoder's max_len"):
        model.forward_decoder(ids, model.vision(torch.zeros(1, 3, 64, 64)))


# ------------------------------------------------------------------ grounding


def test_word_heatmaps_are_distributions_over_the_finest_level(world, tok):
    model = slow(tok).eval()
    caption = world.test.captions[0]
    words, maps = word_heatmaps(model, tok, caption, world.test.images[0])
    assert words == tokenize_caption(caption)
    assert maps.shape == (len(words), 8, 8)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    _, coarse = word_heatmaps(model, tok, caption, world.test.images[0], layer=0)
    assert coarse.shape == (len(words), 2, 2)
    assert upsample_map(maps[0], 64).shape == (64, 64)
    with pytest.raises(ValueError, match="image must have shape"):
        word_heatmaps(model, tok, caption, world.test.images[0][:32])
    with pytest.raises(ValueError, match="layer"):
        word_heatmaps(model, tok, caption, world.test.images[0], layer=5)


def test_cross_attention_weights_match_the_layer_output(world, tok):
    """The weights the heatmaps show are the ones the layer uses: weights @ V == attention."""
    model = slow(tok).eval()
    layer = model.forward_decoder.layers[-1]
    visual = model.vision(torch.rand(2, 3, 64, 64))[layer.stride]
    x = torch.randn(2, 5, 32)
    w = layer.cross_attn.weights(x, visual)
    _, v = layer.cross_attn.keys_values(visual)
    mixed = (w @ v).transpose(1, 2).reshape(2, 5, 32)
    torch.testing.assert_close(layer.cross_attn.out(mixed), layer.cross_attn(x, visual),
                               rtol=1e-4, atol=1e-5)


def test_named_object_attention_is_measured_against_the_uniform_share(world, tok):
    from fastslow_lib.slow.grounding import _box_mask, _named_objects, named_object_attention

    model = slow(tok).eval()
    out = named_object_attention(model, tok, world.test, n_captions=20)
    assert out["words"] > 5 and 0 < out["uniform"] < 1 and 0 <= out["mass"] <= 1
    scene = world.test.scenes[0]
    obj = scene.objects[0]
    words = ["a", obj.colour, obj.shape]
    same = [o for o in scene.objects if (o.shape, o.colour) == (obj.shape, obj.colour)]
    assert _named_objects(words, scene) == ([(2, obj)] if len(same) == 1 else [])
    box = _box_mask(obj, 8, 64)
    assert box[int(obj.y // 8), int(obj.x // 8)]  # the centre's cell is in the box
    assert box.sum() < 64


def test_named_object_cells_are_the_words_and_boxes_the_measurement_uses(world):
    from fastslow_lib.data.caption_parser import tokenize_caption
    from fastslow_lib.slow.grounding import _box_mask, _named_objects, named_object_cells

    found = 0
    for c in range(40):
        caption = world.test.captions[c]
        scene = world.test.scenes[int(world.test.caption_image[c])]
        cells = named_object_cells(caption, scene, 8, 64)
        expected = _named_objects(tokenize_caption(caption), scene)
        assert [i for i, _ in cells] == [i for i, _ in expected]
        for (i, mask), (_, obj) in zip(cells, expected, strict=True):
            assert tokenize_caption(caption)[i] == obj.shape
            np.testing.assert_array_equal(mask, _box_mask(obj, 8, 64))
        found += len(cells)
    assert found > 10


def test_itm_step_rejects_bad_negative_counts(world):
    neg = np.zeros((len(world.train.captions), 2), dtype=np.int64)
    with pytest.raises(ValueError, match="only 2 mined"):
        itm_step(neg, world.train, hard=3)
    with pytest.raises(ValueError, match="at least one negative"):
        itm_step(neg, world.train, hard=0, random=0)
    with pytest.raises(ValueError, match="matching_from"):
        itm_step(neg, world.train, matching_from=-1)
