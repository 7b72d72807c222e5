"""The registry of models: one entry per model, one factory that loads or trains any of them.

In the spirit of timm's ``create_model`` and open_clip's pretrained table. Each entry
(:class:`ModelSpec`) says what a model is, where it is taught, which models it is made from
(``parents``) and its **recipe**: a function of a :class:`Models` store that returns the
model's :class:`~fastslow_lib.core.cache.Recipe` (its key, how to build it, how to train it:
``fast_recipe``, ``slow_recipe``, ... of the method's parts, given the preset's sizes and the
store's budgets). :meth:`Models.get` (:func:`create_model` in one call) turns a name into a
model through the one :func:`~fastslow_lib.core.cache.load_or_train`: the folder's model when
it was made from exactly that key and parents, else trained and saved there.

Adding a model is one :func:`register` call with its recipe::

    register(ModelSpec("fast_wide", "Fast with wider towers", "01_fast", recipe=lambda m, name:
        fast_recipe(m.world, m.tokenizer, {**m.preset.fast_model, "embed_dim": 512},
                    m.budgets_for(name).fast_train, device=m.device)))

The course's release models (``data/release/``, ``make reproduce``) are this registry's
entries; the course's tooling checks their files against its manifest
(``fastslow_course.release``). Taught in notebooks/01_fast.ipynb (section "Release models").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow_lib.config.presets import Preset, get_preset
from fastslow_lib.config.training import ReleaseBudgets
from fastslow_lib.core.cache import Recipe, Trained, file_fingerprint, load_or_train
from fastslow_lib.core.checkpoint import cached_arrays
from fastslow_lib.core.device import pick_device
from fastslow_lib.core.paths import repo_root
from fastslow_lib.core.progress import progress
from fastslow_lib.data.clips import ClipWorld, load_clip_world
from fastslow_lib.data.world import World, binding_twins, load_world
from fastslow_lib.distill import distilled_recipe, ranking_candidates, ranking_recipe
from fastslow_lib.fast.training import fast_recipe
from fastslow_lib.rerank import SlowGallery
from fastslow_lib.slow.matching import matching_recipe, mine_hard_negatives
from fastslow_lib.slow.training import slow_recipe
from fastslow_lib.video.training import video_fast_recipe, video_slow_recipe

__all__ = ["ITM_MINING", "KINDS", "RANKING_INPUTS", "REGISTRY", "TWINS", "ModelSpec", "Models",
           "create_model", "list_models", "model_spec", "register"]

#: ``fast``: scored by embeddings (indexable); ``slow``: scored pair by pair.
KINDS = ("fast", "slow")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the registry: its name (= its folder), what it is, the notebook that
    teaches it, its recipe ``recipe(models, name) -> Recipe``, the models it is made from,
    its kind (:data:`KINDS`) and whether it lives in the clip world (notebook 05)."""

    name: str
    what: str
    notebook: str
    recipe: Callable[[Models, str], Recipe]
    parents: tuple[str, ...] = ()
    kind: str = "fast"
    clips: bool = False


#: Every model, parents before children (the order ``make reproduce`` trains them in).
REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`REGISTRY` (its parents must be registered before it)."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register takes a ModelSpec, got {type(spec).__name__}")
    if spec.name in REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    missing = [p for p in spec.parents if p not in REGISTRY]
    if missing:
        raise ValueError(f"{spec.name!r} names unregistered parents {missing}; register them first")
    if spec.kind not in KINDS:
        raise ValueError(f"{spec.name!r} has kind {spec.kind!r}; expected one of {KINDS}")
    REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """The registered names, parents before children."""
    return list(REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The entry of ``name``; an unknown name is a clear error listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]


