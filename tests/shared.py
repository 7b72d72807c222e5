"""Constants shared by the model tests (imported as ``from shared import ...``; pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

#: Four captions; the first two hold the same words with the colours swapped.
CAPTIONS = [
    "a red circle to the left of a blue square",
    "a blue circle to the left of a red square",
    "a small green triangle above a large red circle",
    "there is a blue square in the top right corner",
]

#: A very narrow timm ResNet for fast tests of the vision side.
TINY_VISION = {
    "layers": (1, 1, 1, 1),
    "channels": (8, 16, 16, 32),
    "stem_type": "deep",
    "stem_width": 8,
}


#: A tiny Fast model's sizes (the distillation tests' students and miners).
TINY_FAST = {"embed_dim": 16, "text_width": 32, "text_layers": 1, "text_heads": 2,
             "vision_kwargs": TINY_VISION}
