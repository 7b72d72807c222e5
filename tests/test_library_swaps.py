"""What a maintained library already does, the library uses, with the same numbers as before.

Each test pins the behaviour of the hand-written code a library call replaced (issue 32):

* ``fastslow_lib.core.loop``: AdamW's parameter groups from timm
  (``param_groups_weight_decay``) and the warm-up cosine factor from transformers
  (``get_cosine_schedule_with_warmup``'s lambda) decay the same parameters and give the same
  learning rate at every step, so training is bit for bit what it was;
* ``fastslow_lib.core.intervals``: the paired bootstrap resamples through
  ``scipy.stats.bootstrap`` and gives the same intervals bit for bit (golden values below were
  computed by the hand-written loop before the swap);
* ``fastslow_lib.fast.faiss_index``: indexes built from ``faiss.index_factory`` strings are the
  hand-constructed ones, byte for byte once trained and filled.

The reference implementations below are the replaced code, kept here only as the pin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from fastslow_lib.core.intervals import paired_difference_interval
from fastslow_lib.core.loop import adamw, cosine_schedule

# ---- the training loop's optimiser and schedule ------------------------------------------


def reference_factor(total_steps: int, warmup_steps: int):
    """The hand-written schedule the loop used before transformers' lambda."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        done = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))

    return factor


def reference_groups(model: nn.Module) -> tuple[set[int], set[int]]:
    """Ids of the parameters decayed and not decayed by the hand-written grouping."""
    decay, no_decay = set(), set()
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).add(id(p))
    return decay, no_decay


