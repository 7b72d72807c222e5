"""Training budgets and settings of every model the course trains, as frozen dataclasses.

They sit at the bottom of the library (they import nothing from it), so a preset can name a
budget without importing a training loop, and a checkpoint's metadata can hold one as a dict.

* :class:`FastTrainConfig`: the Fast dual encoder (notebooks/01_fast.ipynb);
* :class:`SlowTrainConfig`: the Slow captioner and its ITM twin (notebooks/02_slow.ipynb);
* :class:`DistillConfig`: how the Fast student is distilled (notebooks/03_distill.ipynb);
* :class:`VideoSettings`: the video models' sizes and budgets (notebooks/05_video.ipynb);
* :class:`ReleaseBudgets`: the full budgets of the release models (``make reproduce``).

Every config validates itself when it is made (the edge), so a training loop never has to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

from fastslow_lib.config.checks import check_int, check_int_fields

__all__ = ["DistillConfig", "FastTrainConfig", "RankingDistillConfig", "ReleaseBudgets",
           "SlowTrainConfig", "TrainConfig", "VideoSettings"]


@dataclass(frozen=True)
class TrainConfig:
    """What the one training loop (:func:`fastslow_lib.core.loop.fit`) needs of any budget.

    AdamW with weight decay on matrices only, a linear warm-up over ``warmup_frac`` of the
    steps, then cosine decay to 0; ``seed`` fixes the initial weights and the batch order.
    """

    epochs: int = 6
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    seed: int = 0
    max_len: int = 48

    def __post_init__(self) -> None:
        check_int_fields(self, "epochs", "batch_size", "max_len", type_error=ValueError)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ValueError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (saved beside checkpoints)."""
        return asdict(self)


@dataclass(frozen=True)
class FastTrainConfig(TrainConfig):
    """The training budget and optimiser settings of the Fast model (stated in notebook 01)."""

    #: Validation queries scored against the whole validation gallery after each epoch.
    val_queries: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int_fields(self, "val_queries", type_error=ValueError)
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (InfoNCE needs negatives)")


@dataclass(frozen=True)
class SlowTrainConfig(TrainConfig):
    """The training budget and optimiser settings of the Slow captioner (stated in notebook 02).

    The default budget is Fast's in epochs and pairs, so notebook 02 compares the two at an
    equal number of training pairs. The batch is half of Fast's, so Slow takes twice the steps
    for the same pairs: a captioning loss compares nothing across a batch, so a smaller batch
    only means more, noisier updates (notebook 02's tuning table gives the measurements).
    """

    batch_size: int = 64
    lr: float = 2e-3
    #: Groups of similar length each decoder runs on per batch (see
    #: :mod:`fastslow_lib.slow.training`).
    length_chunks: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int_fields(self, "length_chunks", type_error=ValueError)


