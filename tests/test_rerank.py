"""Re-ranking: the cached Slow gallery agrees with the Slow scorer, rerank's order and its
recall cap, per-stage timing, and bad input (k < 1, k > N, empty queries, mismatched index)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shared import TINY_VISION

from fastslow_lib.config.presets import get_preset
from fastslow_lib.core.metrics import ranks_of_gt
from fastslow_lib.core.timing import StageTimer
from fastslow_lib.data import RetrievalProtocol, load_world
from fastslow_lib.fast.evaluate import embed_images, embed_texts, fast_scores
from fastslow_lib.fast.index import VectorIndex
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.rerank import (
    SlowGallery,
    lookup_reranked_ranks,
    rerank,
    reranked_ranks,
    shortlist_loss_bound,
)
from fastslow_lib.slow.model import SlowConfig, SlowModel
from fastslow_lib.slow.scoring import slow_scores

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    world = load_world(get_preset("tiny").world, tmp_path_factory.mktemp("world"))
    tok = world.tokenizer()
    torch.manual_seed(0)
    fast = DualEncoder(FastConfig(vocab_size=len(tok), embed_dim=16, text_width=32,
                                  text_layers=1, text_heads=2,
                                  vision_kwargs=TINY_VISION)).eval()
    slow = SlowModel(SlowConfig(vocab_size=len(tok), width=32, heads=2,
                                vision_kwargs=TINY_VISION)).eval()
    protocol = RetrievalProtocol.from_split(world.test)
    index = VectorIndex(16, backend="torch")
    index.add(embed_images(fast, protocol.gallery).numpy())
    gallery = SlowGallery(slow, protocol.gallery, block=16)
    return world, tok, fast, slow, protocol, index, gallery


def test_gallery_scores_equal_slow_scores(setup):
    _, tok, _, slow, protocol, _, gallery = setup
    texts = protocol.queries[:5]
    want = slow_scores(slow, tok, texts, protocol.gallery, max_len=48)
    np.testing.assert_allclose(gallery.scores(tok, texts, max_len=48), want, rtol=1e-4,
                               atol=1e-3)
    cand = np.array([[3, 0, 9], [1, 1, 2], [59, 4, 5], [7, 8, 6], [10, 11, 12]])
    got = gallery.candidate_scores(tok, texts, cand, max_len=48)
    np.testing.assert_allclose(got, np.take_along_axis(want, cand, 1), rtol=1e-4, atol=1e-3)
    assert gallery.nbytes() > 0 and len(gallery) == len(protocol.gallery)


def test_rerank_orders_fast_top_k_by_slow(setup):
    _, tok, fast, slow, protocol, index, gallery = setup
    texts = protocol.queries[:7]
    timer = StageTimer()
    out = rerank(texts, fast_model=fast, tokenizer=tok, index=index, gallery=gallery, k=5,
                 query_block=3, timer=timer)
    full_fast = (embed_texts(fast, tok, texts, max_len=48)
                 @ embed_images(fast, protocol.gallery).T).numpy()
    full_slow = slow_scores(slow, tok, texts, protocol.gallery, max_len=48)
    for q in range(len(texts)):
        top = np.argsort(-full_fast[q], kind="stable")[:5]
        assert set(out.fast_ids[q]) == set(top)  # the short list is Fast's top 5
        assert set(out.ids[q]) == set(top)  # re-ranking reorders, never adds
        # ... by Slow's score, best first
        want = out.fast_ids[q][np.argsort(-full_slow[q, out.fast_ids[q]], kind="stable")]
        np.testing.assert_array_equal(out.ids[q], want)
        assert np.all(np.diff(out.scores[q]) <= 1e-6)
    assert list(out.seconds) == ["text encoding", "index search", "slow re-scoring"]
    assert timer.counts()["index search"] == 1  # one search for all 7 queries
    # k = N re-ranks the whole gallery: the same top-1 as Slow on everything.
    allk = rerank(texts, fast_model=fast, tokenizer=tok, index=index, gallery=gallery,
                  k=len(gallery))
    np.testing.assert_array_equal(allk.ids[:, 0], full_slow.argmax(1))
    # A huge Fast weight gives Fast's order back.
    fastish = rerank(texts, fast_model=fast, tokenizer=tok, index=index, gallery=gallery, k=5,
                     fast_weight=1e9)
    np.testing.assert_array_equal(fastish.ids, fastish.fast_ids)


def test_reranked_ranks_keep_fast_outside_the_top_k_and_equal_slow_at_k_n(setup):
    _, tok, fast, slow, protocol, _, _ = setup
    sub = protocol.restrict(np.arange(12))
    f = fast_scores(fast, tok, sub, max_len=48)
    fast_ranks = ranks_of_gt(f, sub.gt)
    got = reranked_ranks(slow, tok, sub.queries, sub.gallery, sub.gt, f, 5, max_len=48)
    inside = fast_ranks <= 5
    assert (got[inside] <= 5).all() and (got[~inside] == fast_ranks[~inside]).all()
    every = reranked_ranks(slow, tok, sub.queries, sub.gallery, sub.gt, f, len(sub.gallery),
                           max_len=48)
    want = ranks_of_gt(slow_scores(slow, tok, sub.queries, sub.gallery, max_len=48), sub.gt)
    # Re-ranking everything is Slow on everything; the two scorers agree to ~1e-4, so a
    # near-tie of this untrained model may swap two neighbours (tolerance: one place, rarely).
    assert np.abs(every - want).max() <= 1 and (every == want).mean() >= 0.75, (every, want)
    with pytest.raises(ValueError, match="fast_scores must be"):
        reranked_ranks(slow, tok, sub.queries, sub.gallery, sub.gt, f[:3], 5, max_len=48)


def test_lookup_reranked_ranks_equal_reranking_by_slow(setup):
    """The look-up form (Slow's whole score matrix kept) gives rerank's ranks, at every K."""
    _, tok, fast, slow, protocol, _, _ = setup
    sub = protocol.restrict(np.arange(12))
    f = fast_scores(fast, tok, sub, max_len=48)
    order = np.argsort(-f, axis=1, kind="stable")
    S = slow_scores(slow, tok, sub.queries, sub.gallery, max_len=48)
    for k in (1, 3, 5):
        want = reranked_ranks(slow, tok, sub.queries, sub.gallery, sub.gt, f, k, max_len=48)
        got = lookup_reranked_ranks(order, S, sub.gt, k)
        # the batched scorer and the pair scorer agree to ~1e-4: a near-tie may swap neighbours
        assert np.abs(got - want).max() <= 1 and (got == want).mean() >= 0.75, (k, got, want)
    every = lookup_reranked_ranks(order, S, sub.gt, len(sub.gallery))
    want = ranks_of_gt(S, sub.gt)   # Slow's own order (this untrained model has exact ties)
    assert np.abs(every - want).max() <= 1 and (every == want).mean() >= 0.75, (every, want)


def test_lookup_reranked_ranks_golden_and_bad_input():
    order = np.array([[2, 0, 1, 3], [1, 3, 0, 2], [0, 1, 2, 3]])
    S = np.array([[5.0, 0.0, 1.0, 9.0], [2.0, 2.0, 7.0, 1.0], [3.0, 3.0, 0.0, 0.0]])
    gt = np.array([0, 2, 1])
    # query 0: K = 1 keeps Fast's order (image 0 second); K = 2 re-orders (2, 0) by Slow -> first;
    #          K = 4 is Slow's order (3, 0, 2, 1) -> second
    # query 1: image 2 is Fast's last: found only at K = 4, where Slow puts it first
    # query 2: images 0 and 1 tie for Slow: Fast's order first, so image 1 stays second
    np.testing.assert_array_equal(lookup_reranked_ranks(order, S, gt, 1), [2, 4, 2])
    np.testing.assert_array_equal(lookup_reranked_ranks(order, S, gt, 2), [1, 4, 2])
    np.testing.assert_array_equal(lookup_reranked_ranks(order, S, gt, 4), [2, 1, 2])
    with pytest.raises(ValueError, match="must both be"):
        lookup_reranked_ranks(order, S[:, :3], gt, 2)
    with pytest.raises(ValueError, match="k must be between 1 and 4"):
        lookup_reranked_ranks(order, S, gt, 5)
    with pytest.raises(ValueError, match="rank the whole gallery"):
        lookup_reranked_ranks(np.array([[2, 2, 1, 3], *order[1:]]), S, gt, 2)   # no image 0
    with pytest.raises(ValueError, match="image ids in"):
        lookup_reranked_ranks(order + 1, S, gt, 2)


def test_rerank_bad_input(setup):
    _, tok, fast, _, protocol, index, gallery = setup
    kw = dict(fast_model=fast, tokenizer=tok, index=index, gallery=gallery)
    with pytest.raises(ValueError, match="at least 1"):
        rerank(["a red circle"], k=0, **kw)
    with pytest.raises(ValueError, match="larger than the gallery"):
        rerank(["a red circle"], k=len(gallery) + 1, **kw)
    with pytest.raises(ValueError, match="empty"):
        rerank(["  "], k=3, **kw)
    with pytest.raises(ValueError, match="no queries"):
        rerank([], k=3, **kw)
    with pytest.raises(TypeError, match="not one string"):
        rerank("a red circle", k=3, **kw)
    small = VectorIndex(16, backend="torch")
    small.add(embed_images(fast, protocol.gallery[:10]).numpy())
    with pytest.raises(ValueError, match="same gallery"):
        rerank(["a red circle"], k=3, fast_model=fast, tokenizer=tok, index=small,
               gallery=gallery)
    with pytest.raises(ValueError, match="candidate ids"):
        gallery.candidate_scores(tok, ["a red circle"], np.array([[0, len(gallery)]]),
                                 max_len=48)


def test_gallery_filled_block_by_block_equals_one_block(setup):
    _, _, _, slow, protocol, _, gallery = setup   # built in blocks of 16, the last one short
    assert len(protocol.gallery) % 16 != 0
    whole = SlowGallery(slow, protocol.gallery, block=len(protocol.gallery))
    assert whole.kv.keys() == gallery.kv.keys()
    for name, layers in whole.kv.items():
        for (k1, v1), (k2, v2) in zip(layers, gallery.kv[name], strict=True):
            torch.testing.assert_close(k2, k1, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(v2, v1, rtol=1e-5, atol=1e-6)
    assert whole.nbytes() == gallery.nbytes()


def test_gallery_prefix_is_the_first_images(setup):
    _, tok, _, slow, protocol, _, gallery = setup
    small = gallery.prefix(10)
    assert len(small) == 10
    want = SlowGallery(slow, protocol.gallery[:10]).scores(tok, protocol.queries[:2], max_len=48)
    np.testing.assert_allclose(small.scores(tok, protocol.queries[:2], max_len=48), want,
                               rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="n must be"):
        gallery.prefix(0)


def test_the_shortlist_bound_holds_whatever_slow_scores():
    """Re-ranking Fast's top K loses a query to Slow on everything only when the image is not in
    the top K: checked query by query on random scores, with and without Fast-Slow agreement."""
    rng = np.random.default_rng(0)
    q, n = 400, 60
    gt = rng.integers(0, n, size=q)
    for agree in (0.0, 0.5, 2.0):
        signal = np.zeros((q, n))
        signal[np.arange(q), gt] = 1.5
        fast = signal + rng.normal(size=(q, n))
        slow = agree * fast + signal * 2 + rng.normal(size=(q, n))
        fast_order = np.argsort(-fast, axis=1, kind="stable")
        fast_ranks = 1 + np.argmax(fast_order == gt[:, None], axis=1)
        slow_hit = slow.argmax(1) == gt
        ks = [1, 2, 5, 10, 30]
        best_k, misses = shortlist_loss_bound(fast_ranks, ks, margin=5.0)
        for k in ks:
            top = fast_order[:, :k]
            rerank_hit = top[np.arange(q), np.take_along_axis(slow, top, 1).argmax(1)] == gt
            lost = slow_hit & ~rerank_hit
            assert not (lost & (fast_ranks <= k)).any()  # only queries outside the top K
            assert 100 * (rerank_hit.mean() - slow_hit.mean()) >= -misses[k].value - 1e-9
            assert misses[k].value == pytest.approx(100 * (fast_ranks > k).mean())
        assert best_k == min((k for k in ks if misses[k].high < 5.0), default=None)
        assert misses[1].value > misses[30].value


def test_the_shortlist_bound_rejects_bad_ranks():
    with pytest.raises(ValueError, match="1-based integer ranks"):
        shortlist_loss_bound(np.array([0, 1, 2]), [1])
    with pytest.raises(ValueError, match="1-based integer ranks"):
        shortlist_loss_bound(np.array([1.5, 2.0]), [1])
    with pytest.raises(ValueError, match="k must be at least 1"):
        shortlist_loss_bound(np.array([1, 2, 3]), [0])
