"""The embedded world: scenes, images, captions, probes and PyTorch datasets.

Taught in notebooks/00_data.ipynb.
"""

from fastslow_lib.data.captions import (
    CaptionForm,
    CaptionParseError,
    Mention,
    Relation,
    caption_is_true,
    is_true,
    parse_caption,
)
from fastslow_lib.data.datasets import (
    RetrievalProtocol,
    TrainPairs,
    images_to_tensor,
    make_collate,
)
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
    "generate_distractors",
    "generate_split",
    "images_to_tensor",
    "is_true",
    "load_world",
    "make_collate",
    "parse_caption",
    "render_scene",
    "sample_scene",
    "swap_attribute",
    "truth_matrix",
]