@dataclass
class Models:
    """The registry's models of one preset, in one folder (``root/NAME``), on one device.

    ``budgets``: the training budgets (default: the preset's release budgets; a notebook's
    short demonstration passes :meth:`~fastslow_lib.config.presets.Preset.live_budgets`).
    ``parents``: another store the parents come from (a demonstration student taught by the
    release models); default this one. ``seeds``: a model's training seed other than its
    budget's. ``may_train=False`` only loads.
    """

    preset: Preset = field(default_factory=get_preset)
    device: torch.device = field(default_factory=pick_device)
    root: Path | None = None
    world: World | None = None
    budgets: ReleaseBudgets | None = None
    parents: Models | None = None
    seeds: Mapping[str, int] = field(default_factory=dict)
    may_train: bool = True
    #: Where recipes keep their inputs (mined negatives, a teacher's scores); default
    #: ``root/inputs``.
    cache_dir: Path | None = None
    _models: dict[str, Trained] = field(default_factory=dict, repr=False)
    _inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.seeds) - set(REGISTRY))
        if unknown:
            raise ValueError(f"seeds name unknown models {unknown}; expected some of "
                             f"{sorted(REGISTRY)}")
        if self.root is None:
            self.root = _checkpoints() / f"models-{self.preset.name}"
        self.root = Path(self.root)
        if self.budgets is None:
            self.budgets = self.preset.release_budgets()
        self.cache_dir = Path(self.cache_dir) if self.cache_dir is not None else \
            self.root / "inputs"
        if self.world is None:
            self.world = (self.parents.world if self.parents is not None
                          else load_world(self.preset.world))

    # -- what recipes read ----------------------------------------------------------------
    @cached_property
    def tokenizer(self):
        """The image world's tokenizer."""
        return self.world.tokenizer()  # type: ignore[union-attr]

    @cached_property
    def clips(self) -> ClipWorld:
        """The clip world of notebook 05 (loaded when a video model is asked for)."""
        return load_clip_world(self.preset.clips)

    def budgets_for(self, name: str) -> ReleaseBudgets:
        """The budgets model ``name`` is trained with (its seed from ``seeds`` if named)."""
        b: ReleaseBudgets = self.budgets  # type: ignore[assignment]
        return b.with_seed(self.seeds[name]) if name in self.seeds else b

    def folder(self, name: str) -> Path:
        """The model folder of ``name`` in this store."""
        return self.root / name  # type: ignore[operator]

    def parent(self, name: str) -> Trained:
        """Parent model ``name`` (from ``parents`` if given, else this store)."""
        return (self.parents or self).get(name)

    def parent_folder(self, name: str) -> Path:
        """Parent model ``name``'s folder (its weights' hash joins a child's key)."""
        return (self.parents or self).folder(name)

    # -- the factory ----------------------------------------------------------------------
    def get(self, name: str) -> Trained:
        """Model ``name``: ``(model, history, loaded)``, loaded or trained once per store."""
        spec = model_spec(name)
        if name not in self._models:
            self.before_load(name)
            for parent in spec.parents:
                self.parent(parent)
            self._models[name] = load_or_train(self.folder(name), spec.recipe(self, name),
                                               device=self.device, may_train=self.may_train,
                                               rebuild_hint=self.rebuild_hint(name))
        return self._models[name]

    def before_load(self, name: str) -> None:
        """Called before ``name`` is loaded or trained (the course checks its manifest here)."""

    def rebuild_hint(self, name: str) -> str:
        """How to rebuild ``name`` (ends the error of a load-only store); none by default."""
        return ""

    # -- recipes' inputs ------------------------------------------------------------------
    def itm_negatives(self) -> np.ndarray:
        """Each training caption's hard negatives, mined by the parent Fast (:data:`ITM_MINING`)."""
        return mine_hard_negatives(self.parent("fast").model, self.tokenizer,
                                   self.world.train,  # type: ignore[union-attr]
                                   k=ITM_MINING["k"], pool=ITM_MINING["pool"],
                                   max_len=self.budgets.fast_train.max_len,  # type: ignore[union-attr]
                                   device=self.device)

    def twin_candidates(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """The upper bound's inputs: ``(candidates, twin images, stats)``.

        ``candidates[c] = (own image, index of the caption's twin in the twin images or -1)``
        (:func:`fastslow_lib.data.world.binding_twins`, seed ``TWINS["seed"]``); ``stats``
        counts them (how many captions have a twin; twins per swap kind). Made once per store
        (about a minute: the twins are rendered).
        """
        if "twins" not in self._inputs:
            split = self.world.train  # type: ignore[union-attr]
            images, twin_of, kinds, _ = binding_twins(split, seed=TWINS["seed"])
            cand = np.stack([split.caption_image.astype(np.int64), twin_of], axis=1)
            stats = {"twin_images": int(len(images)),
                     "captions_with_a_twin": int((twin_of >= 0).sum()),
                     "captions": int(len(twin_of)),
                     "twins_by_kind": {k: kinds.count(k) for k in sorted(set(kinds))}}
            self._inputs["twins"] = (cand, images, stats)
        return self._inputs["twins"]

    def ranking_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """Signal (b)'s candidates (each training caption's image, then its hard negatives by
        the parent Fast) and the parent Slow's scores of them, cached in ``cache_dir`` keyed
        on both models' weights."""
        b, world = self.budgets, self.world
        cache = self.cache_dir / f"ranking_teacher_{self.preset.name}.safetensors"  # type: ignore[operator]
        config = {"miner": file_fingerprint(self.parent_folder("fast")),
                  "teacher": file_fingerprint(self.parent_folder("slow")),
                  "negatives": b.ranking.negatives, "world": world.config.key(),  # type: ignore[union-attr]
                  **ranking_mining(world)}  # type: ignore[arg-type]

        def compute() -> dict[str, np.ndarray]:
            fast, slow = self.parent("fast").model, self.parent("slow").model
            split, max_len = world.train, b.fast_train.max_len  # type: ignore[union-attr]
            cand = ranking_candidates(fast, self.tokenizer, split, negatives=b.ranking.negatives,  # type: ignore[union-attr]
                                      pool=RANKING_INPUTS["pool"], max_len=max_len,
                                      device=self.device,
                                      **ranking_mining(world))  # type: ignore[arg-type]
            gallery = SlowGallery(slow, split.images, device=self.device)
            scores = np.zeros(cand.shape, dtype=np.float32)
            for s in progress(range(0, len(cand), 512), desc="teacher scores of candidates"):
                texts = list(split.captions[s : s + 512])
                scores[s : s + 512] = gallery.candidate_scores(self.tokenizer, texts,
                                                               cand[s : s + 512], max_len=max_len)
            return {"candidates": cand, "scores": scores}

        arrays, _ = cached_arrays(cache, config, compute)
        return arrays["candidates"], arrays["scores"]


def _checkpoints() -> Path:
    """``checkpoints/`` of the repository, or of the working directory outside it."""
    try:
        return repo_root() / "checkpoints"
    except FileNotFoundError:
        return Path.cwd() / "checkpoints"


def create_model(name: str, preset: Preset | str | None = None, *,
                 root: str | Path | None = None, device: torch.device | str | None = None,
                 **store: Any) -> Trained:
    """Model ``name`` of the registry in one call: ``(model, history, loaded)``.

    Loaded from ``root/NAME`` when it was made from exactly its recipe, else trained at the
    store's budgets (``budgets=``, default the release budgets) and saved there. Other
    keywords go to :class:`Models` (``world``, ``budgets``, ``parents``, ``may_train``, ...).
    """
    preset = get_preset(preset) if preset is None or isinstance(preset, str) else preset
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return Models(preset, dev, Path(root) if root is not None else None, **store).get(name)


# -- the entries ---------------------------------------------------------------------------
#: How the ITM baseline's hard negatives are mined by the release Fast (its parent ``miner``):
#: the key of ``itm`` in place of the negatives' bytes, which float rounding can reorder on
#: another CPU.
ITM_MINING: dict[str, Any] = {"by": "miner", "k": 8, "pool": 32}
#: The same for signal (b)'s candidates (:meth:`Models.ranking_inputs`; ``negatives`` is the
#: ranking budget's).
RANKING_INPUTS: dict[str, Any] = {"by": "miner", "pool": 32}


def ranking_mining(world: World) -> dict[str, bool]:
    """How signal (b)'s negatives are mined in ``world``: ``{}`` (skip the images a caption is
    true of, the scene descriptions as an oracle) where every caption names its whole scene;
    ``{"skip_true": False}`` (the labels alone, as on real data) where captions leave things
    out (``caption_detail`` below 1). Part of the inputs' key, only where it applies."""
    return {} if world.config.caption_detail >= 1 else {"skip_true": False}


#: The upper bound's negatives: :func:`~fastslow_lib.data.world.binding_twins` of the training
#: split with this seed (deterministic: no model involved).
TWINS: dict[str, Any] = {"by": "binding_twins", "seed": 0}


def _fast(m: Models, name: str) -> Recipe:
    return fast_recipe(m.world, m.tokenizer, m.preset.fast_model,  # type: ignore[arg-type]
                       m.budgets_for(name).fast_train, device=m.device)


def _slow(**overrides: Any) -> Callable[[Models, str], Recipe]:
    def recipe(m: Models, name: str) -> Recipe:
        return slow_recipe(m.world, m.tokenizer, {**m.preset.slow_model, **overrides},  # type: ignore[arg-type]
                           m.budgets_for(name).slow_train, device=m.device)
    return recipe


def _distilled(m: Models, name: str) -> Recipe:
    b = m.budgets_for(name)
    return distilled_recipe(
        m.world, m.tokenizer, m.preset.fast_model, b.fast_train, b.distill,  # type: ignore[arg-type]
        fast_model=m.parent("fast").model, slow_model=m.parent("slow").model,
        fast_checkpoint=m.parent_folder("fast"), slow_checkpoint=m.parent_folder("slow"),
        teacher_cache=m.cache_dir / f"teacher_scores_{m.preset.name}.safetensors",  # type: ignore[operator]
        device=m.device)


def _lookalike_batches(m: Models, name: str) -> Recipe:
    b = m.budgets_for(name)
    return distilled_recipe(
        m.world, m.tokenizer, m.preset.fast_model, b.fast_train,  # type: ignore[arg-type]
        replace(b.distill, weight=0.0), fast_model=m.parent("fast").model, slow_model=None,
        fast_checkpoint=m.parent_folder("fast"), slow_checkpoint=None, teacher_cache=None,
        device=m.device)


def _video_fast(temporal: str) -> Callable[[Models, str], Recipe]:
    def recipe(m: Models, name: str) -> Recipe:
        return video_fast_recipe(m.clips, m.clips.tokenizer(), m.budgets_for(name).video,
                                 temporal=temporal, init_from=m.parent_folder("fast"),
                                 device=m.device)
    return recipe


def _video_slow(m: Models, name: str) -> Recipe:
    return video_slow_recipe(m.clips, m.clips.tokenizer(), m.budgets_for(name).video,
                             init_from=m.parent_folder("slow"), device=m.device)


def _itm(m: Models, name: str) -> Recipe:
    return matching_recipe(m.world, m.tokenizer, m.preset.slow_model,  # type: ignore[arg-type]
                           m.budgets_for(name).itm_train, m.itm_negatives,
                           init_from=m.parent_folder("slow_forward_only"),
                           parents={"miner": m.parent_folder("fast")},
                           negatives_key=ITM_MINING, device=m.device)


def _ranked(teacher: bool) -> Callable[[Models, str], Recipe]:
    def recipe(m: Models, name: str) -> Recipe:
        b = m.budgets_for(name)
        cfg = replace(b.ranking, teacher=teacher)
        parents = {"miner": m.parent_folder("fast"),
                   **({"teacher": m.parent_folder("slow")} if teacher else {})}
        inputs = {"candidates": {**RANKING_INPUTS, "negatives": cfg.negatives,
                                 **ranking_mining(m.world)},  # type: ignore[arg-type]
                  "teacher_scores": {"by": "teacher"} if teacher else None}
        return ranking_recipe(m.world, m.tokenizer, m.preset.fast_model, b.fast_train, cfg,  # type: ignore[arg-type]
                              lambda: m.ranking_inputs()[0],
                              (lambda: m.ranking_inputs()[1]) if teacher else None,
                              parents=parents, inputs_key=inputs, device=m.device)
    return recipe


def _twins(m: Models, name: str) -> Recipe:
    b = m.budgets_for(name)
    return ranking_recipe(m.world, m.tokenizer, m.preset.fast_model, b.fast_train, b.twins,  # type: ignore[arg-type]
                          lambda: m.twin_candidates()[0], None, parents={},
                          inputs_key={"candidates": TWINS, "teacher_scores": None,
                                      "candidate_images": TWINS},
                          images=lambda: m.twin_candidates()[1], device=m.device)


for _spec in (
    ModelSpec("fast", "the Fast dual encoder", "01_fast", _fast),
    ModelSpec("slow", "the Slow captioner (two upsampling steps, both directions)", "02_slow",
              _slow(), kind="slow"),
    ModelSpec("fast_distilled", "Fast distilled from Slow", "03_distill", _distilled,
              ("fast", "slow")),
    ModelSpec("fast_lookalike_batches", "control: Fast on signal (a)'s look-alike batches, "
              "no teacher", "03_distill", _lookalike_batches, ("fast",)),
    ModelSpec("video_fast_mean", "video Fast, mean over frames", "05_video", _video_fast("mean"),
              ("fast",), clips=True),
    ModelSpec("video_fast_transformer", "video Fast, a transformer over frames", "05_video",
              _video_fast("transformer"), ("fast",), clips=True),
    ModelSpec("video_slow", "video Slow (space-time pyramid)", "05_video", _video_slow,
              ("slow",), kind="slow", clips=True),
    ModelSpec("slow_forward_only", "ablation: Slow with the forward decoder only", "02_slow",
              _slow(bidirectional=False), kind="slow"),
    ModelSpec("slow_coarse_only", "ablation: Slow without upsampling (stride 32 only)",
              "02_slow", _slow(layer_strides=(32, 32, 32)), kind="slow"),
    ModelSpec("itm", "baseline: image-text matching head on Slow's trunk", "02_slow", _itm,
              ("fast", "slow_forward_only"), kind="slow"),
    ModelSpec("fast_ranked", "Fast distilled from Slow's ranking of its hard negatives",
              "03_distill", _ranked(teacher=True), ("fast", "slow")),
    ModelSpec("fast_hard_negatives", "control: Fast with the same hard negatives, no teacher",
              "03_distill", _ranked(teacher=False), ("fast",)),
    ModelSpec("fast_binding_twins", "upper bound: Fast with each caption's binding twin as a "
              "negative", "03_distill", _twins),
):
    register(_spec)
