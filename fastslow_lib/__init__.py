"""fastslow: a small library behind the course on Fast and Slow text-to-visual retrieval.

Reproduces, at laptop scale, Miech et al., "Thinking Fast and Slow: Efficient Text-to-Visual
Retrieval with Transformers" (CVPR 2021). Each module names the notebook that teaches it:

* ``fastslow_lib.data`` (the embedded world), ``tokenizer``, ``metrics``, ``presets``, ``seed``,
  ``device``, ``progress``, ``results``, ``exercises``: notebooks/00_data.ipynb;
* ``models`` (the Fast dual encoder), ``losses`` (InfoNCE), ``training``, ``evaluate``,
  ``checkpoint``, ``index`` (FAISS, with an exact torch fallback): notebooks/01_fast.ipynb;
* ``models.slow`` (the Slow captioner: pyramid, cross-attention decoders, ITM head),
  ``slow_training``, ``slow_scoring`` (batched scoring), ``matching`` (ITM with hard negatives),
  ``grounding`` (per-word attention maps): notebooks/02_slow.ipynb;
* ``distill`` (look-alike groups, cached teacher scores, the distillation loss and student):
  notebooks/03_distill.ipynb;
* ``rerank`` (Slow's cached gallery, Fast's top K re-scored by Slow), ``timing`` (device-aware
  timers, per-stage breakdowns): notebooks/04_rerank.ipynb.
"""

__version__ = "0.1.0"
