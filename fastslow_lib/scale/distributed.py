"""Training the Fast dual encoder on several processes (DistributedDataParallel).

Taught in notebooks/06_demo_and_scale.ipynb.

One process per device, launched by ``torchrun``; each process holds a copy of the model and
computes one slice of every global batch. Three pieces:

* :func:`gather_features` all-gathers the embeddings of every rank, **keeping the gradient**
  to every rank's slice (``torch.distributed.nn.functional.all_gather``, as open_clip's
  ``gather_features(..., gather_with_grad=True)``). A contrastive loss needs this: the
  negatives of a pair are the other pairs of the *global* batch, most of which live on other
  ranks.
* :func:`distributed_info_nce` is :func:`fastslow_lib.fast.losses.info_nce` over the gathered
  global batch, so every rank computes the same loss value as one process on the whole batch.
* :func:`train_fast_ddp` trains through the library's one loop
  (:func:`fastslow_lib.core.loop.fit`, as :func:`fastslow_lib.fast.training.train_fast` does:
  same seed, optimiser, schedule and global batch order); only the model is wrapped in
  ``DistributedDataParallel`` and the sampler hands each rank its slice; :func:`setup` /
  :func:`cleanup` open and close the process group from torchrun's environment variables.
  ``scripts/train_ddp.py`` is the entry point.

Gradient scaling (no correction needed). Let ``L`` be the InfoNCE loss of the global batch and
``z_r`` the embeddings of rank ``r``'s slice. Every rank computes the same ``L`` from the
gathered tensor, so every rank's backward sends ``dL/dz_r`` to slice ``r``; the backward of
the all-gather *sums* what the ``W`` ranks send, so rank ``r`` receives ``W * dL/dz_r``, and
its local parameter gradient is ``W * dL/dz_r * dz_r/dθ``. DDP then *averages* the parameter
gradients over the ``W`` ranks: ``(1/W) * Σ_r W * dL/dz_r * dz_r/dθ = Σ_r dL/dz_r * dz_r/dθ``,
which is exactly the single-process gradient of ``L`` on the global batch. The logit scale is
not gathered: each rank's ``L`` depends on its own copy, each copy gets the full ``dL/ds``,
and DDP's average of ``W`` equal values is ``dL/ds`` again. So the loss must *not* be
multiplied or divided by the world size (the tests check the gradients against one process).

BatchNorm caveat. The vision tower is a timm ResNet with BatchNorm. In train mode BatchNorm
normalises with the statistics of the batch it sees, here the rank's slice of ``b = B / W``
pairs, not the global batch of ``B``: the forward pass, hence the loss and the gradients,
differ slightly from one process on the same global batch. ``torch.nn.SyncBatchNorm`` would
fix this, but it runs on CUDA only (not on the CPU with gloo). In eval mode (running
statistics) and with batch-independent norms (GroupNorm, LayerNorm) the two agree to float
precision; the tests check both. The running statistics are averaged over the ranks after
every step, so every rank holds the same buffers and they summarise every slice (left alone,
DDP would copy rank 0's buffers, which saw only rank 0's slices, to all ranks before every
forward; after the average that copy changes nothing). For the running mean the average is
what one BatchNorm would record from the same features; for the running variance it leaves out
the spread between the slices' means.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from fastslow_lib.config.training import FastTrainConfig
from fastslow_lib.core.loop import fit
from fastslow_lib.data.world import World
from fastslow_lib.fast.losses import info_nce
from fastslow_lib.fast.training import (
    fast_batches,
    fast_step,
    validation_protocol,
    validation_recall,
)

__all__ = [
    "ENV_VARS",
    "DistInfo",
    "GlobalBatchSlices",
    "cleanup",
    "distributed_info_nce",
    "gather_features",
    "is_distributed",
    "rank_and_world_size",
    "setup",
    "train_fast_ddp",
]

#: The environment variables that ``torchrun`` sets and :func:`setup` reads.
ENV_VARS: tuple[str, ...] = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

# BatchNorm layers whose running statistics are averaged over the ranks after every step.
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


# --------------------------------------------------------------------------- process group


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the world size, its local rank, backend, device."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that prints and saves)."""
        return self.rank == 0


