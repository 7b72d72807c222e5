"""Automatic checks for the notebooks' exercises.

Each ``check_*`` function runs a learner's answer on cases with known answers and returns a
short verdict (``"correct: ..."`` or :data:`NOT_YET` followed by what differs) instead of
raising, so a notebook can show the verdict whatever the answer.

Taught in notebooks/00_data.ipynb, 01_fast.ipynb, 02_slow.ipynb, 03_distill.ipynb,
04_rerank.ipynb, 05_video.ipynb and 06_demo_and_scale.ipynb (an exercise of each).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from fastslow_lib.core.metrics import ranks_of_gt

#: Score matrices with ties in every position that matters, and their correct ground truth.
_RANK_CASES: tuple[tuple[list[list[float]], list[int]], ...] = (
    ([[0.9, 0.1, 0.5], [0.2, 0.8, 0.8], [0.3, 0.3, 0.3]], [0, 2, 0]),
    ([[0.7, 0.7, 0.7, 0.1]], [0]),
    ([[0.1, 0.4, 0.4, 0.9], [0.5, 0.5, 0.2, 0.2]], [1, 3]),
)


#: How a check cell says an answer is not there yet: expected until the learner writes it.
NOT_YET = "not yet (expected until you write your answer)"


def check_ranks(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """Check a learner's ``fn(scores, gt) -> 1-based ranks`` against the pessimistic tie rule."""
    for scores, gt in _RANK_CASES:
        s, g = np.array(scores), np.array(gt)
        want = ranks_of_gt(s, g)
        try:
            got = np.asarray(fn(s, g))
        except Exception as e:  # a learner's bug should become a verdict, not a traceback
            return f"{NOT_YET}: your function raised {type(e).__name__}: {e}"
        if got.shape != want.shape or not np.array_equal(got.astype(np.int64), want):
            return (
                f"{NOT_YET}: for scores {scores} and gt {gt} the ranks are {want.tolist()}, "
                f"yours gave {got.tolist()} (hint: a tie with the correct item must rank it lower)"
            )
    return f"correct: all {len(_RANK_CASES)} cases match, ties included"


def _reference_info_nce_with_hard_negatives(
    img: torch.Tensor, txt: torch.Tensor, hard_txt: torch.Tensor, scale: float
) -> torch.Tensor:
    """InfoNCE where image i also competes against one extra caption, ``hard_txt[i]``."""
    logits = scale * img @ txt.T  # (B, B): image i against every caption of the batch
    extra = scale * (img * hard_txt).sum(dim=1, keepdim=True)  # (B, 1): its hard negative
    targets = torch.arange(img.shape[0])
    image_to_text = F.cross_entropy(torch.cat([logits, extra], dim=1), targets)
    text_to_image = F.cross_entropy(logits.T, targets)
    return (image_to_text + text_to_image) / 2


