"""Distributed Fast training (fastslow_lib/scale/distributed.py) on 2 CPU processes (gloo).

One ``torch.multiprocessing.spawn`` of 2 workers runs every multi-process check (start-up
dominates the time); the workers write their results to ``tmp_path`` with ``torch.save`` and
the test compares them with one process's results computed here.
"""

from __future__ import annotations

import functools
import math
import os
import socket
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from fastslow_lib.config.presets import get_preset
from fastslow_lib.config.training import FastTrainConfig
from fastslow_lib.data import TrainPairs, load_world, make_collate
from fastslow_lib.data.tokenizer import encode
from fastslow_lib.fast.config import DEFAULT_VISION_KWARGS, FastConfig
from fastslow_lib.fast.losses import info_nce
from fastslow_lib.fast.model import DualEncoder
from fastslow_lib.fast.training import train_fast
from fastslow_lib.scale.distributed import (
    ENV_VARS,
    GlobalBatchSlices,
    distributed_info_nce,
    gather_features,
    setup,
)

WORLD_SIZE = 2
#: One global batch of 8 pairs, 4 per rank, for the loss and gradient check.
GLOBAL_BATCH = 8
#: A few training steps: 300 tiny training images in global batches of 64 -> 4 steps/epoch.
TRAIN_CFG = FastTrainConfig(epochs=2, batch_size=64, lr=3e-3, val_queries=20, seed=0)
#: A vision tower without BatchNorm (timm's GroupNorm with one group): its forward pass does not
#: depend on how the batch is split, so DDP training must match one process exactly.
NO_BN = {"vision_kwargs": {**DEFAULT_VISION_KWARGS, "norm_layer": "groupnorm1"}}
ATOL = 1e-5


def model_config(vocab_size: int, **overrides) -> FastConfig:
    return FastConfig(vocab_size=vocab_size, **{**get_preset("tiny").fast_model, **overrides})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- the workers


