"""Scale: cost and memory projections, sharded search helpers, multi-process (DDP) training, and
training on real datasets (Flickr30K / COCO).

Taught in notebooks/06_demo_and_scale.ipynb.
"""
