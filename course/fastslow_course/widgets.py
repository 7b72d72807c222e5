"""An interactive search demo: Fast's top results beside Slow's re-ranked list.

:class:`SearchDemo` holds a gallery, Fast's index of it and Slow's cached gallery
(:class:`~fastslow_lib.rerank.SlowGallery`). :meth:`SearchDemo.search` is the whole query path
(encode, search, re-rank, time each stage) as a plain function returning a
:class:`SearchResult`; :meth:`SearchDemo.widget` wraps it in an ipywidgets search box with a K
slider, the two ranked lists as thumbnails, the time each stage took, and per-word grounding
heatmaps for a chosen result. A test drives the widget's callback without a browser
(``demo.controls``).

Taught in notebooks/06_demo_and_scale.ipynb.
"""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from fastslow_lib.config.checks import check_int
from fastslow_lib.core.timing import StageTimer
from fastslow_lib.data.tokenizer import unknown_words
from fastslow_lib.fast.evaluate import embed_images
from fastslow_lib.fast.index import VectorIndex
from fastslow_lib.fast.input_checks import check_vocabulary
from fastslow_lib.rerank import SlowGallery, rerank_unchecked

__all__ = ["SearchDemo", "SearchResult", "figure_png", "normalise_query"]

#: A query of at most this many words gets the status line's note on short queries.
SHORT_QUERY_WORDS = 3
#: A click on Search this soon (seconds) after the box's text was committed and searched, with
#: the same text and K, is that same commit: clicking the button takes the focus from the box,
#: which commits the text first. It is not searched twice.
CLICK_AFTER_COMMIT_S = 1.0


@dataclass
class SearchResult:
    """One query's results: Fast's top K, the same K re-ranked by Slow, the time per stage."""

    query: str
    k: int
    fast_ids: np.ndarray  # (k,) gallery ids, Fast's order
    fast_scores: np.ndarray  # (k,) cosines
    ids: np.ndarray  # (k,) the same ids in Slow's order
    slow_scores: np.ndarray  # (k,) Slow's log-likelihoods, in Slow's order
    stages_ms: dict[str, float]

    def summary(self) -> str:
        """One line: the top result of each list and the time per stage."""
        times = ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.stages_ms.items())
        return (f"{self.query!r}: Fast's top-1 #{int(self.fast_ids[0])}, Slow's top-1 "
                f"#{int(self.ids[0])} (K = {self.k}); {times}")


