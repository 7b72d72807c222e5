"""Evaluating retrieval models on the embedded world: score matrices, metrics, the probe.

Any model is evaluated the same way: it produces a score matrix (queries x gallery) for the
retrieval protocol, and scores of aligned (caption, image) pairs for the compositional probe.
For the Fast dual encoder both come from embeddings computed once per image and once per caption.

:func:`embed_images` and :func:`embed_texts` are where user data enters a dual encoder, so they
run the value checks of :mod:`fastslow_lib.fast.input_checks` (finite pixels in [0, 1], token
ids inside the model's vocabulary, a right-padded mask) on each CPU batch before it moves to
the device; the models' forward passes check shapes only.

Taught in notebooks/01_fast.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from fastslow_lib.config.checks import check_int
from fastslow_lib.core.metrics import (
    consistent_at_1,
    image_to_text_metrics,
    ranks_of_gt,
    text_to_image_metrics,
)
from fastslow_lib.data.datasets import RetrievalProtocol, images_to_tensor
from fastslow_lib.data.tokenizer import check_texts, encode_unchecked
from fastslow_lib.data.world import PROBE_KINDS, ProbeSet, World
from fastslow_lib.fast.input_checks import check_images, check_tokens

#: A function scoring aligned pairs: ``texts[i]`` against ``images[i]`` -> ``scores[i]``.
PairScorer = Callable[[Sequence[str], np.ndarray], np.ndarray]


def _check_visual_batch(model: torch.nn.Module, x: torch.Tensor) -> None:
    """The edge value checks of a CPU batch of images ``(B, 3, H, W)`` or clips
    ``(B, T, 3, H, W)`` (checked frame by frame), for models with a ``vision.image_size``."""
    size = getattr(getattr(model, "vision", None), "image_size", None)
    if isinstance(size, int):
        check_images(x.flatten(0, 1) if x.dim() == 5 else x, size)


def _check_token_batch(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> None:
    """The edge value checks of a CPU token batch, for models with a ``text`` tower that knows
    its ``vocab_size`` and ``max_len``."""
    text = getattr(model, "text", None)
    vocab_size = getattr(text, "vocab_size", None)
    if isinstance(vocab_size, int):
        check_tokens(batch["input_ids"], batch["attention_mask"], vocab_size,
                     getattr(text, "max_len", None))


@torch.no_grad()
def embed_images(
    model: torch.nn.Module, images: np.ndarray, *, batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """L2-normalised image embeddings ``(N, d)`` (on the CPU) of uint8 images ``(N, H, W, 3)``
    (or clips ``(N, T, H, W, 3)`` for a video model); each batch is checked on the CPU first."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images_to_tensor(images[start : start + batch_size])
        _check_visual_batch(model, x)
        out.append(model.encode_image(x.to(device)).float().cpu())
    return torch.cat(out)


