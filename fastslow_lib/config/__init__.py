"""Configuration, the bottom layer: every config dataclass and the presets that size the course.

Nothing here imports from the rest of the library, so a config can be read, written and
compared without pulling in data generation or training. Taught in notebooks/00_data.ipynb
(presets and the world), 01 (Fast's budget), 02 (Slow's), 03 (distillation) and 05 (video).
"""