def _worker(rank: int, port: int, folder: str, cache_dir: str) -> None:
    """One rank: set torchrun's variables, set up, run every check, save results."""
    from torch.nn.parallel import DistributedDataParallel

    from fastslow_lib.scale.distributed import cleanup, train_fast_ddp

    torch.set_num_threads(1)
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(WORLD_SIZE), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    info = setup(timeout_s=120)
    out: dict = {"rank": info.rank, "world_size": info.world_size, "backend": info.backend}
    try:
        tmp = Path(folder)
        world = load_world(get_preset("tiny").world, cache_dir)
        tok = world.tokenizer()
        vocab = len(tok)

        # 1. Loss and gradients on one global batch, eval mode (BatchNorm's running stats).
        model = DualEncoder(model_config(vocab))
        model.load_state_dict(torch.load(tmp / "init.pt"))
        model.eval()
        ddp = DistributedDataParallel(model)
        batch = torch.load(tmp / "batch.pt")
        b = GLOBAL_BATCH // WORLD_SIZE
        rows = slice(rank * b, (rank + 1) * b)
        img, txt, scale = ddp(batch["image"][rows], batch["input_ids"][rows],
                              batch["attention_mask"][rows])
        out["local_loss"] = float(info_nce(img, txt, scale).detach())
        out["gathered_img"] = gather_features(img).detach().clone()
        loss = distributed_info_nce(img, txt, scale)
        loss.backward()
        out["loss"] = float(loss.detach())
        out["grads"] = grads(model)

        # 2. A batch size the world size does not divide: a clear error on every rank.
        try:
            train_fast_ddp(DualEncoder(model_config(vocab)), world, tok,
                           FastTrainConfig(epochs=1, batch_size=33))
        except ValueError as err:
            out["odd_batch_error"] = str(err)

        # 3. A few steps in train mode with the BatchNorm model, different inits per rank
        # (DDP must copy rank 0's weights to all ranks).
        torch.manual_seed(100 + rank)
        model = DualEncoder(model_config(vocab))
        history = train_fast_ddp(model, world, tok, TRAIN_CFG)
        out["bn_history"] = history
        out["bn_state"] = state(model)

        # 4. The same without BatchNorm, from the weights the single process starts from.
        model = DualEncoder(model_config(vocab, **NO_BN))
        model.load_state_dict(torch.load(tmp / "init_no_bn.pt"))
        out["no_bn_history"] = train_fast_ddp(model, world, tok, TRAIN_CFG)
        out["no_bn_state"] = state(model)
    finally:
        torch.save(out, Path(folder) / f"rank{rank}.pt")
        cleanup()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, world, tok, one_thread) -> dict:
    """Build the inputs, spawn the 2 workers, compute the single-process references.

    The workers read the tiny world and its tokenizer from the ``world`` fixture's cache
    (written before they start, so no two processes write it at once).
    """
    import torch.multiprocessing as mp

    tmp = tmp_path_factory.mktemp("ddp")
    vocab = len(tok)

    torch.manual_seed(0)
    model = DualEncoder(model_config(vocab))
    torch.save(model.state_dict(), tmp / "init.pt")
    torch.manual_seed(1)
    no_bn = DualEncoder(model_config(vocab, **NO_BN))
    torch.save(no_bn.state_dict(), tmp / "init_no_bn.pt")
    collate = make_collate(functools.partial(encode, tok, max_len=48))
    data = TrainPairs(world.train, seed=0)
    batch = collate([data[i] for i in range(GLOBAL_BATCH)])
    torch.save({k: batch[k] for k in ("image", "input_ids", "attention_mask")},
               tmp / "batch.pt")

    mp.spawn(_worker, args=(free_port(), str(tmp), str(world.folder.parent)),
             nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD_SIZE)]

    # Single-process references.
    model.eval()
    img, txt, scale = model(batch["image"], batch["input_ids"], batch["attention_mask"])
    loss = info_nce(img, txt, scale)
    loss.backward()
    ref = {"loss": float(loss.detach()), "img": img.detach(), "grads": grads(model),
           "param_names": [name for name, _ in model.named_parameters()]}
    ref["no_bn_init"] = state(no_bn)
    ref["no_bn_history"] = train_fast(no_bn, world, tok, TRAIN_CFG)
    ref["no_bn_state"] = state(no_bn)
    return {"ranks": ranks, "ref": ref, "world": world}


# --------------------------------------------------------------------------- single process


def test_gather_and_loss_are_identities_without_a_process_group():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1)
    assert gather_features(img) is img
    assert torch.equal(distributed_info_nce(img, txt, 10.0), info_nce(img, txt, 10.0))
    with pytest.raises(ValueError, match=r"\(b, d\)"):
        gather_features(torch.zeros(3))


def test_setup_without_torchrun_variables_says_what_is_missing(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RuntimeError, match="torchrun") as err:
        setup()
    assert "WORLD_SIZE" in str(err.value) and "MASTER_PORT" in str(err.value)


def test_train_fast_ddp_without_a_process_group_raises(world, tok):
    from fastslow_lib.scale.distributed import train_fast_ddp

    with pytest.raises(RuntimeError, match="setup"):
        train_fast_ddp(torch.nn.Linear(2, 2), world, tok, FastTrainConfig(batch_size=4))


