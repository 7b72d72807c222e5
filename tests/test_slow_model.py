"""Tests for the Slow captioner (fastslow_lib.slow.model) and its batched scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from host_sync import no_host_reads
from shared import CAPTIONS, TINY_VISION

from fastslow_lib.data.tokenizer import build_tokenizer, encode
from fastslow_lib.fast.input_checks import check_images
from fastslow_lib.slow.config import SlowConfig
from fastslow_lib.slow.decoder import Attention, token_logprobs
from fastslow_lib.slow.model import (
    MatchingModel,
    MatchingOutput,
    SlowModel,
    SlowOutput,
    length_chunk_plan,
)
from fastslow_lib.slow.pyramid import position_code_2d
from fastslow_lib.slow.scoring import (
    caption_tokens,
    length_blocks,
    slow_pair_scores,
    slow_scores,
    spread_blocks,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(CAPTIONS)


def tiny(tok, **over) -> SlowConfig:
    values = dict(vocab_size=len(tok), max_len=16, width=32, heads=2, vision_kwargs=TINY_VISION)
    values.update(over)
    return SlowConfig(**values)


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"layer_strides": (8, 16, 32)}, "coarse to fine"),
        ({"layer_strides": (32, 4)}, "may only hold"),
        ({"layer_strides": ()}, "at least one"),
        ({"width": 30, "heads": 4}, "divisible by heads"),
        ({"image_size": 48}, "multiple of 32"),
    ],
)
def test_config_rejects_bad_values(tok, over, match):
    with pytest.raises(ValueError, match=match):
        tiny(tok, **over)


@pytest.mark.parametrize(
    ("strides", "levels"),
    [((32, 16, 8), (32, 16, 8)), ((32, 32, 32), (32,)), ((32, 16, 16), (32, 16))],
)
def test_levels_are_what_the_layers_need(tok, strides, levels):
    assert tiny(tok, layer_strides=strides).levels == levels


def test_pyramid_gives_one_token_per_cell_per_level(tok):
    torch.manual_seed(0)
    model = SlowModel(tiny(tok))
    x = torch.rand(3, 3, 64, 64)
    tokens = model.vision(x)
    assert {s: tuple(t.shape) for s, t in tokens.items()} == {
        32: (3, 4, 32), 16: (3, 16, 32), 8: (3, 64, 32)
    }
    maps = model.vision.maps(x)
    assert tuple(maps[8].shape) == (3, 32, 8, 8)


def test_coarse_only_model_builds_only_the_top_level(tok):
    model = SlowModel(tiny(tok, layer_strides=(32, 32)))
    assert set(model.vision(torch.rand(1, 3, 64, 64))) == {32}


def test_position_code_is_distinct_per_cell_and_shared_across_levels():
    code = position_code_2d(4, 4, 16)
    assert code.shape == (16, 16)
    assert torch.cdist(code, code).add(torch.eye(16)).min() > 1e-3
    # the stride-16 cell (1, 2) and the centre of its 2x2 block of stride-8 cells are close
    fine = position_code_2d(8, 8, 16).view(8, 8, 16)[2:4, 4:6].mean(dim=(0, 1))
    far = position_code_2d(8, 8, 16).view(8, 8, 16)[6, 0]
    near = code.view(4, 4, 16)[1, 2]
    assert (near - fine).norm() < (near - far).norm()


def test_attention_matches_torch_multihead_attention():
    torch.manual_seed(0)
    ours = Attention(16, 4)
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q.weight, ours.kv.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q.bias, ours.kv.bias]))
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    x, mem = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    torch.testing.assert_close(ours(x, mem), ref(x, mem, mem, need_weights=False)[0])
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    torch.testing.assert_close(ours(x, causal=True),
                               ref(x, x, x, attn_mask=causal, need_weights=False)[0])


def test_decoder_is_causal(tok):
    torch.manual_seed(0)
    model = SlowModel(tiny(tok)).eval()
    visual = model.vision(torch.rand(1, 3, 64, 64))
    ids = encode(tok, CAPTIONS[:1], 16)["input_ids"]
    changed = ids.clone()
    changed[0, 6] = ids[0, 7]
    with torch.no_grad():
        a = model.forward_decoder(ids, visual)
        b = model.forward_decoder(changed, visual)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6], b[:, 6])


def test_token_logprobs_by_hand():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]]))
    ids = torch.tensor([[0, 1, 1, 2]])
    mask = torch.tensor([[1, 1, 1, 0]])  # the last target is padding
    want = np.log(0.25) + np.log(0.8)
    assert float(token_logprobs(logits, ids, mask)[0]) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_batched_scores_equal_per_pair_scores(tok, bidirectional):
    torch.manual_seed(0)
    model = SlowModel(tiny(tok, bidirectional=bidirectional)).eval()
    imgs = images(5)
    matrix = slow_scores(model, tok, CAPTIONS, imgs, max_len=16, text_block=3, image_block=2)
    assert matrix.shape == (4, 5)
    for t in range(4):
        row = slow_pair_scores(model, tok, [CAPTIONS[t]] * 5, imgs, max_len=16)
        np.testing.assert_allclose(matrix[t], row, rtol=1e-5, atol=1e-4)


def test_length_blocks_are_the_scorers_blocks_and_a_sample_of_them_scores_the_same(tok):
    texts = [CAPTIONS[i % len(CAPTIONS)] for i in (3, 0, 2, 1, 0, 3, 2)]
    tokens = caption_tokens(tok, texts, 16)
    blocks = length_blocks(tokens, text_block=3)
    assert [len(b) for b in blocks] == [3, 3, 1]
    order = np.concatenate([b.numpy() for b in blocks])
    assert sorted(order.tolist()) == list(range(len(texts)))
    lengths = tokens["forward"]["attention_mask"].sum(1).numpy()[order]
    assert (np.diff(lengths) >= 0).all()   # shortest first
    torch.manual_seed(0)
    model = SlowModel(tiny(tok)).eval()
    imgs = images(3)
    full = slow_scores(model, tok, texts, imgs, max_len=16, text_block=3)
    part = blocks[1].numpy()
    np.testing.assert_allclose(slow_scores(model, tok, [texts[i] for i in part], imgs, max_len=16,
                                           text_block=3), full[part], rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="text_block"):
        length_blocks(tokens, text_block=0)
    # A spread sample: whole blocks, from short to long, never more than asked.
    many = caption_tokens(tok, [CAPTIONS[i % len(CAPTIONS)] for i in range(25)], 16)
    blocks = length_blocks(many, text_block=2)                      # 13 blocks
    sample = spread_blocks(many, n=3, text_block=2)
    assert [b.tolist() for b in blocks if set(b.tolist()) <= set(sample.tolist())] \
        == [blocks[3].tolist(), blocks[6].tolist(), blocks[9].tolist()]
    np.testing.assert_array_equal(np.sort(spread_blocks(tokens, n=5, text_block=3)), np.arange(7))
    with pytest.raises(ValueError, match="n must"):
        spread_blocks(tokens, n=0)


def test_score_is_forward_plus_backward_log_likelihood(tok):
    torch.manual_seed(0)
    model = SlowModel(tiny(tok)).eval()
    img = images(1)
    x = torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        visual = model.vision(x)
        total = 0.0
        for reverse, dec in ((False, model.forward_decoder), (True, model.backward_decoder)):
            b = encode(tok, CAPTIONS[:1], 16, reverse=reverse)
            ids, mask = b["input_ids"], b["attention_mask"]
            logp = torch.log_softmax(dec(ids[:, :-1], visual), -1)[0]
            n = int(mask.sum())
            total += sum(float(logp[i, ids[0, i + 1]]) for i in range(n - 1))
    got = slow_pair_scores(model, tok, CAPTIONS[:1], img, max_len=16)[0]
    assert got == pytest.approx(total, rel=1e-5)


def test_pyramid_checks_shapes_and_the_edge_check_checks_values(tok):
    model = SlowModel(tiny(tok))
    with pytest.raises(ValueError, match="images.*64x64"):
        model.vision(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="images.*channels-first"):
        model.vision(torch.rand(1, 64, 64, 3))
    with pytest.raises(ValueError, match="images.*NaN"):
        check_images(torch.full((1, 3, 64, 64), float("nan")), model.config.image_size)
    with pytest.raises(ValueError, match=r"images.*\[0, 1\]"):
        check_images(torch.rand(1, 3, 64, 64) * 255, model.config.image_size)


@pytest.mark.parametrize("chunks", [1, 2])
def test_a_training_step_reads_nothing_back_with_a_host_made_chunk_plan(tok, chunks):
    """Forward and backward of valid input read no tensor value back to the host (a device
    sync on a GPU) when the length-chunk plan is made on the host, as the training batches do;
    without a plan, the forward pass makes it and reads each chunk's longest length (one read
    per chunk and direction)."""
    torch.manual_seed(0)
    model = SlowModel(tiny(tok)).train()
    x = torch.rand(4, 3, 64, 64)
    fwd, bwd = encode(tok, CAPTIONS, 16), encode(tok, CAPTIONS, 16, reverse=True)
    plan = {"forward": length_chunk_plan(fwd["attention_mask"], chunks),
            "backward": length_chunk_plan(bwd["attention_mask"], chunks)}
    with no_host_reads():
        planned = model(x, fwd, bwd, chunks=plan)["loss"]
        planned.backward()
    with no_host_reads(allow=("fastslow_lib.slow.model.length_chunk_plan",)) as reads:
        unplanned = model(x, fwd, bwd, length_chunks=chunks)["loss"]
    assert len(reads) == 2 * chunks
    assert torch.equal(planned.detach(), unplanned.detach())


def test_an_itm_training_step_reads_no_tensor_value(tok):
    torch.manual_seed(0)
    model = MatchingModel(tiny(tok)).train()
    x = torch.rand(4, 3, 64, 64)
    with no_host_reads():
        out = model(x, encode(tok, CAPTIONS, 16), x.flip(0), caption_weight=0.5)
        out["loss"].backward()
    assert model.head.weight.grad is not None


def test_forward_outputs_are_typed_and_still_read_as_dicts(tok):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 64, 64)
    fwd, bwd = encode(tok, CAPTIONS, 16), encode(tok, CAPTIONS, 16, reverse=True)
    with torch.no_grad():
        out = SlowModel(tiny(tok)).eval()(x, fwd, bwd)
        itm = MatchingModel(tiny(tok)).eval()(x, fwd, x.flip(0))
    assert isinstance(out, SlowOutput) and list(out) == ["forward", "backward", "loss"]
    assert out.loss is out["loss"] and "backward" in out and dict(**out)["forward"] is out.forward
    torch.testing.assert_close(out.loss, out.forward + out.backward)
    assert isinstance(itm, MatchingOutput) and list(itm) == ["matching", "loss", "accuracy"]
    assert itm.caption is None and itm.get("caption") is None and "caption" not in itm


def test_training_steps_lower_the_loss(tok):
    torch.manual_seed(0)
    model = SlowModel(tiny(tok))
    x = torch.rand(4, 3, 64, 64)
    fwd, bwd = encode(tok, CAPTIONS, 16), encode(tok, CAPTIONS, 16, reverse=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model(x, fwd, bwd)["loss"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_grouped_cross_attention_equals_copying_the_memory():
    """Captions grouped per image read the image's keys/values once; same result as copies."""
    torch.manual_seed(0)
    attn = Attention(16, 4).eval()
    memory = torch.randn(3, 7, 16)           # 3 images
    x = torch.randn(3 * 5, 4, 16)            # 5 captions per image, image-major
    copied = memory.repeat_interleave(5, dim=0)
    with torch.no_grad():
        want = attn(x, copied)
        torch.testing.assert_close(attn(x, memory, group=5), want, rtol=1e-5, atol=1e-5)
        kv = attn.keys_values(memory)
        torch.testing.assert_close(attn(x, kv=kv, group=5), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="group"):
        attn(x, memory, group=4)
    with pytest.raises(ValueError, match="group"):
        attn(x, causal=True, group=5)


def test_without_top_down_each_level_sees_only_its_backbone_map(tok):
    torch.manual_seed(0)
    model = SlowModel(tiny(tok, top_down=False)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        maps = model.vision.maps(x)
        feats = model.vision.backbone((x - model.vision.mean) / model.vision.std)
        by_stride = dict(zip(model.vision.backbone.feature_info.reduction(), feats, strict=True))
        for s in (32, 16, 8):
            want = model.vision.smooth[str(s)](model.vision.lateral[str(s)](by_stride[s]))
            torch.testing.assert_close(maps[s], want)
    with pytest.raises(TypeError, match="top_down"):
        tiny(tok, top_down=1)
