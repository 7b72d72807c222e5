"""Tests for fastslow_lib.core.metrics. Expected values are worked out by hand in the comments."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from fastslow_lib.core.metrics import (
    METRIC_KEYS,
    consistent_at_1,
    image_to_text_metrics,
    oracle_recall_at_1,
    pairwise_accuracy,
    ranks_of_gt,
    retrieval_metrics,
    text_to_image_metrics,
)

# 3 queries x 4 gallery items.
# q0: gt 0 scores 0.9, nothing >= 0.9            -> rank 1
# q1: gt 1 scores 0.2, 0.5, 0.8, 0.7 are >= 0.2  -> rank 4
# q2: gt 2 scores 0.4, only 0.6 is >= 0.4        -> rank 2
SCORES_3X4 = np.array(
    [
        [0.9, 0.1, 0.3, 0.2],
        [0.5, 0.2, 0.8, 0.7],
        [0.1, 0.6, 0.4, 0.3],
    ]
)
GT_3X4 = np.array([0, 1, 2])

# 6 captions x 3 images; caption_image says which image owns each caption.
# Image 0 owns captions 0 and 1, image 1 owns captions 2, 3, 4, image 2 owns caption 5.
CAPTION_IMAGE = np.array([0, 0, 1, 1, 1, 2])
SCORES_6X3 = np.array(
    [
        [0.2, 0.5, 0.8],  # caption 0
        [0.7, 0.1, 0.4],  # caption 1
        [0.1, 0.6, 0.5],  # caption 2
        [0.7, 0.6, 0.9],  # caption 3
        [0.9, 0.2, 0.6],  # caption 4
        [0.3, 0.0, 0.4],  # caption 5
    ]
)


def test_ranks_of_gt_hand_computed() -> None:
    ranks = ranks_of_gt(SCORES_3X4, GT_3X4)
    assert ranks.dtype == np.int64
    assert ranks.tolist() == [1, 4, 2]


def test_retrieval_metrics_3x4_odd_median() -> None:
    metrics = retrieval_metrics(SCORES_3X4, GT_3X4)
    assert list(metrics) == ["R@1", "R@5", "R@10", "MedR", "MeanR"]
    assert tuple(metrics) == METRIC_KEYS
    # ranks [1, 4, 2]: one of three at rank 1, all within 5 and 10 (K > G is fine).
    assert metrics["R@1"] == pytest.approx(100 / 3)
    assert metrics["R@5"] == 100.0
    assert metrics["R@10"] == 100.0
    assert metrics["MedR"] == 2.0
    assert metrics["MeanR"] == pytest.approx(7 / 3)
    assert all(isinstance(v, float) for v in metrics.values())


def test_recall_at_k_and_even_median() -> None:
    # Gallery of 12 items scored 11, 10, ..., 0, so gallery item g is at rank g + 1.
    row = np.arange(12, dtype=float)[::-1]
    scores = np.tile(row, (4, 1))
    gt = np.array([0, 4, 5, 10])  # ranks 1, 5, 6, 11
    assert ranks_of_gt(scores, gt).tolist() == [1, 5, 6, 11]
    metrics = retrieval_metrics(scores, gt)
    assert metrics["R@1"] == 25.0  # rank 1
    assert metrics["R@5"] == 50.0  # ranks 1, 5
    assert metrics["R@10"] == 75.0  # ranks 1, 5, 6
    assert metrics["MedR"] == 5.5  # (5 + 6) / 2
    assert metrics["MeanR"] == 5.75  # 23 / 4


def test_tie_with_correct_item_ranks_it_lower() -> None:
    scores = np.array([[0.5, 0.5, 0.2], [0.5, 0.5, 0.2]])
    # Whichever of the two tied items is correct, the other one ranks above it.
    assert ranks_of_gt(scores, np.array([0, 1])).tolist() == [2, 2]
    assert retrieval_metrics(scores, np.array([0, 1]))["R@1"] == 0.0


def test_ties_do_not_flatter_where_naive_argsort_would() -> None:
    scores = np.array([[0.7, 0.7, 0.7, 0.1]])
    gt = np.array([0])
    # A stable argsort puts the correct item (index 0) first: naive rank 1.
    naive_rank = int(np.where(np.argsort(-scores[0], kind="stable") == 0)[0][0]) + 1
    assert naive_rank == 1
    # Pessimistic rank: items 1 and 2 tie with it and rank above -> rank 3.
    assert ranks_of_gt(scores, gt).tolist() == [3]


def test_constant_scores_get_worst_rank() -> None:
    scores = np.zeros((3, 5))
    metrics = retrieval_metrics(scores, np.array([0, 2, 4]))
    assert metrics["R@1"] == 0.0
    assert metrics["R@5"] == 100.0
    assert metrics["MedR"] == 5.0
    assert metrics["MeanR"] == 5.0


def test_torch_and_numpy_inputs_agree() -> None:
    from_numpy = retrieval_metrics(SCORES_3X4, GT_3X4)
    from_torch = retrieval_metrics(torch.tensor(SCORES_3X4), torch.tensor(GT_3X4))
    assert from_torch == from_numpy
    t2i = image_to_text_metrics(torch.tensor(SCORES_6X3), torch.tensor(CAPTION_IMAGE))
    assert t2i == image_to_text_metrics(SCORES_6X3, CAPTION_IMAGE)
    assert ranks_of_gt(torch.tensor(SCORES_3X4), torch.tensor(GT_3X4)).dtype == np.int64


def test_torch_requires_grad_input_is_accepted() -> None:
    scores = torch.tensor(SCORES_3X4, requires_grad=True)
    assert ranks_of_gt(scores, GT_3X4).tolist() == [1, 4, 2]


@pytest.mark.parametrize(
    "scores",
    [
        SCORES_3X4.astype(np.float32),
        SCORES_3X4.astype(np.float16),
        torch.tensor(SCORES_3X4, dtype=torch.float32),
        torch.tensor(SCORES_3X4, dtype=torch.float16),
        torch.tensor(SCORES_3X4, dtype=torch.bfloat16),
    ],
    ids=["np-float32", "np-float16", "torch-float32", "torch-float16", "torch-bfloat16"],
)
def test_low_precision_float_inputs(scores: object) -> None:
    assert ranks_of_gt(scores, GT_3X4).tolist() == [1, 4, 2]


def test_integer_scores_and_list_inputs_are_accepted() -> None:
    assert ranks_of_gt([[3, 1, 2], [0, 5, 5]], [2, 1]).tolist() == [2, 2]
    assert ranks_of_gt(np.array([[3, 1, 2]], dtype=np.int32), np.array([0], np.int32)).tolist() == [
        1
    ]


def test_text_to_image_metrics_hand_computed() -> None:
    # Caption ranks over the 3 images (pessimistic ties):
    # c0 gt 0: 0.2 < 0.5, 0.8 -> 3      c1 gt 0: 0.7 > 0.1, 0.4 -> 1
    # c2 gt 1: 0.6 > 0.1, 0.5 -> 1      c3 gt 1: 0.6 < 0.7, 0.9 -> 3
    # c4 gt 1: 0.2 < 0.9, 0.6 -> 3      c5 gt 2: 0.4 > 0.3, 0.0 -> 1
    metrics = text_to_image_metrics(SCORES_6X3, CAPTION_IMAGE)
    assert metrics == {"R@1": 50.0, "R@5": 100.0, "R@10": 100.0, "MedR": 2.0, "MeanR": 2.0}
    assert metrics == retrieval_metrics(SCORES_6X3, CAPTION_IMAGE)


def test_image_to_text_metrics_hand_computed() -> None:
    # Image 0 (owns c0, c1), column [0.2, 0.7, 0.1, 0.7, 0.9, 0.3]: best own 0.7 (c1);
    #   not owned and >= 0.7: c3 (tie at 0.7) and c4 (0.9) -> rank 3.
    # Image 1 (owns c2, c3, c4), column [0.5, 0.1, 0.6, 0.6, 0.2, 0.0]: best own 0.6, tied
    #   between its own c2 and c3, which does not count against it; no other caption
    #   reaches 0.6 -> rank 1.
    # Image 2 (owns c5), column [0.8, 0.4, 0.5, 0.9, 0.6, 0.4]: best own 0.4; all five
    #   other captions are >= 0.4 (c1 ties) -> rank 6.
    metrics = image_to_text_metrics(SCORES_6X3, CAPTION_IMAGE)
    # ranks [3, 1, 6]
    assert metrics["R@1"] == pytest.approx(100 / 3)
    assert metrics["R@5"] == pytest.approx(200 / 3)
    assert metrics["R@10"] == 100.0
    assert metrics["MedR"] == 3.0
    assert metrics["MeanR"] == pytest.approx(10 / 3)
    assert tuple(metrics) == METRIC_KEYS


def test_image_to_text_any_own_caption_counts() -> None:
    # Image 0 owns captions 0, 1, 2. Only caption 2 beats the foreign caption 3.
    scores = np.array([[0.1, 0.0], [0.2, 0.0], [0.9, 0.0], [0.5, 1.0]])
    metrics = image_to_text_metrics(scores, np.array([0, 0, 0, 1]))
    assert metrics["R@1"] == 100.0
    assert metrics["MeanR"] == 1.0


def test_image_to_text_ties_with_foreign_caption_rank_lower() -> None:
    # Image 0's own caption 0 ties with caption 1 (owned by image 1) -> rank 2.
    # Image 1's own caption 1 ties with caption 0 (owned by image 0) -> rank 2.
    scores = np.array([[0.5, 0.5], [0.5, 0.5]])
    metrics = image_to_text_metrics(scores, np.array([0, 1]))
    assert metrics["R@1"] == 0.0
    assert metrics["MedR"] == 2.0


def test_random_scores_r1_matches_argmax() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((200, 37))  # continuous -> no ties (almost surely)
    gt = rng.integers(0, 37, size=200)
    expected = np.mean(scores.argmax(axis=1) == gt) * 100
    assert retrieval_metrics(scores, gt)["R@1"] == pytest.approx(expected)
    # Without ties the rank is the position in a descending sort.
    order = np.argsort(-scores, axis=1)
    sort_ranks = np.array([np.flatnonzero(order[q] == gt[q])[0] + 1 for q in range(200)])
    assert ranks_of_gt(scores, gt).tolist() == sort_ranks.tolist()


def test_random_image_to_text_with_one_caption_each_is_transposed_retrieval() -> None:
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((30, 30))
    identity = np.arange(30)
    assert image_to_text_metrics(scores, identity) == retrieval_metrics(scores.T, identity)


def test_pairwise_accuracy_ties_count_as_wrong() -> None:
    pos = np.array([0.9, 0.5, 0.3, 0.7])
    neg = np.array([0.1, 0.5, 0.4, 0.2])
    # right, tie (wrong), wrong, right -> 2 / 4
    assert pairwise_accuracy(pos, neg) == 50.0
    assert pairwise_accuracy(torch.tensor(pos), torch.tensor(neg)) == 50.0
    assert pairwise_accuracy(np.array([1.0]), np.array([0.0])) == 100.0


def test_consistent_at_1_with_tie_at_top() -> None:
    scores = np.array(
        [
            [0.9, 0.9, 0.1],  # tie at top between a true and a false item -> not consistent
            [0.2, 0.8, 0.8],  # tie at top, both true -> consistent
            [0.3, 0.1, 0.5],  # top item 2 is true -> consistent
            [0.6, 0.1, 0.2],  # top item 0 is false -> not consistent
        ]
    )
    truth = np.array(
        [
            [True, False, False],
            [False, True, True],
            [True, False, True],
            [False, True, False],
        ]
    )
    assert consistent_at_1(scores, truth) == 50.0
    assert consistent_at_1(torch.tensor(scores), torch.tensor(truth)) == 50.0


def test_oracle_recall_at_1() -> None:
    truth = np.array(
        [
            [True, False, False],  # true of its own item only -> reachable
            [True, True, False],  # ambiguous
            [False, False, True],  # reachable
            [True, True, True],  # ambiguous
        ]
    )
    assert oracle_recall_at_1(truth, np.array([0, 1, 2, 0])) == 50.0


# --------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------


def test_scores_wrong_rank() -> None:
    with pytest.raises(
        ValueError, match=r"scores.*2-D.*\(4,\)"
    ):
        ranks_of_gt(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match=r"2-D.*got shape \(2, 3, 4\)"):
        retrieval_metrics(np.zeros((2, 3, 4)), np.array([0, 1]))


@pytest.mark.parametrize("shape", [(0, 4), (3, 0)])
def test_scores_empty(shape: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=re.escape(f"non-empty on both axes, got shape {shape}")):
        ranks_of_gt(np.zeros(shape), np.zeros(shape[0], dtype=np.int64))


def test_scores_nan_and_inf() -> None:
    scores = SCORES_3X4.copy()
    scores[0, 1] = np.nan
    scores[2, 3] = np.inf
    with pytest.raises(ValueError, match=r"scores must be finite, got 2 NaN/inf value"):
        retrieval_metrics(scores, GT_3X4)
    with pytest.raises(ValueError, match=r"got 1 NaN/inf"):
        image_to_text_metrics(torch.tensor([[float("-inf")]]), [0])


@pytest.mark.parametrize(
    "scores",
    [np.array([["a", "b"]]), np.array([[True, False]]), np.array([[1 + 2j, 0j]])],
    ids=["str", "bool", "complex"],
)
def test_scores_non_numeric(scores: np.ndarray) -> None:
    with pytest.raises(TypeError, match=r"scores must hold real numbers.*got dtype"):
        ranks_of_gt(scores, np.array([0]))


def test_scores_not_an_array() -> None:
    with pytest.raises(TypeError, match=r"scores.*tensor or numpy array.*str"):
        ranks_of_gt("scores", np.array([0]))


def test_gt_wrong_length() -> None:
    with pytest.raises(ValueError, match=r"gt has 2 entries but scores has 3 queries"):
        ranks_of_gt(SCORES_3X4, np.array([0, 1]))


def test_gt_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"gt must be 1-D .* got shape \(3, 1\)"):
        ranks_of_gt(SCORES_3X4, GT_3X4[:, None])


def test_gt_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"gt.*\[0, 4\).*4.*position 1"):
        ranks_of_gt(SCORES_3X4, np.array([0, 4, 9]))


def test_gt_negative() -> None:
    with pytest.raises(ValueError, match=r"gt.*\[0, 4\).*-1.*position 2"):
        retrieval_metrics(SCORES_3X4, np.array([0, 1, -1]))


@pytest.mark.parametrize(
    "gt",
    [np.array([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 2.0]), np.array([True, False, True])],
    ids=["np-float", "torch-float", "bool"],
)
def test_gt_not_integer(gt: object) -> None:
    with pytest.raises(TypeError, match=r"gt must hold integer indices, got dtype"):
        ranks_of_gt(SCORES_3X4, gt)


def test_caption_image_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"caption_image has 5 entries but scores has 6"):
        text_to_image_metrics(SCORES_6X3, CAPTION_IMAGE[:5])
    with pytest.raises(ValueError, match=r"caption_image.*\[0, 3\).*3"):
        image_to_text_metrics(SCORES_6X3, np.array([0, 0, 1, 1, 3, 2]))


def test_image_without_caption() -> None:
    # Nobody owns image 1.
    with pytest.raises(ValueError, match=r"image 1 has none"):
        image_to_text_metrics(SCORES_6X3, np.array([0, 0, 2, 2, 0, 2]))


def test_pairwise_accuracy_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"pos and neg.*same length.*3 and 2"):
        pairwise_accuracy(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"pos must be non-empty, got shape \(0,\)"):
        pairwise_accuracy(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match=r"neg must be 1-D .*got shape \(2, 2\)"):
        pairwise_accuracy(np.zeros(4), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"neg must be finite, got 1 NaN/inf"):
        pairwise_accuracy(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match=r"pos must hold real numbers.*got dtype <U1"):
        pairwise_accuracy(np.array(["a"]), np.zeros(1))


def test_truth_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"truth.*shape.*scores.*\(3, 4\)"):
        consistent_at_1(SCORES_3X4, np.ones((3, 3), dtype=bool))


def test_truth_not_bool() -> None:
    with pytest.raises(TypeError, match=r"truth.*boolean.*int64"):
        consistent_at_1(SCORES_3X4, np.ones((3, 4), dtype=np.int64))
    with pytest.raises(TypeError, match=r"truth.*boolean.*float64"):
        oracle_recall_at_1(np.ones((3, 4)), GT_3X4)


def test_truth_row_all_false() -> None:
    truth = np.ones((3, 4), dtype=bool)
    truth[1] = False
    with pytest.raises(ValueError, match=r"truth row 1 is all False"):
        consistent_at_1(SCORES_3X4, truth)


def test_oracle_own_item_not_true() -> None:
    truth = np.eye(3, dtype=bool)
    with pytest.raises(ValueError, match=r"truth\[2, gt\[2\]=0\] is False"):
        oracle_recall_at_1(truth, np.array([0, 1, 0]))


def test_oracle_bad_truth_and_gt() -> None:
    with pytest.raises(ValueError, match=r"truth must be 2-D .*got shape \(3,\)"):
        oracle_recall_at_1(np.ones(3, dtype=bool), np.array([0, 0, 0]))
    with pytest.raises(ValueError, match=r"truth must be non-empty on both axes"):
        oracle_recall_at_1(np.ones((0, 3), dtype=bool), np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match=r"gt has 2 entries but truth has 3 queries"):
        oracle_recall_at_1(np.eye(3, dtype=bool), np.array([0, 1]))
