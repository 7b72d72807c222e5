"""Plumbing every part of the course shares: seeds, devices, progress bars, timers, retrieval
metrics, checkpoints and caches, and the one training loop.

* ``seed``, ``device``, ``progress``, ``metrics``, ``paths``: notebooks/00_data.ipynb;
* ``checkpoint`` (safetensors + JSON metadata), ``cache`` (load-or-train, keyed by
  fingerprints), ``loop`` (``fit``: the training loop of every model): notebooks/01_fast.ipynb;
* ``timing`` (device-aware timers, per-stage breakdowns): notebooks/04_rerank.ipynb.
"""
