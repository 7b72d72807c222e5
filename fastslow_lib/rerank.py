"""Re-ranking: Fast finds a short list in the index, Slow re-scores only that list.

Taught in notebooks/04_rerank.ipynb.

Offline, once per gallery, like building the index:

* the Fast image embeddings go into a :class:`~fastslow_lib.fast.index.VectorIndex`;
* :class:`SlowGallery` runs the Slow model's image side (backbone, pyramid, and every decoder
  layer's cross-attention keys and values) over every gallery image and keeps it.

At query time (:func:`rerank`), per batch of queries: Fast encodes the texts, the index returns
each query's top ``k``, and Slow scores each query against its own ``k`` candidates, reading
their cached keys and values (one decoder pass per direction for the whole batch, no loop over
pairs). The final order is by the Slow score, optionally plus ``fast_weight`` times Fast's
cosine. Slow-on-everything (:meth:`SlowGallery.scores`) is the same decoder work for all N
images instead of k: the cost Slow would have alone.

What re-ranking can lose needs no Slow at all (:func:`shortlist_loss_bound`): a query whose
image Slow ranks first among all N is lost only if Fast left that image out of its top ``k``.
So Fast's miss rate at ``k``, measured on every query, bounds the loss from above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from fastslow_lib.config.checks import check_int
from fastslow_lib.core.intervals import Estimate, proportion_interval
from fastslow_lib.core.metrics import ranks_of_gt
from fastslow_lib.core.timing import StageTimer
from fastslow_lib.data.tokenizer import check_texts
from fastslow_lib.fast.evaluate import embed_texts_unchecked
from fastslow_lib.fast.input_checks import check_vocabulary
from fastslow_lib.slow.scoring import (
    Cache,
    blocked_scores,
    caption_tokens,
    check_gallery,
    image_cache,
    score_rows,
    slow_pair_scores,
)

__all__ = ["RerankResult", "SlowGallery", "lookup_reranked_ranks", "rerank", "rerank_unchecked",
           "reranked_ranks", "shortlist_loss_bound"]


class SlowGallery:
    """The Slow model's image side for a whole gallery, computed once and kept.

    ``kv[direction][layer]`` is a pair of tensors ``(N, heads, tokens, d_head)``: the keys and
    values that layer's cross-attention reads for each image (``nbytes()``: their memory).
    """

    def __init__(
        self, model: torch.nn.Module, images: np.ndarray, *, block: int = 256,
        device: torch.device | str = "cpu", progress_bar=None,
    ) -> None:
        check_gallery(model, images)
        model.eval()
        self.model = model
        self.device = torch.device(device)
        n = len(images)
        # Filled block by block into tensors of the whole gallery's size: the peak memory is the
        # cache plus one block (gathering the blocks and concatenating them would hold it twice).
        self.kv: Cache = {}
        for s in range(0, n, block):
            part = image_cache(model, images[s : s + block], self.device)
            if not self.kv:
                self.kv = {name: [(k.new_empty((n, *k.shape[1:])), v.new_empty((n, *v.shape[1:])))
                                  for k, v in layers] for name, layers in part.items()}
            for name, layers in part.items():
                for (keys, values), (k, v) in zip(self.kv[name], layers, strict=True):
                    keys[s : s + len(k)] = k
                    values[s : s + len(v)] = v
            del part
            if progress_bar is not None:
                progress_bar.update(len(images[s : s + block]))

    def __len__(self) -> int:
        return int(self.kv["forward"][0][0].shape[0])

    def nbytes(self) -> int:
        """Bytes held by the cached keys and values."""
        return sum(t.numel() * t.element_size() for layers in self.kv.values()
                   for kv in layers for t in kv)

    def prefix(self, n: int) -> SlowGallery:
        """The first ``n`` images' cache as a gallery of its own (views: no copy)."""
        check_int(n, "n", maximum=len(self), type_error=ValueError)
        out = object.__new__(SlowGallery)
        out.model, out.device = self.model, self.device
        out.kv = {name: [(k[:n], v[:n]) for k, v in layers] for name, layers in self.kv.items()}
        return out

    def select(self, ids: torch.Tensor | np.ndarray) -> Cache:
        """The cache of the images ``ids`` (a gather: ``len(ids)`` images, repeats allowed)."""
        index = torch.as_tensor(np.asarray(ids), dtype=torch.long, device=self.device)
        return {name: [(k.index_select(0, index), v.index_select(0, index)) for k, v in layers]
                for name, layers in self.kv.items()}

    @torch.no_grad()
    def scores(
        self, tokenizer, texts: Sequence[str], *, max_len: int, text_block: int = 8,
        image_block: int = 64, progress_bar=None,
    ) -> np.ndarray:
        """Slow-on-everything: ``(len(texts), N)`` scores against every cached image."""
        texts = check_texts(texts, "queries")
        check_int(max_len, "max_len", 3)
        check_vocabulary(self.model, tokenizer)
        tokens = caption_tokens(tokenizer, texts, max_len)

        def cache_of(i0: int, i1: int) -> Cache:
            return {name: [(k[i0:i1], v[i0:i1]) for k, v in layers]
                    for name, layers in self.kv.items()}

        return blocked_scores(self.model, tokens, len(self), cache_of, text_block=text_block,
                              image_block=image_block, progress_bar=progress_bar)

    @torch.no_grad()
    def candidate_scores(
        self, tokenizer, texts: Sequence[str], candidates: np.ndarray, *, max_len: int,
    ) -> np.ndarray:
        """``(len(texts), k)``: text ``i`` scored against its own ``candidates[i]`` images."""
        texts = check_texts(texts, "queries")
        check_int(max_len, "max_len", 3)
        check_vocabulary(self.model, tokenizer)
        cand = np.asarray(candidates)
        if cand.ndim != 2 or cand.shape[0] != len(texts):
            raise ValueError(f"candidates must be (n_texts={len(texts)}, k), got {cand.shape}")
        if cand.size and (cand.min() < 0 or cand.max() >= len(self)):
            raise ValueError(f"candidate ids must be in [0, {len(self)}), got "
                             f"[{cand.min()}, {cand.max()}]")
        return self._candidate_scores(tokenizer, texts, cand, max_len)

    @torch.no_grad()
    def _candidate_scores(
        self, tokenizer, texts: Sequence[str], cand: np.ndarray, max_len: int,
    ) -> np.ndarray:
        """:meth:`candidate_scores` of checked input (its callers check it once)."""
        k = cand.shape[1]
        tokens = caption_tokens(tokenizer, texts, max_len)
        # Row (i, j) = text i against candidate j: text i's tokens repeated k times, each row
        # reading its own image's cached keys/values (group=1).
        rows = {name: {key: v.to(self.device).repeat_interleave(k, dim=0)
                       for key, v in d.items()} for name, d in tokens.items()}
        total = score_rows(self.model, rows, kv=self.select(cand.reshape(-1)), group=1)
        return total.view(len(texts), k).numpy()


