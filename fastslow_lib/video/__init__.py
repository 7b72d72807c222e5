"""Video: Fast and Slow models over clips, and their training.

Taught in notebooks/05_video.ipynb.
"""