class SearchDemo:
    """Search a gallery with Fast, re-rank Fast's top K with Slow; optionally as a widget."""

    def __init__(
        self, *, fast_model: torch.nn.Module, slow_model: torch.nn.Module, tokenizer,
        images: np.ndarray, max_len: int = 48, device: torch.device | str = "cpu",
        index: VectorIndex | None = None, gallery: SlowGallery | None = None,
    ) -> None:
        check_vocabulary(slow_model, tokenizer)
        self.fast, self.slow, self.tokenizer = fast_model, slow_model, tokenizer
        self.images = np.asarray(images)
        self.max_len, self.device = max_len, device
        if index is None:
            index = VectorIndex(fast_model.embed_dim, "flat", device=device)
            index.add(embed_images(fast_model, self.images, device=device).numpy())
        if gallery is None:
            gallery = SlowGallery(slow_model, self.images, device=device)
        if len(index) != len(self.images) or len(gallery) != len(self.images):
            raise ValueError(f"index ({len(index)}) and Slow gallery ({len(gallery)}) must hold "
                             f"the {len(self.images)} gallery images")
        self.index, self.gallery = index, gallery
        self.last: SearchResult | None = None
        self.controls: dict = {}

    def check_query(self, query: object) -> str:
        """The query as the vocabulary writes it (:func:`normalise_query`: case and punctuation
        forgiven), or a ValueError naming what is wrong with it.

        The query's one check on its way to the result: :meth:`search` hands it to
        :func:`~fastslow_lib.rerank.rerank_unchecked`, which trusts it.
        """
        if not isinstance(query, str):
            raise TypeError(f"the query must be a str, got {type(query).__name__}")
        marks = [t for t in self.tokenizer.get_vocab() if len(t) == 1 and not t.isalnum()]
        query = normalise_query(query, marks)
        if not query:
            raise ValueError("empty query: type a caption, e.g. 'a red circle left of a blue "
                             "square'")
        unknown = unknown_words(self.tokenizer, query)
        if unknown:
            known = ", ".join(w for w in ("red", "green", "blue", "circle", "square", "triangle",
                                          "left", "above") if w in self.tokenizer.get_vocab())
            raise ValueError(f"words the vocabulary does not know: {', '.join(unknown)} "
                             f"(it knows e.g. {known})")
        return query

    def search(self, query: str, k: int = 10) -> SearchResult:
        """Fast's top ``k`` for ``query`` and Slow's re-ranking of them, each stage timed.

        The public entry point of the query path: the query and ``k`` are checked here, once
        (the tokenizer, index and gallery in ``__init__``); the re-ranking trusts them.
        """
        query = self.check_query(query)
        k = check_int(k, "k", allow_numpy=True)
        if k > len(self.images):
            raise ValueError(f"k={k} is larger than the gallery ({len(self.images)} images)")
        timer = StageTimer(self.device)
        out = rerank_unchecked([query], fast_model=self.fast, tokenizer=self.tokenizer,
                               index=self.index, gallery=self.gallery, k=k,
                               max_len=self.max_len, timer=timer)
        self.last = SearchResult(
            query, k, out.fast_ids[0], out.fast_scores[0], out.ids[0], out.scores[0],
            {name: 1e3 * s for name, s in timer.totals().items()})
        return self.last

    # ----------------------------------------------------------------------------- widget

    def widget(self, k: int = 10, show: int = 5, examples: Sequence[str] = ()):
        """An ipywidgets search box over the gallery (JupyterLab); ``show`` results per list.

        Enter (or the button) searches; case and punctuation are forgiven (:func:`normalise_query`);
        the status line says "searching" while a search runs and shows errors in red; the
        ``examples`` menu fills the box with a caption (e.g. test captions). Figures are drawn on
        their own :class:`~matplotlib.figure.Figure` objects into image widgets, never through
        pyplot's global state, so one search gives exactly one set of outputs.
        """
        import ipywidgets as w

        query = w.Text(placeholder="a caption, e.g. a red circle left of a blue square",
                       continuous_update=False, layout=w.Layout(width="60%"))
        slider = w.IntSlider(value=min(k, len(self.images)), min=1,
                             max=min(100, len(self.images)), description="K")
        button = w.Button(description="Search", button_style="primary")
        example = w.Dropdown(options=[("examples", None)] + [(e, e) for e in examples],
                             value=None, layout=w.Layout(width="60%"))
        status = w.HTML()
        pick = w.Dropdown(options=[], description="grounding")
        lists = w.Image(format="png", layout=w.Layout(display="none"))
        heat = w.Image(format="png", layout=w.Layout(display="none"))
        state: dict = {"refilling": False, "committed": None}

        def show_image(widget, fig) -> None:
            widget.value = figure_png(fig) if fig is not None else b""
            widget.layout.display = None if fig is not None else "none"

        def on_search(_=None) -> None:
            button.disabled, status.value = True, "<i>searching ...</i>"
            show_image(lists, None)
            show_image(heat, None)
            state["refilling"] = True   # refilling the menu must not draw a map
            pick.options = []
            try:
                res = self.search(query.value, slider.value)
            except (ValueError, TypeError) as e:
                status.value = (f'<span style="color:#b00020"><b>Cannot search:</b> '
                                f"{html.escape(str(e))}</span>")
                return
            finally:
                state["refilling"] = False
                button.disabled = False
            times = "; ".join(f"{n}: {ms:.1f} ms" for n, ms in res.stages_ms.items())
            status.value = html.escape(f"{res.query!r}: {times}") + (
                "<br><small>A short query names few things, and each image holds a whole scene: "
                "many images may fit it equally well, so the lists can differ without either "
                "being wrong.</small>" if len(res.query.split()) <= SHORT_QUERY_WORDS else "")
            state["refilling"] = True
            pick.options = [(f"Slow #{r + 1}: image {int(i)}", int(i))
                            for r, i in enumerate(res.ids[:show])]
            pick.value = None
            state["refilling"] = False
            show_image(lists, self.lists_figure(res, show))

        def on_commit(_=None) -> None:   # Enter in the box, or the box losing the focus
            on_search()
            state["committed"] = (query.value, slider.value, time.perf_counter())

        def on_click(_=None) -> None:
            committed, state["committed"] = state["committed"], None
            if committed is not None and committed[:2] == (query.value, slider.value) and \
                    time.perf_counter() - committed[2] < CLICK_AFTER_COMMIT_S:
                return   # this click's own commit searched already
            on_search()

        def forget_commit(_=None) -> None:
            state["committed"] = None

        def on_pick(change) -> None:
            forget_commit()
            if state["refilling"] or change["new"] is None or self.last is None:
                return
            show_image(heat, self.grounding_figure(self.last.query, int(change["new"])))

        def on_example(change) -> None:
            if change["new"]:
                query.value = change["new"]   # which searches (the box's value changed)

        button.on_click(on_click)
        query.observe(on_commit, names="value")   # Enter in the box
        slider.observe(forget_commit, names="value")
        pick.observe(on_pick, names="value")
        example.observe(on_example, names="value")
        self.controls = {"query": query, "k": slider, "search": button, "status": status,
                         "examples": example, "grounding": pick, "lists": lists,
                         "heatmaps": heat}
        return w.VBox([w.HBox([query, slider, button]), example, status, lists, pick, heat])

    def lists_figure(self, res: SearchResult, show: int = 5) -> Figure:
        """Thumbnails of Fast's top ``show`` (first row) and Slow's (second row), with scores."""
        n = min(show, res.k)
        fig = Figure(figsize=(min(10.0, 1.9 * n), 5.2))
        axes = fig.subplots(2, n, squeeze=False)
        rows = (("Fast", res.fast_ids, res.fast_scores, "cosine"),
                ("Slow", res.ids, res.slow_scores, "log-lik."))
        for r, (name, ids, scores, unit) in enumerate(rows):
            for c in range(n):
                ax = axes[r, c]
                item = self.images[int(ids[c])]
                ax.imshow(item if item.ndim == 3 else np.concatenate(list(item), axis=1))
                ax.set_title(f"{name} #{c + 1}: image {int(ids[c])}\n{unit} {scores[c]:.2f}",
                             fontsize=8)
                ax.set_axis_off()
        fig.suptitle("Fast's top items (top row) and Slow's re-ranking of them (bottom row)",
                     fontsize=9)
        fig.tight_layout(h_pad=2.0)
        return fig

    def show_lists(self, res: SearchResult, show: int = 5) -> None:
        """Display :meth:`lists_figure` (in a notebook)."""
        from IPython.display import display

        display(self.lists_figure(res, show))

    def grounding_figure(self, query: str, image_id: int) -> Figure:
        """Slow's per-word attention maps for ``query`` over gallery image ``image_id``."""
        from fastslow_lib.slow.grounding import upsample_map, word_heatmaps

        image = self.images[image_id]
        words, maps = word_heatmaps(self.slow, self.tokenizer, self.check_query(query), image,
                                    device=self.device)
        cols = min(8, len(words))
        rows = -(-len(words) // cols)
        fig = Figure(figsize=(1.6 * cols, 1.9 * rows + 0.4))
        axes = fig.subplots(rows, cols, squeeze=False)
        shown = None
        for ax in axes.ravel():
            ax.set_axis_off()
        for ax, word, m in zip(axes.ravel(), words, maps, strict=False):
            ax.imshow(image)
            shown = ax.imshow(upsample_map(m, image.shape[0]), alpha=0.55, cmap="magma")
            ax.set_title(word, fontsize=8)
        if shown is not None:
            fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight")
        fig.suptitle(f"image {image_id}: where Slow looks for each word", fontsize=9)
        return fig

    def show_grounding(self, query: str, image_id: int) -> None:
        """Display :meth:`grounding_figure` (in a notebook)."""
        from IPython.display import display

        display(self.grounding_figure(query, image_id))


def normalise_query(query: str, keep: Iterable[str] = ()) -> str:
    """A query as the captions are written: lower case, one space between words, punctuation
    read as a space unless it is in ``keep`` (the marks the vocabulary knows, such as ","),
    which stays attached to the word before it (``"A red circle."`` -> ``"a red circle"``)."""
    keep = set(keep)
    text = re.sub(r"[^\w\s]", lambda m: m.group() if m.group() in keep else " ", query.lower())
    return re.sub(r"\s+([^\w\s])", r"\1", " ".join(text.split()))


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """``fig`` as PNG bytes (for an image widget), drawn by its own canvas."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