@dataclass
class RerankResult:
    """Ranked ids and scores of every query, best first, and what each stage took."""

    #: ``(Q, k)`` gallery ids in the final order.
    ids: np.ndarray
    #: ``(Q, k)`` final scores (Slow, plus ``fast_weight`` x Fast) in that order.
    scores: np.ndarray
    #: ``(Q, k)`` Fast's top-k ids and cosines (Fast's order).
    fast_ids: np.ndarray
    fast_scores: np.ndarray
    #: ``(Q, k)`` Slow's scores of ``fast_ids``.
    slow_scores: np.ndarray
    #: Seconds per stage over all queries (``StageTimer.totals()``).
    seconds: dict[str, float] = field(default_factory=dict)


def rerank(
    queries: Sequence[str], *, fast_model: torch.nn.Module, tokenizer, index,
    gallery: SlowGallery, k: int, fast_weight: float = 0.0, max_len: int = 48,
    query_block: int = 16, timer: StageTimer | None = None,
) -> RerankResult:
    """Fast's top ``k`` from ``index``, re-scored by Slow: ``RerankResult`` (best first).

    ``index`` holds ``fast_model``'s embeddings of the same gallery, in the same order, as
    ``gallery``. ``fast_weight``: the final score is ``slow + fast_weight * cosine``; 0 ranks by
    Slow alone. Fast encodes all the queries in one call and searches for all of them at once;
    Slow re-scores them ``query_block`` queries at a time (``query_block * k`` pairs per decoder
    pass), in order of length (so a block is padded to nearly its own length). Stages are timed
    into ``timer`` (a new one if None): "text encoding", "index search", "slow re-scoring".

    The public entry point: the queries, ``k``, ``max_len`` and the tokenizer against Slow's
    vocabulary are checked here, once; :func:`rerank_unchecked` does the work and trusts them.
    """
    queries = check_texts(queries, "queries")
    check_int(k, "k", allow_numpy=True)
    check_int(max_len, "max_len", 3)
    if k > len(gallery):
        raise ValueError(f"k={k} is larger than the gallery ({len(gallery)} images)")
    if index.ntotal != len(gallery):
        raise ValueError(f"the index holds {index.ntotal} vectors but the Slow gallery "
                         f"{len(gallery)} images: build both from the same gallery")
    check_vocabulary(gallery.model, tokenizer)
    return rerank_unchecked(queries, fast_model=fast_model, tokenizer=tokenizer, index=index,
                            gallery=gallery, k=k, fast_weight=fast_weight, max_len=max_len,
                            query_block=query_block, timer=timer)