def is_distributed() -> bool:
    """True if a ``torch.distributed`` process group is initialised in this process."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` when not distributed."""
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def setup(backend: str | None = None, *, timeout_s: float = 1800.0) -> DistInfo:
    """Initialise the default process group from torchrun's environment variables.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
    (:data:`ENV_VARS`); a missing one raises RuntimeError saying to launch with ``torchrun``.
    ``backend`` defaults to ``"nccl"`` when CUDA is available (each process then uses GPU
    ``LOCAL_RANK``) and to ``"gloo"`` otherwise. ``timeout_s`` bounds how long a collective
    waits for the other ranks. If the group is already initialised it is kept. Returns a
    :class:`DistInfo`; pair every ``setup()`` with :func:`cleanup`.
    """
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed support")
    missing = [name for name in ENV_VARS if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"distributed setup needs the environment variables {list(ENV_VARS)}; missing "
            f"{missing}. Launch the script with torchrun, e.g. "
            "`torchrun --nproc_per_node 2 scripts/train_ddp.py --preset tiny`, "
            "or set them yourself"
        )
    rank, world_size, local_rank = (_env_int(n) for n in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world_size}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("backend 'nccl' needs CUDA; use backend='gloo' on the CPU")
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs are visible"
            )
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
            device_id=device if device.type == "cuda" else None,  # binds nccl to this GPU
        )
    return DistInfo(rank, world_size, local_rank, str(dist.get_backend()), device)


def cleanup() -> None:
    """Destroy the default process group if there is one (safe to call twice)."""
    if is_distributed():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- the loss


def gather_features(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``x`` ``(b, d)`` from every rank into ``(world_size * b, d)``, rank order.

    Rows ``[r * b : (r + 1) * b]`` are rank ``r``'s ``x``. The gradient flows back to every
    rank's slice (the backward sums what every rank sends to a slice; see the module
    docstring for why that is the right scale under DDP). Every rank must call it with the
    same shape. Without a process group (or with one rank) it returns ``x`` itself.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (b, d), got {tuple(x.shape)}")
    if not is_distributed() or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        # torch 2.14 marks this autograd all-gather deprecated in favour of the private
        # torch.distributed._functional_collectives; it is still the public, documented one.
        warnings.filterwarnings("ignore", message=r".*all_gather is deprecated",
                                category=FutureWarning)
        return torch.cat(all_gather(x), dim=0)


def distributed_info_nce(
    img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor | float
) -> torch.Tensor:
    """InfoNCE over the **global** batch: gather both sides from every rank, then ``info_nce``.

    ``img`` and ``txt`` are this rank's ``(b, d)`` embeddings of ``b`` matching pairs and
    ``scale`` the logit scale (``DualEncoder.scale()``). Every rank returns the same value,
    the loss one process computes on the concatenated ``(world_size * b, d)`` batch, and under
    DDP the averaged parameter gradient equals that process's gradient (module docstring): do
    not rescale it by the world size. Without a process group it is ``info_nce`` itself.
    """
    return info_nce(gather_features(img), gather_features(txt), scale)


# --------------------------------------------------------------------------- the batches


def _as_list(indices: list[int]) -> list[int]:
    return list(indices)


class GlobalBatchSlices:
    """Rank ``rank``'s slice of every global batch that ``train_fast`` would draw.

    A batch sampler (for ``DataLoader(batch_sampler=...)``): each epoch it draws the global
    batches of ``n_items`` items exactly as ``train_fast``'s loader does
    (``DataLoader(..., batch_size=batch_size, shuffle=True, drop_last=True,
    generator=torch.Generator().manual_seed(seed))``, iterated once per epoch, so the same
    draws from the same generator), and yields the indices
    ``[rank * b : (rank + 1) * b]`` of each, ``b = batch_size // world_size``.
    Iterate it once per epoch, in order.
    """

    def __init__(self, n_items: int, batch_size: int, *, rank: int, world_size: int,
                 seed: int) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got {rank} and {world_size}")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} is not divisible by the world size {world_size}: "
                f"every rank must take an equal slice of each global batch; use a multiple of "
                f"{world_size}"
            )
        self.batch_size = batch_size
        self.per_rank = batch_size // world_size
        self.rank = rank
        self.world_size = world_size
        # The single-process loader's draws, made by a loader of the same kind over indices.
        self._indices = DataLoader(
            range(n_items), batch_size=batch_size, shuffle=True, drop_last=True,
            collate_fn=_as_list, generator=torch.Generator().manual_seed(seed),
        )

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self):
        lo = self.rank * self.per_rank
        for batch in self._indices:
            yield [int(i) for i in batch[lo : lo + self.per_rank]]


# --------------------------------------------------------------------------- training


