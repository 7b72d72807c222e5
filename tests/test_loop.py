"""The one training loop (``fastslow_lib.core.loop.fit``) and the steps every model trains with.

The steps (forward pass and loss) of Fast, of the distilled student, of Slow and of ITM must
not read a tensor's value back to the host: on a GPU each read is a synchronisation per step.
The loop itself reads the epoch's losses once, at the epoch's end.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from host_sync import no_host_reads
from shared import TINY_VISION

from fastslow_lib.config.training import FastTrainConfig, SlowTrainConfig, TrainConfig
from fastslow_lib.core.loop import fit
from fastslow_lib.distill import GroupBatchSampler, distillation_extra_loss, random_groups
from fastslow_lib.fast.model import DualEncoder, FastConfig
from fastslow_lib.fast.training import fast_batches, fast_step
from fastslow_lib.slow.matching import itm_step
from fastslow_lib.slow.model import MatchingModel, SlowConfig, SlowModel
from fastslow_lib.slow.training import slow_batches, slow_step

#: transformers checks whether a padding mask is all ones (to pick a faster attention kernel):
#: its own read, in the text tower of the Fast model.
THIRD_PARTY = ("transformers.masking_utils",)


def linear_problem(n_batches: int = 3):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x, y = torch.randn(n_batches, 8, 4), torch.randn(n_batches, 8, 1)

    def batches(epoch):
        return zip(x, y, strict=True)

    def step(batch):
        xb, yb = batch
        return torch.nn.functional.mse_loss(model(xb), yb)

    return model, batches, step


def test_fit_records_history_and_reads_losses_once_per_epoch(monkeypatch):
    model, batches, step = linear_problem()
    cfg = TrainConfig(epochs=4, batch_size=8, lr=0.05)
    reads = []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: reads.append(1) or tolist(t))
    history = fit(model, batches, step, cfg, steps_per_epoch=3,
                  end_of_epoch=lambda epoch: {"epoch_twice": 2.0 * epoch})
    assert len(reads) == cfg.epochs
    assert len(history["loss"]) == history["steps"] == 12
    assert history["epoch_end_step"] == [3, 6, 9, 12]
    assert history["epoch_twice"] == [0.0, 2.0, 4.0, 6.0]
    assert history["before"] == {"epoch_twice": -2.0}   # called once more, before the first step
    np.testing.assert_allclose(history["epoch_loss"], np.reshape(history["loss"], (4, 3)).mean(1))
    assert history["final_loss"] == history["epoch_loss"][-1] < history["epoch_loss"][0]
    assert not model.training


def test_fit_names_a_batch_count_that_does_not_match():
    model, batches, step = linear_problem(2)
    with pytest.raises(RuntimeError, match="gave 2 batches, expected 3"):
        fit(model, batches, step, TrainConfig(epochs=1), steps_per_epoch=3)
    with pytest.raises(ValueError, match="no training step"):
        fit(model, batches, step, TrainConfig(epochs=1), steps_per_epoch=0)


def test_fit_is_deterministic_for_a_seed():
    runs = []
    for _ in range(2):
        model, batches, step = linear_problem()
        runs.append(fit(model, batches, step, TrainConfig(epochs=2, lr=0.05),
                        steps_per_epoch=3)["loss"])
    assert runs[0] == runs[1]


def first_batch(batches):
    return next(iter(batches(0)))


def test_fast_steps_read_nothing_back(world, tok):
    cfg = FastTrainConfig(epochs=1, batch_size=16, val_queries=10)
    torch.manual_seed(0)
    model = DualEncoder(FastConfig(vocab_size=len(tok), embed_dim=32, text_width=32,
                                   text_layers=1, text_heads=2, vision_kwargs=TINY_VISION))
    model.train()
    batches, _ = fast_batches(world.train, tok, cfg)
    batch = first_batch(batches)
    with no_host_reads(allow=THIRD_PARTY):
        fast_step(model, "cpu")(batch).backward()
    groups = random_groups(len(world.train), 4)
    sampler = GroupBatchSampler(groups, 16, n_images=len(world.train))
    teacher = np.zeros((len(world.train.captions), 4), dtype=np.float32)
    extra = distillation_extra_loss(teacher, sampler, weight=1.0, tau=2.0)
    batches, _ = fast_batches(world.train, tok, cfg, batch_sampler=sampler)
    batch = first_batch(batches)
    with no_host_reads(allow=THIRD_PARTY):
        fast_step(model, "cpu", extra_loss=extra)(batch).backward()


def test_slow_and_itm_steps_read_nothing_back(world, tok):
    cfg = SlowTrainConfig(epochs=1, batch_size=8, length_chunks=3)
    batches, _ = slow_batches(world.train, tok, cfg)
    batch = first_batch(batches)
    torch.manual_seed(0)
    small = {"width": 32, "heads": 2, "vision_kwargs": TINY_VISION}
    slow = SlowModel(SlowConfig(vocab_size=len(tok), **small)).train()
    with no_host_reads():
        slow_step(slow, batch).backward()
    itm = MatchingModel(SlowConfig(vocab_size=len(tok), bidirectional=False, **small)).train()
    negatives = np.tile(np.arange(4), (len(world.train.captions), 1))
    step = itm_step(negatives, world.train)
    with no_host_reads():
        step(itm, batch).backward()
    assert len(step.matching_losses) == 1