def rerank_unchecked(
    queries: Sequence[str], *, fast_model: torch.nn.Module, tokenizer, index,
    gallery: SlowGallery, k: int, fast_weight: float = 0.0, max_len: int = 48,
    query_block: int = 16, timer: StageTimer | None = None,
) -> RerankResult:
    """:func:`rerank` for input a public entry point has checked once already.

    For callers that validate their own input first (the course's search box checks its one
    query, ``k`` and the tokenizer itself): nothing here checks the queries, ``k`` or the
    vocabulary again, not per block of queries either.
    """
    timer = StageTimer(gallery.device) if timer is None else timer
    before = timer.totals()
    device = next(fast_model.parameters()).device
    with timer.stage("text encoding"):
        q = embed_texts_unchecked(fast_model, tokenizer, queries, max_len=max_len,
                                  device=device)
    with timer.stage("index search"):
        fsc, fids = index.search(q.numpy(), k)
    with timer.stage("slow re-scoring"):
        # Blocks of queries of similar length, so a block is padded to (nearly) its own length.
        order = np.argsort([len(q.split()) for q in queries], kind="stable")
        ssc = np.zeros(fids.shape, dtype=np.float32)
        for s in range(0, len(queries), query_block):
            rows = order[s : s + query_block]
            ssc[rows] = gallery._candidate_scores(tokenizer, [queries[i] for i in rows],
                                                  fids[rows], max_len)
    final = ssc + float(fast_weight) * fsc
    order = np.argsort(-final, axis=1, kind="stable")  # best first; ties keep Fast's order
    after = timer.totals()
    seconds = {name: after[name] - before.get(name, 0.0) for name in after}
    return RerankResult(np.take_along_axis(fids, order, 1), np.take_along_axis(final, order, 1),
                        fids, fsc, ssc, seconds)


def reranked_ranks(
    model: torch.nn.Module, tokenizer, queries: Sequence[str], gallery: np.ndarray,
    gt: np.ndarray, fast_scores: np.ndarray, k: int, *, max_len: int,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """1-based rank of each query's right image ``gt[q]`` once ``model`` (any Slow-type model:
    a captioner, an ITM head) re-ranks Fast's top ``k`` by ``fast_scores`` (``(Q, N)``); Fast's
    own rank where the right image is not in its top ``k``. The evaluation form of
    :func:`rerank` (exact scores, no index, no cache): notebook 02 compares objectives with it.
    """
    queries = check_texts(queries, "queries")
    check_int(k, "k", allow_numpy=True)
    if fast_scores.shape != (len(queries), len(gallery)) or not 1 <= k <= len(gallery):
        raise ValueError(f"fast_scores must be (queries={len(queries)}, images={len(gallery)}) "
                         f"and 1 <= k <= images, got {fast_scores.shape} and k={k}")
    top = np.argsort(-fast_scores, axis=1, kind="stable")[:, :k]
    texts = [q for q in queries for _ in range(k)]
    scores = slow_pair_scores(model, tokenizer, texts, gallery[top.ravel()], max_len=max_len,
                              device=device).reshape(top.shape)
    order = np.take_along_axis(top, np.argsort(-scores, axis=1, kind="stable"), axis=1)
    hit = order == np.asarray(gt)[:, None]
    fast_ranks = ranks_of_gt(fast_scores, gt)
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, fast_ranks).astype(np.int64)