def test_rank_slices_reassemble_train_fasts_batches(world):
    """Concatenated rank slices are the global batches train_fast's loader draws, per epoch."""
    cfg = TRAIN_CFG
    data = TrainPairs(world.train, seed=cfg.seed)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        collate_fn=lambda items: [it["image_index"] for it in items],
                        generator=torch.Generator().manual_seed(cfg.seed))
    samplers = [GlobalBatchSlices(len(data), cfg.batch_size, rank=r, world_size=WORLD_SIZE,
                                  seed=cfg.seed) for r in range(WORLD_SIZE)]
    epochs = []
    for _ in range(3):
        expected = list(loader)
        slices = [list(s) for s in samplers]
        assert len(slices[0]) == len(expected) == len(loader) == len(samplers[0])
        for step, batch in enumerate(expected):
            assert [i for s in slices for i in s[step]] == batch
            assert all(len(s[step]) == cfg.batch_size // WORLD_SIZE for s in slices)
        epochs.append(expected)
    assert epochs[0] != epochs[1]  # a new order every epoch, as in train_fast
    with pytest.raises(ValueError, match="not divisible by the world size 2"):
        GlobalBatchSlices(300, 33, rank=0, world_size=2, seed=0)


# --------------------------------------------------------------------------- two processes


def test_workers_ran_on_gloo(ddp_run):
    for rank, out in enumerate(ddp_run["ranks"]):
        assert (out["rank"], out["world_size"], out["backend"]) == (rank, WORLD_SIZE, "gloo")
        assert "no_bn_state" in out, f"rank {rank} did not finish"


def test_loss_over_the_global_batch_matches_one_process(ddp_run):
    ref = ddp_run["ref"]
    for out in ddp_run["ranks"]:
        assert torch.allclose(out["gathered_img"], ref["img"], atol=ATOL)
        assert out["loss"] == pytest.approx(ref["loss"], abs=ATOL)
        # The check can fail: the loss of the rank's own 4 pairs is another number.
        assert abs(out["local_loss"] - ref["loss"]) > 1e-3


def test_ddp_gradients_match_one_process(ddp_run):
    ref = ddp_run["ref"]["grads"]
    assert list(ref) == ddp_run["ref"]["param_names"]  # every parameter has a gradient
    for out in ddp_run["ranks"]:
        assert out["grads"].keys() == ref.keys()
        for name, g in ref.items():
            assert torch.allclose(out["grads"][name], g, atol=ATOL), (
                f"{name}: max diff {(out['grads'][name] - g).abs().max():.2e}, "
                f"ratio {out['grads'][name].norm() / g.norm():.3f}"
            )


def test_batch_size_not_divisible_by_world_size_is_a_clear_error(ddp_run):
    for out in ddp_run["ranks"]:
        message = out.get("odd_batch_error", "")
        assert "33" in message and "not divisible by the world size 2" in message


def test_ranks_stay_in_sync_in_train_mode(ddp_run):
    """With BatchNorm in train mode: same weights, buffers and loss history on every rank."""
    first, *others = ddp_run["ranks"]
    history = first["bn_history"]
    steps = TRAIN_CFG.epochs * (len(ddp_run["world"].train) // TRAIN_CFG.batch_size)
    assert history["steps"] == len(history["loss"]) == steps
    assert history["world_size"] == WORLD_SIZE and history["batch_per_rank"] == 32
    assert all(math.isfinite(x) for x in history["loss"])
    assert history["seconds"] > 0
    for out in others:
        assert out["bn_history"]["loss"] == history["loss"]
        assert out["bn_state"].keys() == first["bn_state"].keys()
        for key, value in first["bn_state"].items():
            assert torch.equal(out["bn_state"][key], value), key


def test_without_batchnorm_ddp_training_matches_train_fast(ddp_run):
    """No batch-dependent layer: same losses and weights as one process, step by step."""
    ref = ddp_run["ref"]
    for out in ddp_run["ranks"]:
        history = out["no_bn_history"]
        assert history["steps"] == ref["no_bn_history"]["steps"]
        assert history["loss"] == pytest.approx(ref["no_bn_history"]["loss"], abs=1e-4)
        assert history["temperature"] == pytest.approx(
            ref["no_bn_history"]["temperature"], abs=1e-5)
        # Adam divides each update by the gradient's running scale, so where a gradient is
        # near zero, float noise between one process and two ranks moves a weight by up to
        # lr per step: compare each tensor's whole update, within 5% of its size.
        for key, value in ref["no_bn_state"].items():
            start = ref["no_bn_init"][key].float()
            want, got = value.float() - start, out["no_bn_state"][key].float() - start
            assert (got - want).norm() <= 0.05 * want.norm() + 1e-6, (
                f"{key}: update differs by {float((got - want).norm() / want.norm()):.1%}")
