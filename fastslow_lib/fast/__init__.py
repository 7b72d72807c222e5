"""The Fast dual encoder: towers, InfoNCE, training, evaluation and the vector index.

Taught in notebooks/01_fast.ipynb (``pretrained``: the offline pretrained towers of
notebooks/06_demo_and_scale.ipynb).
"""
