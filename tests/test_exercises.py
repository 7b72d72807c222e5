"""The exercise checkers accept right answers and reject wrong ones, with a verdict."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fastslow_course.exercises import check_info_nce_with_hard_negatives
from fastslow_lib.fast.losses import info_nce


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
        "not yet (expected until you write your answer): your function raised RuntimeError: oops"
    )
    verdict = check_info_nce_with_hard_negatives(lambda *a: 1.0)
    assert verdict.startswith("not yet (expected until you write your answer): return")


def test_caption_logprob_checker_accepts_the_right_answer_and_hints_the_usual_slips():
    from fastslow_course.exercises import check_caption_logprob

    def right(logits, ids, mask):
        logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        return (logp * mask[:, 1:]).sum(1)

    def unshifted(logits, ids, mask):
        logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, :-1, None]).squeeze(-1)
        return (logp * mask[:, :-1]).sum(1)

    def unmasked(logits, ids, mask):
        return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1).sum(1)

    assert check_caption_logprob(right).startswith("correct")
    assert "shift" in check_caption_logprob(unshifted)
    assert "padding" in check_caption_logprob(unmasked)
    assert "raised" in check_caption_logprob(lambda *a: 1 / 0)


def test_distillation_loss_checker():
    from fastslow_course.exercises import check_distillation_loss
    from fastslow_lib.distill import soft_cross_entropy

    def no_tau(student, teacher, tau):
        return soft_cross_entropy(student, teacher, 1.0)

    def cross_entropy(student, teacher, tau):
        p = torch.softmax(teacher / tau, dim=1)
        return -(p * torch.log_softmax(student, dim=1)).sum(1).mean()

    assert check_distillation_loss(soft_cross_entropy).startswith("correct")
    assert "tau" in check_distillation_loss(no_tau)
    assert "entropy" in check_distillation_loss(cross_entropy)
    assert "raised" in check_distillation_loss(lambda *a: 1 / 0)
    assert "scalar" in check_distillation_loss(lambda s, t, tau: s)


def test_rerank_top1_checker():
    from fastslow_course.exercises import check_rerank_top1

    def right(fast_ids, slow_scores):
        return fast_ids[np.arange(len(fast_ids)), np.argmax(slow_scores, axis=1)]

    assert check_rerank_top1(right).startswith("correct")
    assert "position" in check_rerank_top1(lambda f, s: np.argmax(s, axis=1))
    assert "not yet" in check_rerank_top1(lambda f, s: f[:, 0])
    assert "raised" in check_rerank_top1(lambda *a: 1 / 0)


def test_check_reverse_events_accepts_the_reference_and_explains_mistakes():
    from fastslow_course.exercises import check_reverse_events
    from fastslow_lib.data.clips import OPPOSITE

    undo = {"appear": "disappear", "disappear": "appear", "move": "move"}

    def right(events):
        return [(undo[k], OPPOSITE.get(d, d)) for k, d in reversed(events)]

    assert check_reverse_events(right).startswith("correct")
    assert "undone too" in check_reverse_events(lambda ev: list(reversed(ev)))
    assert "wrong order" in check_reverse_events(lambda ev: list(reversed(right(ev))))
    assert "raised" in check_reverse_events(lambda ev: 1 / 0)


def test_check_machines_accepts_the_reference_and_explains_mistakes():
    import math

    from fastslow_course.exercises import check_machines

    def right(n, b, gib):
        return max(1, math.ceil(n * b / (0.8 * gib * 2**30)))

    assert check_machines(right).startswith("correct")
    assert "80%" in check_machines(lambda n, b, gib: max(1, math.ceil(n * b / (gib * 2**30))))
    assert "not yet" in check_machines(lambda n, b, gib: 0)
    assert "raised" in check_machines(lambda n, b, gib: 1 / 0)