def check_info_nce_with_hard_negatives(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> str:
    """Check ``fn(img, txt, hard_txt, scale)``: InfoNCE plus one hard negative caption per image.

    Image i must pick caption i among the B batch captions *and* ``hard_txt[i]`` (e.g. the
    caption of its binding-swapped twin); captions pick images as in plain InfoNCE.
    Taught in notebooks/01_fast.ipynb (exercise 1).
    """
    gen = torch.Generator().manual_seed(0)
    for batch, dim, scale in ((2, 3, 1.0), (5, 8, 14.3), (7, 4, 100.0)):
        img = F.normalize(torch.randn(batch, dim, generator=gen), dim=1)
        txt = F.normalize(torch.randn(batch, dim, generator=gen), dim=1)
        hard = F.normalize(txt + 0.3 * torch.randn(batch, dim, generator=gen), dim=1)
        want = _reference_info_nce_with_hard_negatives(img, txt, hard, scale)
        try:
            got = fn(img, txt, hard, scale)
        except Exception as e:  # a learner's bug should become a verdict, not a traceback
            return f"{NOT_YET}: your function raised {type(e).__name__}: {e}"
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return f"{NOT_YET}: return a scalar tensor, got {got!r}"
        if not torch.allclose(got.reshape(()).float(), want, atol=1e-5, rtol=1e-5):
            plain = (F.cross_entropy(scale * img @ txt.T, torch.arange(batch))
                     + F.cross_entropy(scale * txt @ img.T, torch.arange(batch))) / 2
            hint = ("that is plain InfoNCE: add the hard negative's logit to each image's row"
                    if torch.allclose(got.reshape(()).float(), plain, atol=1e-5) else
                    "each image's row of logits gets one more column, scale * <img[i], hard[i]>")
            return (f"{NOT_YET}: batch {batch}, scale {scale}: expected {float(want):.5f}, got "
                    f"{float(got):.5f} ({hint})")
    return "correct: matches the reference on 3 batches (B = 2, 5, 7)"


def check_caption_logprob(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> str:
    """Check ``fn(logits, ids, mask) -> (B,)``: each caption's summed next-token log-probability.

    ``ids``/``mask`` are full sequences ``[BOS] w1 .. wn [EOS] [PAD]..``; ``logits`` were
    computed on ``ids[:, :-1]``, so ``logits[:, i]`` predicts ``ids[:, i + 1]``; only real
    target tokens count. Taught in notebooks/02_slow.ipynb (exercise 1).
    """
    from fastslow_lib.slow.decoder import token_logprobs

    gen = torch.Generator().manual_seed(0)
    for batch, length, vocab in ((1, 4, 5), (3, 7, 11), (4, 9, 6)):
        ids = torch.randint(6, vocab + 6, (batch, length), generator=gen) % vocab
        lengths = torch.randint(3, length + 1, (batch,), generator=gen)
        lengths[0] = length
        mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
        ids = ids * mask
        logits = torch.randn(batch, length - 1, vocab, generator=gen) * 3
        want = token_logprobs(logits, ids, mask)
        try:
            got = fn(logits, ids, mask)
        except Exception as e:  # a learner's bug should become a verdict, not a traceback
            return f"{NOT_YET}: your function raised {type(e).__name__}: {e}"
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return f"{NOT_YET}: return a tensor of shape {tuple(want.shape)}, got {got!r}"
        if not torch.allclose(got.float(), want, atol=1e-4, rtol=1e-5):
            logp = torch.log_softmax(logits, dim=-1)
            unshifted = logp.gather(-1, ids[:, :-1, None]).squeeze(-1)
            if torch.allclose(got.float(), (unshifted * mask[:, :-1]).sum(1), atol=1e-4):
                hint = "logits[:, i] predicts ids[:, i + 1]: shift the targets by one"
            elif torch.allclose(got.float(),
                                logp.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(1), atol=1e-4):
                hint = "padding positions are counted: multiply by mask[:, 1:]"
            else:
                hint = "take log_softmax over the vocabulary, pick each target's entry, sum"
            return (f"{NOT_YET}: batch {batch}, length {length}: expected "
                    f"{[round(float(v), 4) for v in want]}, got "
                    f"{[round(float(v), 4) for v in got]} ({hint})")
    return "correct: matches the reference on 3 batches, padding included"


def check_distillation_loss(
    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> str:
    """Check ``fn(student_logits, teacher_scores, tau) -> scalar``: the mean over rows of
    ``KL(softmax(teacher / tau) || softmax(student))``. Taught in notebooks/03_distill.ipynb
    (exercise 1)."""
    from fastslow_lib.distill import soft_cross_entropy

    gen = torch.Generator().manual_seed(0)
    for rows, cols, tau in ((1, 2, 1.0), (3, 4, 2.0), (5, 8, 0.5)):
        student = torch.randn(rows, cols, generator=gen) * 3
        teacher = torch.randn(rows, cols, generator=gen) * 5
        want = soft_cross_entropy(student, teacher, tau)
        try:
            got = fn(student, teacher, tau)
        except Exception as e:  # a learner's bug should become a verdict, not a traceback
            return f"{NOT_YET}: your function raised {type(e).__name__}: {e}"
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return f"{NOT_YET}: return a scalar tensor, got {got!r}"
        if not torch.allclose(got.float().reshape(()), want, atol=1e-5, rtol=1e-4):
            p = F.softmax(teacher / tau, dim=1)
            no_tau = soft_cross_entropy(student, teacher, 1.0)
            cross = -(p * F.log_softmax(student, dim=1)).sum(1).mean()
            if torch.allclose(got.float().reshape(()), no_tau, atol=1e-5):
                hint = "divide the teacher's scores by tau before the softmax"
            elif torch.allclose(got.float().reshape(()), cross, atol=1e-5):
                hint = ("that is the soft cross-entropy: subtract the teacher's entropy to get "
                        "the KL (same gradients, but zero when the student matches)")
            else:
                hint = "sum p_teacher * (log p_teacher - log p_student) over a row, then mean"
            return (f"{NOT_YET}: {rows}x{cols}, tau {tau}: expected {float(want):.5f}, got "
                    f"{float(got):.5f} ({hint})")
    return "correct: matches the reference on 3 cases"


def check_rerank_top1(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """Check ``fn(fast_ids, slow_scores) -> (Q,)``: each query's best image after re-ranking.

    ``fast_ids`` ``(Q, K)`` are Fast's top K gallery ids (best first) and ``slow_scores``
    ``(Q, K)`` Slow's scores of those ids; the answer is the gallery id Slow scores highest,
    the earlier one in Fast's order on a tie. Taught in notebooks/04_rerank.ipynb (exercise 1).
    """
    fast_ids = np.array([[7, 3, 9], [1, 2, 0], [5, 4, 8]])
    slow = np.array([[-10.0, -4.0, -6.0], [-3.0, -3.0, -8.0], [-2.0, -9.0, -1.0]])
    want = np.array([3, 1, 8])
    try:
        got = np.asarray(fn(fast_ids, slow))
    except Exception as e:  # a learner's bug should become a verdict, not a traceback
        return f"{NOT_YET}: your function raised {type(e).__name__}: {e}"
    if got.shape != want.shape or not np.array_equal(got, want):
        if np.array_equal(got, slow.argmax(1)):
            hint = "that is the position in the short list: return the gallery id fast_ids[q, j]"
        else:
            hint = "take the argmax of each row of slow_scores, then look it up in fast_ids"
        return f"{NOT_YET}: expected {want.tolist()}, got {got.tolist()} ({hint})"
    return "correct: re-ranked top-1 ids, ties going to Fast's earlier candidate"


def check_reverse_events(fn: Callable[[list[tuple[str, str]]], list[tuple[str, str]]]) -> str:
    """Check ``fn(events) -> events``: the two events of a clip played backwards.

    An event is ``(kind, detail)``: ``("move", "left")``, ``("appear", "")``,
    ``("disappear", "")`` or ``("turn", "<new colour>")``; the clip's actor colours are not
    needed except for turns, so turns are left out of the cases. The answer lists the backward
    clip's events in its order (:meth:`fastslow_lib.data.clips.ClipScript.reversed` is the
    reference). Taught in notebooks/05_video.ipynb (exercise 1).
    """
    cases = [
        ([("move", "left"), ("move", "up")], [("move", "down"), ("move", "right")]),
        ([("appear", ""), ("move", "right")], [("move", "left"), ("disappear", "")]),
        ([("move", "down"), ("disappear", "")], [("appear", ""), ("move", "up")]),
    ]
    for events, want in cases:
        try:
            got = [tuple(e) for e in fn(list(events))]
        except Exception as e:  # a learner's bug should become a verdict, not a traceback
            return f"{NOT_YET}: your function raised {type(e).__name__}: {e}"
        if got != want:
            if got == list(reversed(events)):
                hint = "the order is right, but each event must be undone too"
            elif sorted(got) == sorted(want):
                hint = "the right events, in the wrong order: the last event is undone first"
            else:
                hint = "play the clip backwards: last event first, each one inverted"
            return f"{NOT_YET}: for {events} expected {want}, got {got} ({hint})"
    return f"correct: the backward clip's events on {len(cases)} cases"


def check_machines(fn: Callable[[float, float, float], int]) -> str:
    """Check ``fn(n_items, bytes_per_item, gib_per_machine) -> int``: machines to hold an index.

    80% of each machine's memory is usable and the answer is at least 1
    (:func:`fastslow_lib.scale.costs.machines_needed` is the reference). Taught in
    notebooks/06_demo_and_scale.ipynb (exercise 1).
    """
    from fastslow_lib.scale.costs import machines_needed

    cases = [(1e9, 1024.0, 128.0), (1e9, 76.0, 128.0), (1e6, 1024.0, 24.0), (3e8, 76.0, 24.0)]
    for n, b, gib in cases:
        want = machines_needed(n, b, gib * 2**30)
        try:
            got = int(fn(n, b, gib))
        except Exception as e:  # a learner's bug should become a verdict, not a traceback
            return f"{NOT_YET}: your function raised {type(e).__name__}: {e}"
        if got != want:
            if got == max(1, math.ceil(n * b / (gib * 2**30))):
                hint = "only 80% of each machine's memory is usable"
            else:
                hint = "machines = ceil(n_items * bytes_per_item / (0.8 * GiB per machine * 2**30))"
            return (f"{NOT_YET}: {n:.0e} items of {b:g} bytes on {gib:g} GiB machines need {want}, "
                    f"got {got} ({hint})")
    return f"correct: {len(cases)} cases, from one machine to ten"
