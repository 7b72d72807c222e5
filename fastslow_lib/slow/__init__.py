"""The Slow captioner: visual pyramid, cross-attention decoders, batched scoring, training, the
ITM baseline and grounding maps.

Taught in notebooks/02_slow.ipynb.
"""