def lookup_reranked_ranks(
    fast_order: np.ndarray, slow_scores: np.ndarray, gt: Sequence[int] | np.ndarray, k: int,
) -> np.ndarray:
    """1-based rank of each query's image once Slow re-orders Fast's top ``k``: a look-up.

    ``fast_order`` is Fast's ranking of the whole gallery, ``(Q, N)`` image ids best first;
    ``slow_scores`` Slow's scores of every (query, image), ``(Q, N)`` (Slow on everything, kept).
    The top ``k`` are sorted by Slow's score (ties: Fast's order first), the rest keep Fast's
    order. With Slow's whole score matrix in hand, every K costs a sort of ``k`` numbers per
    query, so a curve over K needs no more decoder passes. Taught in notebooks/04_rerank.ipynb
    (section 4), where :func:`rerank` is checked against it.
    """
    order, scores = np.asarray(fast_order), np.asarray(slow_scores)
    gt = np.asarray(gt)
    if order.ndim != 2 or scores.shape != order.shape or gt.shape != (order.shape[0],):
        raise ValueError(f"fast_order and slow_scores must both be (queries, images) and gt "
                         f"(queries,), got {order.shape}, {scores.shape} and {gt.shape}")
    k = check_int(k, "k", 1, maximum=order.shape[1], allow_numpy=True, type_error=ValueError)
    if order.min() < 0 or order.max() >= order.shape[1]:
        raise ValueError(f"fast_order must hold image ids in [0, {order.shape[1]}), got "
                         f"[{order.min()}, {order.max()}]")
    cand = order[:, :k]
    inner = np.argsort(-np.take_along_axis(scores, cand, 1), axis=1, kind="stable")
    ranked = np.concatenate([np.take_along_axis(cand, inner, 1), order[:, k:]], axis=1)
    found = ranked == gt[:, None]
    if not found.any(axis=1).all():
        raise ValueError("fast_order must rank the whole gallery: some query's image is missing")
    return 1 + np.argmax(found, axis=1)


def shortlist_loss_bound(
    fast_ranks: Sequence[int] | np.ndarray, ks: Sequence[int], margin: float = 1.0,
) -> tuple[int | None, dict[int, Estimate]]:
    """How much R@1 re-ranking Fast's top K can lose to Slow on everything, at most, per K.

    Query by query: if Slow on everything ranks the query's image first and that image is in
    Fast's top K, it is also Slow's best among the top K, so the re-ranked top-1 is right. A
    query is lost only when its image is outside the top K. Hence, on any set of queries,
    ``R@1(Fast + Slow(K)) - R@1(Slow on everything) >= -(Fast's miss rate at K)``, whatever
    Slow's scores. ``fast_ranks`` are 1-based ranks of each query's image in Fast's ranking of
    the whole gallery (cheap for every query); each K gets its miss rate (percent) with the
    exact 95% interval, whose upper end bounds the loss. Returns the smallest K whose upper end
    lies below ``margin`` points (None if none does) and every K's estimate.

    The bound only rules a loss out: a high miss rate does not mean Slow would have found
    those images. Taught in notebooks/04_rerank.ipynb (section 4).
    """
    ranks = np.asarray(fast_ranks)
    if ranks.ndim != 1 or ranks.size == 0 or not np.issubdtype(ranks.dtype, np.integer) or \
            (ranks < 1).any():
        raise ValueError("fast_ranks must be a non-empty 1-D array of 1-based integer ranks")
    misses = {int(check_int(k, "k", allow_numpy=True)): proportion_interval(ranks > k)
              for k in sorted(ks)}
    within = [k for k, e in misses.items() if e.high < margin]
    return (within[0] if within else None), misses
