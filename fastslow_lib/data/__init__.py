"""Data: the embedded world (scenes, images, captions, probes), its clips, real datasets, and
the PyTorch views the training loops read.

Above :mod:`fastslow_lib.config` and :mod:`fastslow_lib.core`, below every model: nothing here
imports training, presets or results. A world is loaded from its config
(``load_world(get_preset(name).world)``); the preset look-up happens in the caller.

* the image world (``scene``, ``render``, ``captions``, ``caption_parser``, ``truth``,
  ``world``, ``folders``, ``datasets``, ``tokenizer``): notebooks/00_data.ipynb;
* the 5K protocol (``protocols``: COCO-sized, with near-duplicates): notebooks/04_rerank.ipynb;
* the clip world (``clip_scripts``, ``clips``): notebooks/05_video.ipynb;
* the real-data loaders (``real``, ``karpathy``, ``vatex``): notebooks/06_demo_and_scale.ipynb.
"""

from fastslow_lib.data.caption_parser import CaptionParseError, caption_is_true, parse_caption
from fastslow_lib.data.captions import CaptionForm, Mention, Relation, is_true
from fastslow_lib.data.datasets import (
    RetrievalProtocol,
    TrainPairs,
    images_to_tensor,
    make_collate,
)
from fastslow_lib.data.protocols import load_test5k
from fastslow_lib.data.render import render_scene
from fastslow_lib.data.scene import Obj, Scene, sample_scene, swap_attribute
from fastslow_lib.data.truth import truth_matrix
from fastslow_lib.data.world import (
    PROBE_KINDS,
    SPLITS,
    ProbeSet,
    Split,
    World,
    WorldConfig,
    generate_distractors,
    generate_probe,
    generate_split,
    held_out_probe,
    load_world,
)

__all__ = [
    "PROBE_KINDS",
    "SPLITS",
    "CaptionForm",
    "CaptionParseError",
    "Mention",
    "Obj",
    "ProbeSet",
    "Relation",
    "RetrievalProtocol",
    "Scene",
    "Split",
    "TrainPairs",
    "World",
    "WorldConfig",
    "caption_is_true",
    "generate_probe",
    "held_out_probe",
    "generate_distractors",
    "generate_split",
    "images_to_tensor",
    "is_true",
    "load_test5k",
    "load_world",
    "make_collate",
    "parse_caption",
    "render_scene",
    "sample_scene",
    "swap_attribute",
    "truth_matrix",
]
