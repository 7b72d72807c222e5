"""Tests for fastslow_lib.fast.losses.info_nce: hand-computed values, a loop reference, errors."""

from __future__ import annotations

import math

import pytest
import torch
from host_sync import no_host_reads

from fastslow_lib.fast.losses import info_nce


def loop_info_nce(img: list[list[float]], txt: list[list[float]], scale: float) -> float:
    """InfoNCE with plain Python loops and math: no torch, no matrix products."""
    n = len(img)
    logits = [[scale * sum(a * b for a, b in zip(img[i], txt[j], strict=True)) for j in range(n)]
              for i in range(n)]

    def cross_entropy(row: list[float], target: int) -> float:
        return -(row[target] - math.log(sum(math.exp(x) for x in row)))

    image_to_text = sum(cross_entropy(logits[i], i) for i in range(n)) / n
    columns = [[logits[i][j] for i in range(n)] for j in range(n)]
    text_to_image = sum(cross_entropy(columns[j], j) for j in range(n)) / n
    return (image_to_text + text_to_image) / 2


def test_two_by_two_example_by_hand():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    # similarities img_i . txt_j = [[0.6, 0.0], [0.8, 1.0]]; times scale 2:
    # logits = [[1.2, 0.0], [1.6, 2.0]]
    row_0 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0)))  # image 0 -> text 0
    row_1 = -math.log(math.exp(2.0) / (math.exp(1.6) + math.exp(2.0)))  # image 1 -> text 1
    col_0 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6)))  # text 0 -> image 0
    col_1 = -math.log(math.exp(2.0) / (math.exp(0.0) + math.exp(2.0)))  # text 1 -> image 1
    expected = ((row_0 + row_1) / 2 + (col_0 + col_1) / 2) / 2
    assert expected == pytest.approx(0.454060, abs=1e-6)
    assert float(info_nce(img, txt, 2.0)) == pytest.approx(expected, abs=1e-6)
    assert float(info_nce(img, txt, torch.tensor(2.0))) == pytest.approx(expected, abs=1e-6)


def test_three_by_three_matches_the_loop_implementation():
    img = [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.8, 0.0, 0.6]]
    txt = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    expected = loop_info_nce(img, txt, 5.0)
    got = info_nce(torch.tensor(img), torch.tensor(txt), torch.tensor(5.0))
    assert float(got) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_batches_match_the_loop_implementation(seed):
    gen = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.normalize(torch.randn(6, 4, generator=gen, dtype=torch.float64), 1)
    txt = torch.nn.functional.normalize(torch.randn(6, 4, generator=gen, dtype=torch.float64), 1)
    expected = loop_info_nce(img.tolist(), txt.tolist(), 14.3)
    assert float(info_nce(img, txt, 14.3)) == pytest.approx(expected, abs=1e-10)


def test_limits_identical_embeddings_give_log_b_and_a_perfect_match_gives_zero():
    same = torch.ones(4, 3) / math.sqrt(3)
    assert float(info_nce(same, same, 10.0)) == pytest.approx(math.log(4), abs=1e-6)
    eye = torch.eye(4)
    assert float(info_nce(eye, eye, 100.0)) < 1e-6


def test_the_loss_is_symmetric_in_images_and_texts():
    gen = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    assert float(info_nce(img, txt, 3.0)) == pytest.approx(float(info_nce(txt, img, 3.0)))


def test_gradients_flow_to_both_embeddings_and_the_scale():
    gen = torch.Generator().manual_seed(0)
    img = torch.randn(4, 8, generator=gen).requires_grad_()
    txt = torch.randn(4, 8, generator=gen).requires_grad_()
    log_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    info_nce(img, txt, log_scale.exp()).backward()
    for grad in (img.grad, txt.grad, log_scale.grad):
        assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


@pytest.mark.parametrize(
    ("img", "txt", "scale", "error", "message"),
    [
        (torch.randn(4), torch.randn(4), 1.0, ValueError, r"\(B, d\)"),
        (torch.randn(4, 8), torch.randn(3, 8), 1.0, ValueError, "same shape"),
        (torch.randn(4, 8), torch.randn(4, 6), 1.0, ValueError, "same shape"),
        (torch.randn(1, 8), torch.randn(1, 8), 1.0, ValueError, "at least 2"),
        (torch.ones(4, 8, dtype=torch.long), torch.ones(4, 8, dtype=torch.long), 1.0, TypeError,
         "float"),
        ([[1.0, 0.0]], torch.randn(1, 2), 1.0, TypeError, "torch.Tensor"),
        (torch.randn(4, 8), torch.randn(4, 8), 0.0, ValueError, "positive"),
        (torch.randn(4, 8), torch.randn(4, 8), -2.0, ValueError, "positive"),
        (torch.randn(4, 8), torch.randn(4, 8), float("nan"), ValueError, "finite"),
        (torch.randn(4, 8), torch.randn(4, 8), torch.ones(2), ValueError, "logit_scale.*scalar"),
        (torch.randn(4, 8), torch.randn(4, 8), torch.tensor(2), TypeError, "logit_scale.*float"),
        (torch.randn(4, 8), torch.randn(4, 8), "14", TypeError, "logit_scale.*number"),
    ],
)
def test_bad_inputs_raise_clear_errors(img, txt, scale, error, message):
    with pytest.raises(error, match=message):
        info_nce(img, txt, scale)


def test_a_tensor_scale_is_checked_without_reading_its_value():
    """The loss runs every training step: a tensor scale gets shape and dtype checks only, as
    reading its value would stall a GPU (a number is checked by value, above)."""
    gen = torch.Generator().manual_seed(0)
    img = torch.randn(4, 8, generator=gen).requires_grad_()
    txt = torch.randn(4, 8, generator=gen)
    scale = torch.tensor([[2.0]], requires_grad=True)  # one element, any shape
    with no_host_reads():
        loss = info_nce(img, txt, scale)
        loss.backward()
    assert float(loss.detach()) == pytest.approx(float(info_nce(img, txt, 2.0).detach()))
    assert scale.grad is not None and scale.grad.shape == (1, 1)