@dataclass(frozen=True)
class DistillConfig:
    """How the student is distilled (stated in notebook 03); its InfoNCE budget is Fast's."""

    #: ``"lookalike"`` (groups of images plain Fast finds similar) or ``"random"``.
    groups: str = "lookalike"
    group_size: int = 4
    #: Share of each batch made of whole groups (the rest random images).
    group_share: float = 0.5
    #: First epoch whose batches hold groups (earlier epochs: plain random batches, no term):
    #: the easy differences first (notebook 03's sweep compares starting at epoch 0).
    start_epoch: int = 3
    weight: float = 1.0
    tau: float = 2.0

    def __post_init__(self) -> None:
        if self.groups not in ("lookalike", "random"):
            raise ValueError(f"groups must be 'lookalike' or 'random', got {self.groups!r}")
        check_int(self.group_size, "group_size", 2, type_error=ValueError)
        if not 0.0 < self.group_share <= 1.0:
            raise ValueError(f"group_share must be in (0, 1], got {self.group_share}")
        if not self.weight >= 0 or not self.tau > 0:
            raise ValueError(f"weight must be >= 0 and tau > 0, got {self.weight}, {self.tau}")
        check_int(self.start_epoch, "start_epoch", 0, type_error=ValueError)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (saved beside checkpoints)."""
        return asdict(self)


@dataclass(frozen=True)
class RankingDistillConfig:
    """Distillation signal (b) (notebook 03): the teacher's ranking of Fast-mined hard negatives.

    For ``rows`` captions of every (random) batch, the student scores the caption against its
    own image and ``negatives`` hard negatives that the plain Fast model ranks highest among the
    images the caption is false of; a listwise term (KL, temperature ``tau``) pulls that softmax
    towards the teacher's over the same candidates. ``teacher=False`` is the control: the same
    candidates with a hard label (the caption's own image) instead of the teacher's scores.
    """

    negatives: int = 3
    rows: int = 32
    #: At 1.0 (tried first) the student stayed at chance on these candidates and its validation
    #: R@1 fell far below plain Fast's by half the release budget; the run was stopped.
    weight: float = 0.1
    tau: float = 2.0
    teacher: bool = True

    def __post_init__(self) -> None:
        check_int(self.negatives, "negatives", 1, type_error=ValueError)
        check_int(self.rows, "rows", 1, type_error=ValueError)
        if not self.weight >= 0 or not self.tau > 0:
            raise ValueError(f"weight must be >= 0 and tau > 0, got {self.weight}, {self.tau}")
        if not isinstance(self.teacher, bool):
            raise ValueError(f"teacher must be a bool, got {self.teacher!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (saved beside checkpoints)."""
        return asdict(self)


def _video_fast_model() -> dict[str, Any]:
    return {"image_size": 32}


def _video_slow_model() -> dict[str, Any]:
    return {"image_size": 32}


@dataclass(frozen=True)
class VideoSettings:
    """Model sizes and training budgets of the video models (a preset's ``video``)."""

    #: Fast and Slow get the same budget: 5 epochs of the training clips in batches of 64
    #: (a batch of 128 halves the steps, which this small training set cannot spare).
    fast_train: FastTrainConfig = field(
        default_factory=lambda: FastTrainConfig(epochs=5, batch_size=64, val_queries=500))
    #: Overrides of :class:`~fastslow_lib.fast.config.FastConfig` (32-pixel frames).
    fast_model: dict[str, Any] = field(default_factory=_video_fast_model)
    slow_train: SlowTrainConfig = field(
        default_factory=lambda: SlowTrainConfig(epochs=5, batch_size=64))
    #: Overrides of :class:`~fastslow_lib.slow.config.SlowConfig`.
    slow_model: dict[str, Any] = field(default_factory=_video_slow_model)
    #: Test queries Slow scores against the whole test gallery of clips.
    slow_queries: int = 200


@dataclass(frozen=True)
class ReleaseBudgets:
    """The full budgets of the release models: what ``make reproduce`` trains them with.

    A preset's own budgets (``fast_train``, ``slow_train``, ...) are the short live
    demonstrations of the notebooks; the course's claims are measured on models trained with
    these (:mod:`fastslow_course.release`, taught in notebooks/01_fast.ipynb). Each budget
    was chosen from its validation curve (the release manifest keeps the curves).
    """

    fast_train: FastTrainConfig
    slow_train: SlowTrainConfig
    #: The student's InfoNCE budget is ``fast_train``'s.
    distill: DistillConfig
    video: VideoSettings
    #: Signal (b)'s students (their InfoNCE budget is ``fast_train``'s too).
    ranking: RankingDistillConfig = field(default_factory=RankingDistillConfig)
    #: The ITM baseline's matching budget, on top of the release forward-only captioner it
    #: starts from (its trunk and pyramid), as ALBEF and BLIP put ITM on a pretrained trunk.
    itm_train: SlowTrainConfig = field(
        default_factory=lambda: SlowTrainConfig(epochs=8, batch_size=32, lr=1e-3))
    #: Notebook 03's upper bound: Fast's budget plus, for 64 captions of every batch, the
    #: caption's binding twin (its image with one binding swapped, the probe's kind of pair) as
    #: a hard negative (``teacher=False``: a hard label).
    twins: RankingDistillConfig = field(default_factory=lambda: RankingDistillConfig(
        negatives=1, rows=64, weight=1.0, teacher=False))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (saved in the release manifest)."""
        return asdict(self)

    def with_seed(self, seed: int) -> ReleaseBudgets:
        """These budgets with every training run's ``seed`` set to ``seed``.

        The same recipe at another seed: ``scripts/reproduce.py --check NAME --seeds 1 2``
        retrains a model this way to measure how far its figures move from seed to seed.
        """
        return _reseeded(self, check_int(seed, "seed", minimum=0))

    def seeds(self) -> list[int]:
        """The distinct seeds of the training runs these budgets describe, sorted."""
        return sorted(set(_seeds(self)))


def _reseeded(config: Any, seed: int) -> Any:
    """``config`` with ``seed`` in every :class:`TrainConfig` it holds (recursively)."""
    if isinstance(config, TrainConfig):
        return replace(config, seed=seed)
    changes = {f.name: _reseeded(getattr(config, f.name), seed) for f in fields(config)
               if is_dataclass(getattr(config, f.name))}
    return replace(config, **changes)


def _seeds(config: Any) -> list[int]:
    if isinstance(config, TrainConfig):
        return [config.seed]
    return [s for f in fields(config) if is_dataclass(getattr(config, f.name))
            for s in _seeds(getattr(config, f.name))]
