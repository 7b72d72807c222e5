"""Distillation: the Slow captioner teaches the Fast dual encoder at training time.

Taught in notebooks/03_distill.ipynb. Two signals, side by side at Fast's budget:

* :mod:`~fastslow_lib.distill.groups` (a), the paper's: batches built from groups of look-alike
  images, the student's softmax over each group matched to the teacher's (precomputed scores);
* :mod:`~fastslow_lib.distill.ranking` (b): random batches for InfoNCE, plus, for some captions
  of each batch, the teacher's ranking of that caption's own image among the hard negatives the
  plain Fast model mined for it (scored once by the teacher), matched by a listwise term.

The student stays a dual encoder either way, so it stays indexable.
"""

from fastslow_lib.distill.groups import (
    DistillConfig,
    GroupBatchSampler,
    check_teacher_covers,
    distillation_extra_loss,
    distilled_recipe,
    get_teacher_scores,
    group_distillation_loss,
    lookalike_groups,
    make_groups,
    random_groups,
    soft_cross_entropy,
    teacher_scores,
    training_captions,
)
from fastslow_lib.distill.ranking import (
    candidate_distillation_loss,
    ranking_candidates,
    ranking_extra_loss,
    ranking_recipe,
)

__all__ = [
    "DistillConfig",
    "GroupBatchSampler",
    "candidate_distillation_loss",
    "check_teacher_covers",
    "distillation_extra_loss",
    "distilled_recipe",
    "get_teacher_scores",
    "group_distillation_loss",
    "lookalike_groups",
    "make_groups",
    "random_groups",
    "ranking_candidates",
    "ranking_extra_loss",
    "ranking_recipe",
    "soft_cross_entropy",
    "teacher_scores",
    "training_captions",
]
