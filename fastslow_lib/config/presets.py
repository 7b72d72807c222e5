"""Presets: one name that sizes the whole course for a machine.

* ``tiny``: seconds, for unit tests;
* ``cpu`` (the default): the course on a 2-core laptop;
* ``gpu``: a larger world for a machine with a GPU.

The environment variable ``FASTSLOW_PRESET`` picks the preset when none is named. Later parts of
the course (Fast, Slow, distillation) add their own settings to :class:`Preset`.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from fastslow_lib.config.training import (
    DistillConfig,
    FastTrainConfig,
    ReleaseBudgets,
    SlowTrainConfig,
    VideoSettings,
)
from fastslow_lib.config.world import ClipConfig, WorldConfig


@dataclass(frozen=True)
class Preset:
    """A named set of sizes for the world and, later, the models."""

    name: str
    description: str
    world: WorldConfig
    #: Training budget of the Fast dual encoder (notebook 01).
    fast_train: FastTrainConfig = field(default_factory=FastTrainConfig)
    #: Overrides of :class:`fastslow_lib.fast.config.FastConfig` (sizes of the towers).
    fast_model: dict[str, Any] = field(default_factory=dict)
    #: Training budget of the Slow captioner (notebook 02): Fast's epochs and pairs by default.
    slow_train: SlowTrainConfig = field(default_factory=SlowTrainConfig)
    #: Overrides of :class:`fastslow_lib.slow.config.SlowConfig`.
    slow_model: dict[str, Any] = field(default_factory=dict)
    #: Test queries Slow scores against the whole test gallery (the same subset for all models).
    slow_queries: int = 200
    #: How the Fast student is distilled from Slow (notebook 03).
    distill: DistillConfig = field(default_factory=DistillConfig)
    #: The demonstration student's budget (notebook 03); ``None``: ``fast_train``'s. (The
    #: release student always has the release Fast's budget.)
    distill_train: FastTrainConfig | None = None
    #: The clip world of notebook 05.
    clips: ClipConfig = field(default_factory=ClipConfig)
    #: The video models' sizes and budgets (notebook 05).
    video: VideoSettings = field(default_factory=VideoSettings)
    #: The release models' full budgets (``make reproduce``); ``None``: the preset's own
    #: budgets are already full ones.
    release: ReleaseBudgets | None = None
    #: Pairs of each kind of the held-out probe that decides Slow's probe target (notebook 02,
    #: :func:`fastslow_lib.data.world.held_out_probe`); an evaluation size, in no model's key.
    held_out_probe_pairs: int = 1000

    def distill_demo(self) -> FastTrainConfig:
        """The demonstration student's budget (notebook 03)."""
        return self.distill_train if self.distill_train is not None else self.fast_train

    def release_budgets(self) -> ReleaseBudgets:
        """The budgets the release models of this preset are trained with."""
        if self.release is not None:
            return self.release
        return self.live_budgets()

    def live_budgets(self) -> ReleaseBudgets:
        """The notebooks' short demonstrations: the preset's own budgets, as the registry's
        factory takes them (``create_model(name, budgets=preset.live_budgets())``). The
        demonstration student trains with :meth:`distill_demo`."""
        return ReleaseBudgets(self.fast_train, self.slow_train, self.distill, self.video)

    def with_caption_detail(self, detail: float) -> Preset:
        """This preset on the world whose captions say ``detail`` of their scene
        (``WorldConfig.caption_detail``; notebook 03): the same sizes and budgets, so models
        trained on either world are compared at equal budget."""
        return replace(self, world=replace(self.world, caption_detail=detail))


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        "tiny",
        "a few hundred images; unit tests in seconds",
        WorldConfig(n_train=300, n_val=60, n_test=60, n_small=60, probe_pairs_per_kind=10),
        FastTrainConfig(epochs=2, batch_size=32, val_queries=60),
        {"embed_dim": 32, "text_width": 32, "text_layers": 1, "text_heads": 2},
        SlowTrainConfig(epochs=2, batch_size=32),
        {"width": 32, "heads": 2},
        20,
        clips=ClipConfig(n_train=200, n_val=40, n_test=40, probe_pairs_per_kind=10),
        video=VideoSettings(
            FastTrainConfig(epochs=2, batch_size=32, val_queries=40),
            {"image_size": 32, "embed_dim": 32, "text_width": 32, "text_layers": 1,
             "text_heads": 2},
            SlowTrainConfig(epochs=2, batch_size=32),
            {"image_size": 32, "width": 32, "heads": 2},
            20,
        ),
        held_out_probe_pairs=20,
    ),
    "cpu": Preset(
        "cpu",
        "the course on a 2-core laptop (test split: 1,000 images, 5,000 captions)",
        WorldConfig(),
        # Live demonstrations: one epoch each, under a minute on 2 cores; each is compared with
        # its own starting point (the history's "before").
        fast_train=FastTrainConfig(epochs=1),
        slow_train=SlowTrainConfig(epochs=1),
        # The student needs an epoch of plain batches before its look-alike batches: started on
        # look-alikes, one epoch leaves it near chance.
        distill=DistillConfig(start_epoch=1),
        distill_train=FastTrainConfig(epochs=2),
        video=VideoSettings(
            FastTrainConfig(epochs=1, batch_size=64, val_queries=500),
            slow_train=SlowTrainConfig(epochs=1, batch_size=64),
        ),
        # The release models (data/release/): Fast until its validation R@1 flattens, Slow
        # until its validation loss flattens and the probe's position swaps, learned last, are
        # learned (notebook 02: the release curve and the budget table of results/slow_budget.json).
        release=ReleaseBudgets(
            FastTrainConfig(epochs=24),
            SlowTrainConfig(epochs=30, batch_size=64),
            DistillConfig(start_epoch=12),
            VideoSettings(
                FastTrainConfig(epochs=12, batch_size=64, val_queries=500),
                slow_train=SlowTrainConfig(epochs=12, batch_size=64),
            ),
        ),
    ),
    "gpu": Preset(
        "gpu",
        "a five times larger training split for a GPU; the same 1k test protocol",
        WorldConfig(n_train=50_000, n_val=1_000, n_test=1_000, n_small=1_000,
                    probe_pairs_per_kind=300),
        FastTrainConfig(epochs=20, batch_size=256),
        {"vision_kwargs": {"layers": (2, 2, 2, 2), "channels": (32, 64, 128, 256),
                           "stem_type": "deep", "stem_width": 32},
         "text_width": 256, "text_layers": 4},
        SlowTrainConfig(epochs=20, batch_size=256),
        {"vision_kwargs": {"layers": (2, 2, 2, 2), "channels": (32, 64, 128, 256),
                           "stem_type": "deep", "stem_width": 32},
         "width": 256, "heads": 8},
        1000,
    ),
}


def get_preset(name: str | None = None) -> Preset:
    """The preset called ``name``; ``None`` reads ``$FASTSLOW_PRESET``, else ``"cpu"``."""
    if name is None:
        name = os.environ.get("FASTSLOW_PRESET", "cpu")
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]
