"""Configuration, the bottom layer: every config dataclass, the presets that size the course,
and :mod:`~fastslow_lib.config.checks`, the argument checks (ints, numbers, bools, seeds) that
the configs and the rest of the library share.

Nothing here imports from the rest of the library, so a config can be read, written and
compared without pulling in data generation or training. Taught in notebooks/00_data.ipynb
(presets and the world), 01 (Fast's budget), 02 (Slow's), 03 (distillation) and 05 (video).
"""
