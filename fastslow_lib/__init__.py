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
* ``registry``: every model by name, made by one factory (``create_model``).

The course's own tooling (release models, the results file, the claims table, exercise
checkers, the search widget) is not part of the method: it is the separate package
``fastslow_course`` (``course/``), which imports this one and never the other way round.

**The flat namespace.** The notebooks import the library once, as d2l does::

    import fastslow_lib as fs

    preset = fs.get_preset()
    world = fs.load_world(preset.world)

Every name the course uses is an attribute of the package, whatever module defines it
(:data:`EXPORTS` says which). The attributes are lazy (PEP 562): ``import fastslow_lib`` imports
none of the modules, and so not torch; ``fs.NAME`` imports NAME's module on first use and keeps
the value. The full paths (``from fastslow_lib.fast.model import DualEncoder``) work as before.
"""

from __future__ import annotations

from fastslow_lib.core.namespace import flat_namespace

__version__ = "0.1.0"

#: The flat namespace, as data: module -> the public names ``fs.NAME`` takes from it (the module
#: that defines each name, not one that re-exports it). Grouped in the order of the course map.
EXPORTS: dict[str, tuple[str, ...]] = {
    # config
    "fastslow_lib.config.presets": ("get_preset",),
    "fastslow_lib.config.training": ("DistillConfig",),
    # core
    "fastslow_lib.core.checkpoint": ("read_metadata",),
    "fastslow_lib.core.device": ("describe_device", "machine_name", "pick_device"),
    "fastslow_lib.core.intervals": (
        "LEVEL", "Estimate", "hits_at", "hits_from_bits", "paired_difference_interval",
        "prediction_interval", "proportion_interval", "recall_estimates", "smallest_within",
        "verdict",
    ),
    "fastslow_lib.core.metrics": (
        "consistent_at_1", "image_to_text_metrics", "oracle_recall_at_1", "pairwise_accuracy",
        "r1_ceiling", "ranks_of_gt", "retrieval_metrics",
    ),
    "fastslow_lib.core.cache": ("Recipe", "Trained", "load_or_train"),
    "fastslow_lib.core.paths": ("repo_root",),
    "fastslow_lib.core.seed": ("seed_everything",),
    "fastslow_lib.core.timing": ("StageTimer", "Timer", "format_seconds", "measure"),
    # data: the image world, the 5K protocol, the clips, real datasets
    "fastslow_lib.data.captions": (
        "CAPTION_KINDS", "CaptionForm", "Mention", "caption_kind", "caption_scene_n",
    ),
    "fastslow_lib.data.caption_parser": ("caption_is_true", "parse_caption"),
    "fastslow_lib.data.datasets": ("RetrievalProtocol", "images_to_tensor"),
    "fastslow_lib.data.render": ("render_scene",),
    "fastslow_lib.data.scene": ("sample_scene", "swap_attribute"),
    "fastslow_lib.data.tokenizer": (
        "decode", "encode", "lengths", "load_pretrained_tokenizer", "unknown_words",
    ),
    "fastslow_lib.data.truth": ("truth_matrix",),
    "fastslow_lib.data.world": (
        "PROBE_KINDS", "generate_distractors", "generate_split", "held_out_probe", "load_world",
        "scene_swaps",
    ),
    "fastslow_lib.data.protocols": ("load_test5k", "parts_5k"),
    "fastslow_lib.data.clip_scripts": ("FRAMES",),
    "fastslow_lib.data.clips": ("TIMELINE", "load_clip_world"),
    "fastslow_lib.data.karpathy": ("load_karpathy",),
    "fastslow_lib.data.real": ("DatasetMissingError",),
    "fastslow_lib.data.vatex": ("load_vatex",),
    # fast
    "fastslow_lib.fast.config": ("MAX_LOGIT_SCALE", "FastConfig"),
    "fastslow_lib.fast.towers": ("TextTower",),
    "fastslow_lib.fast.model": ("DualEncoder", "FastOutput"),
    "fastslow_lib.fast.losses": ("info_nce",),
    "fastslow_lib.fast.training": ("fast_recipe",),
    "fastslow_lib.fast.evaluate": (
        "embed_images", "embed_texts", "fast_pair_scorer", "fast_scores", "probe_accuracy",
        "probe_outcomes", "retrieval_report", "twin_cosines",
    ),
    "fastslow_lib.fast.exact_search": ("exact_search", "recall_at_k"),
    # faiss is optional: HAS_FAISS says whether it imported; fs.faiss is the module, or None
    "fastslow_lib.fast.faiss_index": ("HAS_FAISS", "faiss"),
    "fastslow_lib.fast.index": ("VectorIndex",),
    "fastslow_lib.fast.pretrained": ("PretrainedMissingError", "minilm_dir"),
    # slow
    "fastslow_lib.slow.config": ("SlowConfig",),
    "fastslow_lib.slow.decoder": ("Attention",),
    "fastslow_lib.slow.pyramid": ("position_code_2d",),
    "fastslow_lib.slow.model": ("MatchingOutput", "SlowModel", "SlowOutput"),
    "fastslow_lib.slow.scoring": (
        "caption_tokens", "length_blocks", "slow_pair_scores", "slow_scores", "spread_blocks",
    ),
    "fastslow_lib.slow.training": ("slow_batch", "slow_recipe"),
    "fastslow_lib.slow.matching": ("HARD_NEGATIVES", "RANDOM_NEGATIVES", "itm_learned"),
    "fastslow_lib.slow.grounding": ("named_object_attention", "named_object_cells", "upsample_map",
                                    "word_heatmaps"),
    # distill, rerank
    "fastslow_lib.distill.groups": (
        "GroupBatchSampler", "distilled_recipe", "get_teacher_scores", "group_distillation_loss",
        "lookalike_groups", "make_groups", "soft_cross_entropy", "teacher_scores",
    ),
    "fastslow_lib.rerank": ("SlowGallery", "lookup_reranked_ranks", "rerank",
                            "shortlist_loss_bound"),
    # video, scale
    "fastslow_lib.video.model": ("VideoDualEncoder", "VideoSlowModel", "position_code_1d"),
    "fastslow_lib.scale.costs": (
        "MeasuredCosts", "clustered_unit_vectors", "machines_needed", "noisy_queries",
        "project_costs",
    ),
    # the registry: every model by name, one factory
    "fastslow_lib.registry": ("REGISTRY", "ModelSpec", "Models", "create_model", "list_models",
                              "model_spec", "register"),
}

__all__, __getattr__, __dir__ = flat_namespace(__name__, EXPORTS)
