"""fastslow: a small library behind the course on Fast and Slow text-to-visual retrieval.

Reproduces, at laptop scale, Miech et al., "Thinking Fast and Slow: Efficient Text-to-Visual
Retrieval with Transformers" (CVPR 2021). Each module names the notebook that teaches it:

* ``fastslow_lib.data`` (the embedded world), ``tokenizer``, ``metrics``, ``presets``, ``seed``,
  ``device``, ``progress``, ``results``, ``exercises``: notebooks/00_data.ipynb;
* ``models`` (the Fast dual encoder), ``losses`` (InfoNCE), ``training``, ``evaluate``,
  ``checkpoint``, ``index`` (FAISS, with an exact torch fallback): notebooks/01_fast.ipynb.
"""

__version__ = "0.1.0"