def average_batchnorm_stats(model: nn.Module, world_size: int) -> None:
    """Average the BatchNorm running means and variances over the ranks (one all-reduce)."""
    buffers = [
        buf
        for module in model.modules()
        if isinstance(module, _BATCH_NORMS) and module.track_running_stats
        for buf in (module.running_mean, module.running_var)
        if buf is not None
    ]
    if not buffers or world_size == 1:
        return
    flat = torch.cat([buf.detach().reshape(-1) for buf in buffers])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    start = 0
    for buf in buffers:
        buf.copy_(flat[start : start + buf.numel()].view_as(buf))
        start += buf.numel()


def train_fast_ddp(
    model: nn.Module,
    world: World,
    tokenizer,
    cfg: FastTrainConfig,
    *,
    device: torch.device | str = "cpu",
    validate: bool = False,
    desc: str = "training Fast (DDP)",
) -> dict:
    """Train ``model`` (a :class:`~fastslow_lib.fast.model.DualEncoder`) in place on every rank.

    Call it on every rank after :func:`setup`, with the same arguments. It is
    :func:`fastslow_lib.fast.training.train_fast`'s loop: the same seed, AdamW, warm-up and cosine
    schedule, and the same global batches of ``cfg.batch_size`` pairs in the same order; rank
    ``r`` embeds rows ``[r * b : (r + 1) * b]`` of each (``b = cfg.batch_size //
    world_size``, which must divide), the loss is :func:`distributed_info_nce` over the global
    batch, and ``DistributedDataParallel`` averages the gradients. Without BatchNorm in train
    mode (module docstring) the losses and weights match ``train_fast``'s to float precision.

    ``validate=True`` computes validation Recall@1 on rank 0 after every epoch (the other
    ranks wait for it), as ``train_fast`` does; off by default. Rank 0 shows a progress bar.

    Returns the history, the same on every rank: :func:`~fastslow_lib.core.loop.fit`'s
    (``loss`` is the global-batch loss of every step), ``temperature``, ``val_R@1`` (if
    ``validate``; rank 0's), ``seconds`` (the slowest rank's), ``images_seen``,
    ``world_size`` and ``batch_per_rank``. The model is left in eval mode, unwrapped.
    """
    if not is_distributed():
        raise RuntimeError(
            "train_fast_ddp needs an initialised process group: call "
            "fastslow_lib.scale.distributed.setup() in every process launched by torchrun "
            "(for one process, use fastslow_lib.fast.training.train_fast)"
        )
    if not isinstance(cfg, FastTrainConfig):
        raise TypeError(f"cfg must be a FastTrainConfig, got {type(cfg).__name__}")
    rank, world_size = rank_and_world_size()
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if dist.get_backend() == "nccl" and device.type != "cuda":
        raise ValueError(f"the nccl backend needs a CUDA device, got device={device}")
    model.to(device)
    n_items = len(world.train)
    sampler = GlobalBatchSlices(n_items, cfg.batch_size, rank=rank, world_size=world_size,
                                seed=cfg.seed)
    # A generator of its own, so the loader does not draw from the global torch RNG (which
    # train_fast's loader does not either; dropout draws from it).
    batches, per_epoch = fast_batches(world.train, tokenizer, cfg, batch_sampler=sampler,
                                      generator=torch.Generator().manual_seed(cfg.seed))
    # DDP copies rank 0's weights and buffers to every rank here, so all start the same.
    ddp = DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )
    val = validation_protocol(world.val, cfg) if validate and rank == 0 else None

    def end_of_epoch(epoch: int) -> dict[str, float]:
        out = {"temperature": float(model.temperature)}
        if validate:
            r1 = torch.zeros(1, dtype=torch.float64, device=device)
            if val is not None:  # rank 0 scores, the others wait for its number
                r1 += validation_recall(model, tokenizer, val, max_len=cfg.max_len,
                                        device=device)
            dist.broadcast(r1, src=0)
            out["val_R@1"] = float(r1.item())
        return out

    history = fit(model, batches,
                  fast_step(model, device, loss_fn=distributed_info_nce, forward=ddp), cfg,
                  steps_per_epoch=per_epoch,
                  after_step=lambda: average_batchnorm_stats(model, world_size),
                  end_of_epoch=end_of_epoch, desc=desc, show_progress=None if rank == 0
                  else False)
    seconds = torch.tensor([history["seconds"]], dtype=torch.float64, device=device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    history["seconds"] = float(seconds.item())
    history["images_seen"] = history["steps"] * cfg.batch_size
    history["world_size"] = world_size
    history["batch_per_rank"] = sampler.per_rank
    return history