def reference_adamw(model: nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """The hand-written AdamW the loop used before timm's parameter groups."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay},
         {"params": no_decay, "weight_decay": 0.0}], lr=lr)


class Zoo(nn.Module):
    """Every kind of parameter the course's models hold, and a 2-D one named logit_scale."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.LayerNorm(8)
        self.proj = nn.Linear(8, 8)
        self.head = nn.Linear(8 + 4, 3, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        self.logit_scale_table = nn.Parameter(torch.randn(2, 2))  # 2-D, still not decayed

    def forward(self, tokens: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        t = self.norm(self.proj(self.embed(tokens).mean(1)))
        v = self.conv(images).mean((2, 3))
        scale = self.logit_scale.exp() + self.logit_scale_table.sum()
        return scale * self.head(torch.cat([t, v], 1))


def zoo_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = Zoo()
    tokens, images = torch.randint(0, 11, (6, 5)), torch.randn(6, 3, 7, 7)
    target = torch.randn(6, 3)
    return model, lambda: nn.functional.mse_loss(model(tokens, images), target)


@pytest.mark.parametrize(("total", "warmup"),
                         [(100, 10), (10, 2), (7, 1), (1, 1), (3, 5), (50, 0), (413, 20)])
def test_cosine_schedule_gives_the_hand_written_factor_at_every_step(total, warmup):
    new, old = cosine_schedule(total, warmup), reference_factor(total, warmup)
    for step in range(total + 10):
        assert new(step) == old(step), (total, warmup, step)


def test_cosine_schedule_pinned_values():
    f = cosine_schedule(total_steps=100, warmup_steps=10)
    # the first step already trains (1/warmup, not 0), the warm-up ends at 1, the cosine
    # reaches 0 at total_steps and stays there
    assert [f(s) for s in (0, 4, 9, 10, 55, 99, 100, 120)] == [
        0.1, 0.5, 1.0, 1.0, 0.5, 0.00030458649045211894, 0.0, 0.0]


def test_adamw_decays_the_same_parameters():
    model, _ = zoo_problem()
    decay, no_decay = reference_groups(model)
    groups = adamw(model, lr=1e-3, weight_decay=0.1).param_groups
    got = {wd: {id(p) for g in groups if g["weight_decay"] == wd for p in g["params"]}
           for wd in (0.1, 0.0)}
    assert got[0.1] == decay and got[0.0] == no_decay
    assert {id(model.logit_scale), id(model.logit_scale_table), id(model.norm.weight),
            id(model.proj.bias)} <= no_decay
    assert {id(model.embed.weight), id(model.conv.weight), id(model.head.weight)} <= decay


def test_adamw_groups_of_the_course_models_are_unchanged():
    from fastslow_lib.fast.model import DualEncoder, FastConfig

    torch.manual_seed(0)
    model = DualEncoder(FastConfig(vocab_size=40, max_len=16, embed_dim=32, text_width=32,
                                   text_layers=1, text_heads=2))
    decay, no_decay = reference_groups(model)
    groups = adamw(model, lr=1e-3, weight_decay=0.05).param_groups
    assert {id(p) for g in groups if g["weight_decay"] == 0.05 for p in g["params"]} == decay
    assert {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]} == no_decay


def test_training_with_the_library_optimiser_and_schedule_is_bit_for_bit_the_same():
    lrs_seen, final_loss, trained = [], [], []
    for make_opt, make_factor in ((reference_adamw, reference_factor), (adamw, cosine_schedule)):
        model, loss_fn = zoo_problem()
        model.conv.bias.requires_grad_(False)  # a frozen parameter never moves, either way
        frozen = model.conv.bias.detach().clone()
        opt = make_opt(model, lr=3e-2, weight_decay=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, make_factor(12, 3))
        lrs = []
        for _ in range(12):
            lrs.append([g["lr"] for g in opt.param_groups])
            loss = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        assert torch.equal(model.conv.bias, frozen)
        lrs_seen.append(lrs)
        final_loss.append(loss.item())
        trained.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    assert [set(step) for step in lrs_seen[0]] == [set(step) for step in lrs_seen[1]]
    assert final_loss[0] == final_loss[1]
    for key, value in trained[0].items():
        assert torch.equal(value, trained[1][key]), key


# ---- the paired bootstrap ------------------------------------------------------------------

def golden_cases():
    r = np.random.default_rng(123)
    yield "binary200", (r.random(200) < 0.8) * 1.0, (r.random(200) < 0.7) * 1.0
    yield "ties500", r.integers(0, 3, 500) / 2, r.integers(0, 3, 500) / 2
    yield "odd4001", (r.random(4001) < 0.6) * 1.0, (r.random(4001) < 0.55) * 1.0
    yield "small7", np.array([1, 0, 1, 1, 0, 1, 1.0]), np.array([0, 0, 1, 0, 0, 1, 1.0])


#: ``(value, low, high)`` of each golden case, from the hand-written resampling loop.
GOLDEN = {
    "binary200": (14.000000000000002, 6.0, 22.0),
    "ties500": (4.6, -0.5, 9.8),
    "odd4001": (5.373656585853537, 3.199200199950013, 7.548112971757061),
    "small7": (28.57142857142857, 0.0, 57.14285714285714),
}


def reference_paired(a: np.ndarray, b: np.ndarray, *, level: float = 0.95,
                     resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """The hand-written paired percentile bootstrap, before scipy.stats.bootstrap."""
    d = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // d.size)
    for s in range(0, resamples, chunk):
        m = min(chunk, resamples - s)
        means[s:s + m] = d[rng.integers(0, d.size, size=(m, d.size))].mean(axis=1)
    alpha = 1 - level
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return 100 * float(d.mean()), 100 * float(low), 100 * float(high)


@pytest.mark.parametrize("case", list(GOLDEN))
def test_paired_bootstrap_golden_intervals_bit_for_bit(case):
    a, b = next((x, y) for name, x, y in golden_cases() if name == case)
    e = paired_difference_interval(a, b)
    assert (e.value, e.low, e.high) == GOLDEN[case] == reference_paired(a, b)
    assert e.n == a.size


def test_paired_bootstrap_equals_the_hand_written_loop_on_random_cases():
    r = np.random.default_rng(7)
    for trial in range(40):
        n = int(r.integers(1, 3000))
        a = r.random(n) if trial % 2 else (r.random(n) < 0.7) * 1.0
        b = a.copy() if trial % 5 == 0 else r.random(n)
        level = float(r.choice([0.95, 0.9, 0.99, 0.5, 0.683]))
        resamples, seed = int(r.integers(100, 3000)), int(r.integers(0, 99))
        e = paired_difference_interval(a, b, level=level, resamples=resamples, seed=seed)
        assert (e.value, e.low, e.high) == reference_paired(
            a, b, level=level, resamples=resamples, seed=seed), (trial, n, level, resamples)


def test_scipy_paired_bootstrap_draws_the_same_resamples():
    """scipy's ``paired=True`` form resamples the same queries as the library's form on d."""
    a, b = next((x, y) for name, x, y in golden_cases() if name == "odd4001")
    chunk = 2_000_000 // a.size
    paired = stats.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True,
                             vectorized=True, method="percentile", n_resamples=10_000,
                             batch=chunk, rng=np.random.default_rng(0))
    low, high = np.quantile(paired.bootstrap_distribution, [0.05 / 2, 1 - 0.05 / 2])
    _, ref_low, ref_high = reference_paired(a, b)
    assert (100 * float(low), 100 * float(high)) == (ref_low, ref_high)
    # scipy's own interval ends (scipy.stats.quantile) agree to rounding, not always bit for bit
    ci = paired.confidence_interval
    assert 100 * ci.low == pytest.approx(ref_low, abs=1e-9)
    assert 100 * ci.high == pytest.approx(ref_high, abs=1e-9)


# ---- faiss indexes from factory strings ------------------------------------------------------

def reference_index(kind: str, dim: int, *, nlist: int = 16, pq_m: int = 8, hnsw_m: int = 16,
                    ef_construction: int = 40, ef_search: int = 32):
    """The hand-constructed faiss indexes, before ``faiss.index_factory``."""
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        return index
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        return faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)


@pytest.fixture
def single_thread_faiss():
    faiss = pytest.importorskip("faiss")
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # HNSW insertion order depends on threads
    yield faiss
    faiss.omp_set_num_threads(threads)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw", "ivfpq"])
def test_factory_indexes_are_the_hand_built_ones(kind, single_thread_faiss):
    import fastslow_lib.fast.faiss_index as fx

    faiss, dim = single_thread_faiss, 32
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:50] + 0.1 * rng.standard_normal((50, dim)).astype(np.float32)
    if kind == "flat":
        new = fx.new_flat_index(dim)
    elif kind == "hnsw":
        new = fx.new_hnsw_index(dim, 16, 40, 32)
    else:
        new = fx.new_ivf_index(kind, dim, 16, 8)
    old = reference_index(kind, dim)
    assert type(new) is type(old) and new.metric_type == old.metric_type == \
        faiss.METRIC_INNER_PRODUCT
    results = []
    for index in (old, new):
        if kind in fx.TRAINED_KINDS:
            index.train(x)
        index.add(x)
        fx.set_search_params(index, kind, nprobe=4, ef_search=32)
        results.append((index.search(q, 10), fx.serialized_bytes(index),
                        faiss.serialize_index(index).tobytes()))
    (d_old, i_old), size_old, bytes_old = results[0]
    (d_new, i_new), size_new, bytes_new = results[1]
    np.testing.assert_array_equal(i_new, i_old)
    np.testing.assert_array_equal(d_new, d_old)
    assert size_new == size_old and bytes_new == bytes_old
    if kind == "hnsw":
        assert new.hnsw.efConstruction == 40 and new.hnsw.efSearch == 32
    if kind in fx.TRAINED_KINDS:
        assert new.nlist == 16 and new.nprobe == 4


def test_factory_strings():
    from fastslow_lib.fast.faiss_index import factory_string

    assert factory_string("flat") == "Flat"
    assert factory_string("ivf", nlist=64) == "IVF64,Flat"
    assert factory_string("hnsw", hnsw_m=32) == "HNSW32,Flat"
    assert factory_string("ivfpq", nlist=64, pq_m=16) == "IVF64,PQ16x8np"
    with pytest.raises(ValueError, match="unknown index kind"):
        factory_string("lsh")
