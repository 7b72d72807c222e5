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
    assert c["heatmaps"].value and c["heatmaps"].value[:4] == b"\x89PNG"
    c["query"].value = "a purple blob"   # Enter in the box searches: its value changed
    assert "purple" in c["status"].value and "blob" in c["status"].value
    assert "color:#b00020" in c["status"].value   # an error looks like one


def test_clicking_search_right_after_typing_searches_once(demo, world):
    demo.widget(k=5, show=3)
    c = demo.controls
    calls = []
    original = demo.search
    demo.search = lambda *a: calls.append(a) or original(*a)  # type: ignore[method-assign]
    try:
        # in a browser the click takes the focus from the box, which commits the text first
        c["query"].value = world.test.captions[5]
        c["search"].click()
        assert len(calls) == 1
        c["search"].click()   # a second click searches again
        assert len(calls) == 2
        c["query"].value = world.test.captions[6]
        c["k"].value = 4      # K changed since the commit: the click searches with it
        c["search"].click()
        assert len(calls) == 4 and calls[-1][1] == 4
    finally:
        demo.search = original  # type: ignore[method-assign]


def test_one_search_gives_one_set_of_outputs_drawn_without_pyplot(demo, world):
    import matplotlib.pyplot as plt

    plt.close("all")
    demo.widget(k=5, show=3, examples=world.test.captions[:4])
    c = demo.controls
    drawn = []
    original = demo.grounding_figure
    demo.grounding_figure = lambda *a: drawn.append(a) or original(*a)  # type: ignore[method-assign]
    try:
        c["grounding"].value = None
        c["examples"].value = world.test.captions[2]   # an example fills the box and searches
        assert demo.last is not None and demo.last.query == world.test.captions[2]
        assert c["lists"].value[:4] == b"\x89PNG" and c["lists"].layout.display is None
        # refilling the grounding menu drew no map: only a pick does, once
        assert drawn == [] and c["heatmaps"].layout.display == "none"
        c["grounding"].value = int(demo.last.ids[0])
        assert len(drawn) == 1 and c["heatmaps"].layout.display is None
        c["search"].click()   # a new search clears the map and the menu's choice
        assert len(drawn) == 1 and c["heatmaps"].layout.display == "none"
        assert c["grounding"].value is None and not c["search"].disabled
    finally:
        demo.grounding_figure = original  # type: ignore[method-assign]
    assert plt.get_fignums() == []   # no figure through pyplot's global state
    c["query"].value = "a red circle"
    assert "short query" in c["status"].value


def test_case_and_punctuation_are_forgiven(demo, world):
    from fastslow_course.widgets import normalise_query

    assert normalise_query("  A Red circle, left of a BLUE square. ") == \
        "a red circle left of a blue square"
    assert normalise_query("A red circle , and a square!", keep=",") == \
        "a red circle, and a square"
    caption = world.test.captions[5]
    loud = "  " + caption.upper().replace(" ", "  ", 2) + "!"
    assert demo.search(loud, k=3).query == caption
    with pytest.raises(ValueError, match="empty query"):
        demo.search(" ... ")


def test_index_and_gallery_must_match_the_images(demo, world):
    with pytest.raises(ValueError, match="must hold"):
        SearchDemo(fast_model=demo.fast, slow_model=demo.slow, tokenizer=demo.tokenizer,
                   images=world.test.images[:10], index=demo.index, gallery=demo.gallery)
