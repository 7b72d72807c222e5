"""fastslow: a small library behind the course on Fast and Slow text-to-visual retrieval.

Reproduces, at laptop scale, Miech et al., "Thinking Fast and Slow: Efficient Text-to-Visual
Retrieval with Transformers" (CVPR 2021). The package tree is the course map, listed here from
the bottom layer up; each part imports only the parts listed before it (an import-linter
contract in pyproject.toml, checked by ``make test``):

* ``config``: presets, the world's and clips' configs, training budgets (every notebook);
* ``core``: seeds, devices, progress bars, metrics, timing, checkpoints (Hugging Face model
  folders, ``from_pretrained``), ``load_or_train``, and ``fit``, the one training loop
  (notebooks 00 and 01);
* ``data``: the embedded world, its clips, datasets, the tokenizer, real-data loaders
  (notebooks/00_data.ipynb, 05, 06);
* ``fast``: the dual encoder, InfoNCE, training, evaluation, the vector index
  (notebooks/01_fast.ipynb);
* ``slow``: the cross-attention captioner, batched scoring, training, the ITM baseline,
  grounding (notebooks/02_slow.ipynb);
* ``distill`` (notebooks/03_distill.ipynb) and ``rerank`` (notebooks/04_rerank.ipynb);
* ``video`` (notebooks/05_video.ipynb) and ``scale`` (notebooks/06_demo_and_scale.ipynb);
* ``course``: the release models (``release``: verified loading, ``make reproduce``), the
  results file, the claims table, exercise checkers, the search widget.
"""

__version__ = "0.1.0"