def embed_texts(
    model: torch.nn.Module, tokenizer, texts: Sequence[str], *, max_len: int,
    batch_size: int = 512, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """L2-normalised caption embeddings ``(N, d)`` (on the CPU).

    ``texts`` are checked once (:func:`~fastslow_lib.data.tokenizer.check_texts`); each batch of
    tokens is then checked on the CPU: ids outside the model's vocabulary (a tokenizer that is
    not the model's) or sequences longer than its ``max_len`` raise ValueError.
    """
    texts = check_texts(texts)
    check_int(max_len, "max_len", 3)
    return embed_texts_unchecked(model, tokenizer, texts, max_len=max_len,
                                 batch_size=batch_size, device=device)


@torch.no_grad()
def embed_texts_unchecked(
    model: torch.nn.Module, tokenizer, texts: Sequence[str], *, max_len: int,
    batch_size: int = 512, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """:func:`embed_texts` for texts a public entry point has checked once already (as
    :func:`fastslow_lib.rerank.rerank` does); the token batches are still checked."""
    model.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        batch = encode_unchecked(tokenizer, texts[start : start + batch_size], max_len)
        _check_token_batch(model, batch)
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        out.append(model.encode_text(ids, mask).float().cpu())
    return torch.cat(out)


def fast_scores(
    model: torch.nn.Module, tokenizer, protocol: RetrievalProtocol, *, max_len: int,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """The dual encoder's score matrix (queries x gallery): dot products of embeddings."""
    img = embed_images(model, protocol.gallery, device=device)
    txt = embed_texts(model, tokenizer, protocol.queries, max_len=max_len, device=device)
    return (txt @ img.T).numpy()


def retrieval_report(scores: np.ndarray, protocol: RetrievalProtocol) -> dict[str, float]:
    """Text-to-image metrics (``R@1`` ...), ``consistent@1``, and image-to-text (``i2t_R@1`` ...).

    Image-to-text is computed only when every gallery image has a query (the full protocol).
    """
    out = dict(text_to_image_metrics(scores, protocol.gt))
    out["consistent@1"] = consistent_at_1(scores, protocol.truth)
    if len(np.unique(protocol.gt)) == len(protocol.gallery):
        out.update({f"i2t_{k}": v for k, v in image_to_text_metrics(scores, protocol.gt).items()})
    return out


def fast_pair_scorer(
    model: torch.nn.Module, tokenizer, *, max_len: int, device: torch.device | str = "cpu"
) -> PairScorer:
    """A :data:`PairScorer` for a dual encoder: the dot product of each pair's embeddings."""

    def score(texts: Sequence[str], images: np.ndarray) -> np.ndarray:
        t = embed_texts(model, tokenizer, texts, max_len=max_len, device=device)
        v = embed_images(model, images, device=device)
        return (t * v).sum(dim=1).numpy()

    return score


def probe_outcomes(
    scorer: PairScorer, probe: ProbeSet, *, tie_tol: float | None = None
) -> dict[str, np.ndarray]:
    """Per-pair probe outcomes in ``[0, 1]``, overall (``probe``) and per kind (``probe_<kind>``).

    Each pair gives two comparisons: caption a must score item a above item b, and caption b
    item b above item a. A pair's outcome is the share of its two comparisons that are right
    (0, 0.5 or 1), so the pair, not the comparison, is the unit an interval counts
    (:func:`fastslow_lib.core.intervals.proportion_interval`). A tie counts as wrong; with
    ``tie_tol``, scores within ``tie_tol`` of each other count as half right (a coin flip), and
    the share of tied comparisons is returned under ``ties`` (one number).
    """
    s_aa = scorer(probe.caption_a, probe.images_a)
    s_ab = scorer(probe.caption_a, probe.images_b)
    s_bb = scorer(probe.caption_b, probe.images_b)
    s_ba = scorer(probe.caption_b, probe.images_a)
    pos = np.stack([np.asarray(s_aa), np.asarray(s_bb)], axis=1).astype(np.float64)
    neg = np.stack([np.asarray(s_ab), np.asarray(s_ba)], axis=1).astype(np.float64)
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(neg))):
        raise ValueError("probe scores must be finite: the scorer returned NaN or inf")
    right = (pos > neg).astype(np.float64)
    if tie_tol is not None:
        tie = np.abs(pos - neg) <= tie_tol
        right = np.where(tie, 0.5, right)
    per_pair = right.mean(axis=1)
    kinds = np.array(list(probe.kinds))
    out = {"probe": per_pair}
    for kind in dict.fromkeys(probe.kinds):  # in order of first appearance
        out[f"probe_{kind}"] = per_pair[kinds == kind]
    if tie_tol is not None:
        out["ties"] = np.array([tie.mean()])
    return out


def student_outcomes(
    model: torch.nn.Module, tokenizer, world: World, *, max_len: int,
    device: torch.device | str = "cpu",
) -> dict[str, list]:
    """A Fast-type model's per-item outcomes, as the trial scripts of notebook 03 keep them.

    ``test_ranks``: the 1-based rank of each test caption's image among all the test images
    (:func:`~fastslow_lib.core.metrics.ranks_of_gt`: every caption, in the split's order); then
    :func:`probe_outcomes` per kind. Lists, ready
    for a results file; paired intervals compare two models item by item.
    """
    test = RetrievalProtocol.from_split(world.test)
    ranks = ranks_of_gt(fast_scores(model, tokenizer, test, max_len=max_len, device=device),
                        test.gt)
    probe = probe_outcomes(fast_pair_scorer(model, tokenizer, max_len=max_len, device=device),
                           world.probe)
    return {"test_ranks": ranks.tolist(), **{k: v.tolist() for k, v in probe.items()}}


def probe_accuracy(
    scorer: PairScorer, probe: ProbeSet, *, tie_tol: float | None = None
) -> dict[str, float]:
    """Pairwise accuracy (percent) on a probe, overall (``probe``) and per kind (``probe_<kind>``).

    The means of :func:`probe_outcomes` (see it for the rule: two comparisons per pair, chance
    is 50, a tie counts as wrong unless ``tie_tol`` makes it a coin flip; ``ties`` is then the
    share of tied comparisons in percent). The clip probe of notebook 05 uses ``tie_tol``, where
    an order-blind model's scores of a clip and its reversal differ only by float rounding.
    Works for the image probe (:class:`~fastslow_lib.data.world.ProbeSet`) and the clip probe
    (:class:`~fastslow_lib.data.clips.ClipProbe`).
    """
    return {k: float(100.0 * v.mean())
            for k, v in probe_outcomes(scorer, probe, tie_tol=tie_tol).items()}


def twin_cosines(
    model: torch.nn.Module, tokenizer, probe: ProbeSet, *, max_len: int,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean cosine between each probe item and its twin, for captions and for images, per kind.

    Keys ``text_<kind>`` and ``image_<kind>`` for every probe kind, plus ``text_random`` and
    ``image_random`` (consecutive, unrelated probe items) as the reference. A tower that cannot
    tell twins apart puts them at 1.000; that is how an order-blind text tower shows itself.
    """
    ta = embed_texts(model, tokenizer, probe.caption_a, max_len=max_len, device=device)
    tb = embed_texts(model, tokenizer, probe.caption_b, max_len=max_len, device=device)
    ia = embed_images(model, probe.images_a, device=device)
    ib = embed_images(model, probe.images_b, device=device)
    kinds = np.array(probe.kinds)
    out: dict[str, float] = {}
    for kind in PROBE_KINDS:
        sel = torch.from_numpy(kinds == kind)
        if bool(sel.any()):
            out[f"text_{kind}"] = float((ta[sel] * tb[sel]).sum(1).mean())
            out[f"image_{kind}"] = float((ia[sel] * ib[sel]).sum(1).mean())
    out["text_random"] = float((ta[:-1] * ta[1:]).sum(1).mean())
    out["image_random"] = float((ia[:-1] * ia[1:]).sum(1).mean())
    return out
