"""The exercise checkers accept right answers and reject wrong ones, with a verdict."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fastslow_lib.exercises import check_info_nce_with_hard_negatives
from fastslow_lib.losses import info_nce


def right(img, txt, hard, scale):
    logits = scale * img @ txt.T
    rows = torch.cat([logits, scale * (img * hard).sum(1, keepdim=True)], dim=1)
    target = torch.arange(len(img))
    return (F.cross_entropy(rows, target) + F.cross_entropy(logits.T, target)) / 2


def test_a_right_answer_is_correct():
    assert check_info_nce_with_hard_negatives(right).startswith("correct")


def test_plain_info_nce_is_not_yet_with_a_hint():
    verdict = check_info_nce_with_hard_negatives(lambda i, t, h, s: info_nce(i, t, s))
    assert verdict.startswith("not yet") and "plain InfoNCE" in verdict


def test_hard_negative_on_both_sides_is_not_yet():
    def both(img, txt, hard, scale):  # also adds the hard caption to the text-to-image side
        extra = scale * (img * hard).sum(1, keepdim=True)
        logits = scale * img @ txt.T
        target = torch.arange(len(img))
        return (F.cross_entropy(torch.cat([logits, extra], 1), target)
                + F.cross_entropy(torch.cat([logits.T, extra], 1), target)) / 2

    assert check_info_nce_with_hard_negatives(both).startswith("not yet")


def test_an_exception_becomes_a_verdict():
    def broken(img, txt, hard, scale):
        raise RuntimeError("oops")

    assert check_info_nce_with_hard_negatives(broken) == (
        "not yet: your function raised RuntimeError: oops"
    )
    assert check_info_nce_with_hard_negatives(lambda *a: 1.0).startswith("not yet: return")
