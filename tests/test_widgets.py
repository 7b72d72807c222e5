"""The search demo (notebook 06): the query path, its clear errors, and the widget's callbacks
driven without a browser."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from fastslow_course.widgets import SearchDemo
from fastslow_lib.config.presets import get_preset
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.slow.model import SlowConfig, SlowModel
from fastslow_lib.slow.scoring import slow_scores

TINY = get_preset("tiny")


@pytest.fixture(scope="module")
def demo(world, tok, one_thread):
    torch.manual_seed(0)
    fast = DualEncoder(FastConfig(vocab_size=len(tok), **TINY.fast_model)).eval()
    slow = SlowModel(SlowConfig(vocab_size=len(tok), **TINY.slow_model)).eval()
    return SearchDemo(fast_model=fast, slow_model=slow, tokenizer=tok,
                      images=world.test.images[:30])


def test_search_reranks_fast_top_k_with_slow(demo, world, tok):
    query = world.test.captions[0]
    res = demo.search("  " + query + " ", k=6)
    assert res.query == query and res.k == 6
    assert sorted(res.ids.tolist()) == sorted(res.fast_ids.tolist())
    full = slow_scores(demo.slow, tok, [query], demo.images, max_len=48)[0]
    np.testing.assert_allclose(res.slow_scores, full[res.ids], rtol=1e-4, atol=1e-3)
    assert np.all(np.diff(res.slow_scores) <= 1e-6)  # best first
    assert set(res.stages_ms) == {"text encoding", "index search", "slow re-scoring"}
    assert query in res.summary()


def test_clear_errors_for_bad_queries(demo):
    with pytest.raises(ValueError, match="empty query"):
        demo.search("   ")
    with pytest.raises(ValueError, match="does not know: hexagon, purple"):
        demo.search("a hexagon left of a purple circle")
    with pytest.raises(TypeError, match="must be a str"):
        demo.search(["a red circle"])
    with pytest.raises(ValueError, match="larger than"):
        demo.search("a red circle", k=31)


def test_widget_callbacks_without_a_browser(demo, world):
    box = demo.widget(k=5, show=3)
    assert box is not None
    c = demo.controls
    c["query"].value = ""
    c["search"].click()
    assert "empty query" in c["status"].value and c["grounding"].options == ()
    c["query"].value = world.test.captions[3]
    c["k"].value = 4
    c["search"].click()
    assert demo.last is not None and demo.last.k == 4
    assert "slow re-scoring" in c["status"].value
    assert [v for _, v in c["grounding"].options] == demo.last.ids[:3].tolist()
    c["grounding"].value = int(demo.last.ids[1])  # draws the heatmaps without error
    c["query"].value = "a purple blob"
    c["search"].click()
    assert "purple" in c["status"].value and "blob" in c["status"].value


def test_index_and_gallery_must_match_the_images(demo, world):
    with pytest.raises(ValueError, match="must hold"):
        SearchDemo(fast_model=demo.fast, slow_model=demo.slow, tokenizer=demo.tokenizer,
                   images=world.test.images[:10], index=demo.index, gallery=demo.gallery)
