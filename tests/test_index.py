"""Tests for fastslow_lib.fast.index and the modules behind it (exact_search, faiss_index,
index_io, vector_checks): faiss kinds against exact search, the torch fallback, save/load and
every input check. Sizes are small (N <= 3000, d = 32) to keep the file quick.

Error tests match the key words of a message (what is wrong, which argument, the values
involved), not whole sentences."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import fastslow_lib.fast.faiss_index as faiss_index_mod
import fastslow_lib.fast.index as index_mod
from fastslow_lib.fast.exact_search import exact_search, recall_at_k, sort_ties_by_id
from fastslow_lib.fast.index import VectorIndex

DIM = 32


def unit_vectors(n: int, d: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` random L2-normalised float32 vectors."""
    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(n: int, n_clusters: int = 20, d: int = DIM, seed: int = 1) -> np.ndarray:
    """Unit vectors drawn around ``n_clusters`` random centres (structure ANN indexes can use)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d), dtype=np.float32)
    x = centres[rng.integers(0, n_clusters, n)] + 0.5 * rng.standard_normal((n, d), np.float32)
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def noisy_queries(db: np.ndarray, nq: int, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = db[rng.integers(0, len(db), nq)] + 0.1 * rng.standard_normal((nq, db.shape[1]), np.float32)
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """faiss on one thread: OpenMP spin-waits make tiny jobs slow on a busy 2-core machine."""
    try:
        import faiss
    except ImportError:
        yield
        return
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture
def no_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend faiss is not installed, with the once-per-kind notice not yet shown."""
    monkeypatch.setattr(index_mod, "HAS_FAISS", False)
    monkeypatch.setattr(index_mod, "_noticed", set())


def flat_torch(dim: int = DIM) -> VectorIndex:
    return VectorIndex(dim, backend="torch", device="cpu")


# --------------------------------------------------------------------------------------
# Exact search
# --------------------------------------------------------------------------------------


def test_exact_search_matches_numpy_argsort() -> None:
    db, q = unit_vectors(300), unit_vectors(7, seed=5)
    scores, ids = exact_search(db, q, 5, device="cpu")
    full = q @ db.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :5]
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert scores.shape == ids.shape == (7, 5)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), atol=1e-5)


def test_exact_search_breaks_ties_by_lower_id() -> None:
    v, w = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    # rows 2, 4, 5, 7 equal v (score 1); row 6 is 0.5*v + ... (score 0.6); the rest score 0
    db = np.tile(w, (9, 1))
    db[[2, 4, 5, 7]] = v
    db[6] = 0.6 * v + 0.8 * w
    _, ids = exact_search(db, v, 3, device="cpu")
    assert ids.tolist() == [[2, 4, 5]]  # the tie straddles the cut: lowest ids win
    _, ids = exact_search(db, v[None], 6, device="cpu")
    assert ids.tolist() == [[2, 4, 5, 7, 6, 0]]
    # many equal rows: the first k ids, in order
    _, ids = exact_search(np.tile(v, (500, 1)), v, 10, device="cpu")
    assert ids.tolist() == [list(range(10))]


def test_tie_order_helper_sorts_equal_scores_by_id() -> None:
    vals = torch.tensor([[1.0, 1.0, 2.0, 1.0]])
    ids = torch.tensor([[9, 3, 5, 4]])
    out_vals, out_ids = sort_ties_by_id(vals, ids)
    assert out_vals.tolist() == [[2.0, 1.0, 1.0, 1.0]]
    assert out_ids.tolist() == [[5, 3, 4, 9]]


def test_exact_search_accepts_tensors_and_a_1d_query() -> None:
    db = unit_vectors(100)
    s_np, i_np = exact_search(db, db[3], 4, device="cpu")
    s_t, i_t = exact_search(torch.from_numpy(db), torch.from_numpy(db[3]), 4)
    assert i_np.shape == (1, 4) and i_np[0, 0] == 3
    np.testing.assert_array_equal(i_np, i_t)
    np.testing.assert_allclose(s_np, s_t, atol=1e-6)


def test_recall_at_k() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, -1], [5, 6, 7, 8]])
    assert recall_at_k(found, truth) == pytest.approx((2 + 4) / 8)
    assert recall_at_k(found, truth, k=1) == pytest.approx(0.5)  # 4 vs 1 miss, 5 vs 5 hit
    with pytest.raises(ValueError, match=r"ids has 1 rows.*true_ids has 2"):
        recall_at_k(found[:1], truth)
    with pytest.raises(ValueError, match=r"k=5 .*larger.*columns"):
        recall_at_k(found, truth, k=5)
    with pytest.raises(ValueError, match="2-D integer array"):
        recall_at_k(found.astype(np.float32), truth)


# --------------------------------------------------------------------------------------
# faiss kinds
# --------------------------------------------------------------------------------------


def test_flat_faiss_equals_exact_search() -> None:
    pytest.importorskip("faiss")
    db, q = unit_vectors(2000), unit_vectors(50, seed=3)
    index = VectorIndex(DIM, "flat", backend="faiss", use_gpu=False)
    index.add(db)
    scores, ids = index.search(q, 10)
    ref_scores, ref_ids = exact_search(db, q, 10, device="cpu")
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert ids.shape == (50, 10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first


def test_torch_backend_equals_faiss_flat() -> None:
    pytest.importorskip("faiss")
    db, q = unit_vectors(2000), unit_vectors(50, seed=3)
    faiss_index = VectorIndex(DIM, backend="faiss", use_gpu=False)
    torch_index = flat_torch()
    for index in (faiss_index, torch_index):
        index.add(db[:1200])
        index.add(torch.from_numpy(db[1200:]))  # two adds; ids continue
    assert torch_index.backend == "torch" and len(torch_index) == len(faiss_index) == 2000
    f_scores, f_ids = faiss_index.search(q, 10)
    t_scores, t_ids = torch_index.search(torch.from_numpy(q), 10)
    np.testing.assert_array_equal(t_ids, f_ids)
    np.testing.assert_allclose(t_scores, f_scores, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "params"),
    [("ivf", {"nlist": 32, "nprobe": 8}), ("hnsw", {"hnsw_m": 16, "ef_search": 64})],
)
def test_ann_kinds_reach_recall_on_clustered_data(kind: str, params: dict) -> None:
    pytest.importorskip("faiss")
    db = clustered(3000)
    q = noisy_queries(db, 100)
    _, true_ids = exact_search(db, q, 10, device="cpu")
    index = VectorIndex(DIM, kind, backend="faiss", use_gpu=False, **params)
    index.add(db)  # ivf trains itself on these 3000 vectors (>= nlist)
    assert index.kind == kind and index.ntotal == 3000 and index.is_trained
    _, ids = index.search(q, 10)
    assert recall_at_k(ids, true_ids) >= 0.9


def test_ivf_nprobe_trades_recall_and_can_be_changed() -> None:
    pytest.importorskip("faiss")
    db = clustered(3000)
    q = noisy_queries(db, 100)
    _, true_ids = exact_search(db, q, 10, device="cpu")
    index = VectorIndex(DIM, "ivf", nlist=32, nprobe=1, use_gpu=False)
    index.train(db[:1000])
    index.add(db)
    low = recall_at_k(index.search(q, 10)[1], true_ids)
    index.nprobe = 32  # every list: exact
    assert index.nprobe == 32 and "nprobe=32" in index.describe()
    assert recall_at_k(index.search(q, 10)[1], true_ids) == 1.0 > low
    with pytest.raises(ValueError, match="already holds 3000 vectors"):
        index.train(db)


def test_ivf_nlist_defaults_to_about_4_sqrt_n() -> None:
    pytest.importorskip("faiss")
    index = VectorIndex(DIM, "ivf", use_gpu=False)
    assert index.nlist is None and not index.is_trained and index.ntotal == 0
    assert "nlist=auto, untrained" in index.describe()
    index.add(unit_vectors(1600))
    assert index.nlist == 160 and index.is_trained  # 4 * sqrt(1600)


def test_ivfpq_builds_and_searches() -> None:
    pytest.importorskip("faiss")
    db = clustered(2000)
    q = noisy_queries(db, 50)
    _, true_ids = exact_search(db, q, 10, device="cpu")
    index = VectorIndex(DIM, "ivfpq", nlist=16, nprobe=8, pq_m=4, use_gpu=False)
    index.add(db)
    scores, ids = index.search(q, 10)
    assert scores.shape == ids.shape == (50, 10)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert recall_at_k(ids, true_ids) > 0.3
    assert "ivfpq (nlist=16, nprobe=8, pq_m=4x8 bits)" in index.describe()
    flat = VectorIndex(DIM, use_gpu=False)
    flat.add(db)
    assert (
        index.memory_bytes() < flat.memory_bytes() / 2
    )  # 4 code bytes + 8 id bytes per vector vs 128


def test_describe_memory_and_len() -> None:
    pytest.importorskip("faiss")
    db = unit_vectors(100)
    hnsw = VectorIndex(DIM, "hnsw", use_gpu=False)
    hnsw.add(db)
    assert hnsw.describe() == (
        "faiss hnsw (M=32, efConstruction=40, efSearch=128) on cpu, 100 vectors"
    )
    flat = VectorIndex(DIM, use_gpu=False)
    assert flat.describe() == "faiss flat (exact) on cpu, 0 vectors"
    flat.add(db[:1])
    assert flat.describe() == "faiss flat (exact) on cpu, 1 vector" and len(flat) == 1
    flat.add(db[1:])
    assert 100 * DIM * 4 <= flat.memory_bytes() < 100 * DIM * 4 + 1024
    assert hnsw.memory_bytes() > flat.memory_bytes()  # the graph costs extra
    torch_index = flat_torch()
    torch_index.add(db)
    assert torch_index.memory_bytes() == 100 * DIM * 4
    assert torch_index.describe() == "torch flat (exact) on cpu, 100 vectors"


def test_flat_and_ivf_move_to_gpu_when_faiss_has_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The GPU wiring, checked with stand-ins for faiss's GPU calls (no GPU needed)."""
    faiss = pytest.importorskip("faiss")
    moved: list[str] = []
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: "resources", raising=False)
    monkeypatch.setattr(faiss_index_mod, "gpu_resources", {})

    def to_gpu(res: str, gpu: int, index: object) -> object:
        moved.append(f"{type(index).__name__}->gpu{gpu}")
        return index

    def to_cpu(index: object) -> object:
        moved.append("to_cpu")
        return index

    monkeypatch.setattr(faiss, "index_cpu_to_gpu", to_gpu, raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", to_cpu, raising=False)
    db = unit_vectors(500)
    flat = VectorIndex(DIM)
    ivf = VectorIndex(DIM, "ivf", nlist=8)
    ivf.add(db)
    hnsw = VectorIndex(DIM, "hnsw")
    on_cpu = VectorIndex(DIM, use_gpu=False)
    assert moved == ["IndexFlatIP->gpu0", "IndexIVFFlat->gpu0"]
    assert (flat.device, ivf.device, hnsw.device, on_cpu.device) == ("cuda:0",) * 2 + ("cpu",) * 2
    ivf.memory_bytes()
    assert moved[-1] == "to_cpu"  # serialised from a CPU copy
    hnsw.add(db)
    path = hnsw.save(tmp_path / "h.index")
    flat.add(db)
    flat.save(tmp_path / "f.index")
    assert moved[-1] == "to_cpu"
    del moved[:]
    assert VectorIndex.load(path).device == "cpu"
    assert VectorIndex.load(tmp_path / "f.index").device == "cuda:0"
    assert moved == ["IndexFlatIP->gpu0"]  # a loaded hnsw stays on the CPU


def test_use_gpu_true_without_a_gpu_is_an_error() -> None:
    faiss = pytest.importorskip("faiss")
    if faiss.get_num_gpus() > 0:
        pytest.skip("faiss sees a GPU here")
    with pytest.raises(ValueError, match=r"use_gpu=True.*no GPU"):
        VectorIndex(DIM, use_gpu=True)


# --------------------------------------------------------------------------------------
# Save and load
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "torch"])
def test_save_load_round_trip(kind: str, tmp_path: Path) -> None:
    if kind != "torch":
        pytest.importorskip("faiss")
    db, q = clustered(600), unit_vectors(20, seed=9)
    if kind == "torch":
        index = flat_torch()
    else:
        index = VectorIndex(DIM, kind, nlist=8, nprobe=3, ef_search=20, use_gpu=False)
    index.add(db)
    before = index.search(q, 5)
    path = index.save(tmp_path / "sub" / f"{kind}.index")
    assert path.is_file() and VectorIndex.sidecar_path(path).is_file()
    loaded = VectorIndex.load(path, use_gpu=False, device="cpu")
    assert loaded.describe() == index.describe()
    after = loaded.search(q, 5)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.index"))):
        VectorIndex.load(tmp_path / "nope.index")


def test_load_missing_sidecar(tmp_path: Path) -> None:
    index = flat_torch()
    index.add(unit_vectors(10))
    path = index.save(tmp_path / "x.safetensors")
    VectorIndex.sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match=r"x\.safetensors\.json.*missing"):
        VectorIndex.load(path)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "torch"])
def test_load_truncated_file(kind: str, tmp_path: Path) -> None:
    if kind != "torch":
        pytest.importorskip("faiss")
    index = flat_torch() if kind == "torch" else VectorIndex(DIM, kind, use_gpu=False)
    index.add(unit_vectors(200))
    path = index.save(tmp_path / "t.index")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"t\.index .*corrupt"):
        VectorIndex.load(path, device="cpu")


def test_load_rejects_corrupt_sidecar(tmp_path: Path) -> None:
    index = flat_torch()
    index.add(unit_vectors(10))
    path = index.save(tmp_path / "x.st")
    VectorIndex.sidecar_path(path).write_text("{not json")
    with pytest.raises(ValueError, match=r"x\.st\.json.*not valid JSON"):
        VectorIndex.load(path)


def test_save_untrained_ivf_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match=r"nothing to save.*ivf.*not trained"):
        VectorIndex(DIM, "ivf").save(tmp_path / "x.index")


# --------------------------------------------------------------------------------------
# Torch fallback when faiss is missing
# --------------------------------------------------------------------------------------


def test_auto_falls_back_to_exact_torch_with_a_notice(no_faiss: None) -> None:
    db, q = unit_vectors(300), unit_vectors(5, seed=4)
    with pytest.warns(UserWarning, match=r"faiss is not installed.*exact torch") as rec:
        index = VectorIndex(DIM, "hnsw")
    assert len(rec) == 1 and "'hnsw' was requested" in str(rec[0].message)
    assert index.backend == "torch" and index.kind == "flat" and index.requested_kind == "hnsw"
    assert "faiss missing, 'hnsw' requested" in index.describe()
    index.add(db)
    np.testing.assert_array_equal(index.search(q, 7)[1], exact_search(db, q, 7)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per kind: no second notice
        VectorIndex(DIM, "hnsw")


def test_auto_flat_fallback_notice(no_faiss: None) -> None:
    with pytest.warns(UserWarning, match=r"faiss is not installed.*exact torch"):
        index = VectorIndex(DIM)
    assert index.backend == "torch"


def test_explicit_faiss_backend_without_faiss(no_faiss: None) -> None:
    with pytest.raises(ImportError, match=r"backend='faiss'.*faiss is not installed"):
        VectorIndex(DIM, backend="faiss")


# --------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------


@pytest.fixture
def filled() -> VectorIndex:
    """A 10-vector exact torch index (works with or without faiss)."""
    index = flat_torch()
    index.add(unit_vectors(10))
    return index


def faiss_flat() -> VectorIndex:
    pytest.importorskip("faiss")
    index = VectorIndex(DIM, backend="faiss", use_gpu=False)
    index.add(unit_vectors(10))
    return index


@pytest.mark.parametrize("make", [flat_torch, faiss_flat], ids=["torch", "faiss"])
def test_add_input_errors(make) -> None:
    index = make()
    x = unit_vectors(5)
    with pytest.raises(ValueError, match=r"x has dimension 16.*dimension 32"):
        index.add(unit_vectors(5, d=16))
    with pytest.raises(TypeError, match=r"float32 required, got float64.*x\.astype"):
        index.add(x.astype(np.float64))
    with pytest.raises(TypeError, match=r"float32 required, got torch\.float64"):
        index.add(torch.from_numpy(x).double())
    with pytest.raises(ValueError, match=r"x is not C-contiguous.*ascontiguousarray"):
        index.add(np.asfortranarray(x))
    bad = x.copy()
    bad[1, 2] = np.nan
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"x must be finite.*2 NaN/inf"):
        index.add(bad)
    with pytest.raises(ValueError, match=r"x must be 2-D.*got 3-D"):
        index.add(x.reshape(5, 2, 16))
    with pytest.raises(ValueError, match=r"x must be 2-D.*got 1-D"):
        index.add(x[0])
    with pytest.raises(ValueError, match="x has no rows"):
        index.add(x[:0])
    with pytest.raises(TypeError, match=r"x must be a numpy array or torch tensor.*list"):
        index.add(x.tolist())


@pytest.mark.parametrize("make", [flat_torch, faiss_flat], ids=["torch", "faiss"])
def test_search_input_errors(make) -> None:
    index = make()
    empty = flat_torch()
    q = unit_vectors(3)
    if index.ntotal == 0:
        index.add(unit_vectors(10))
    with pytest.raises(ValueError, match=r"index is empty"):
        empty.search(q, 1)
    with pytest.raises(ValueError, match=r"k=11 .*larger.*\(10\)"):
        index.search(q, 11)
    with pytest.raises(ValueError, match=r"k must be at least 1.*0"):
        index.search(q, 0)
    with pytest.raises(TypeError, match=r"k must be an int.*float"):
        index.search(q, 2.0)
    with pytest.raises(ValueError, match=r"q has dimension 31.*dimension 32"):
        index.search(q[0, :31], 1)
    with pytest.raises(TypeError, match=r"float32 required, got float64.*q\.astype"):
        index.search(q.astype(np.float64), 1)
    with pytest.raises(ValueError, match=r"q is not C-contiguous"):
        index.search(np.asfortranarray(q), 1)
    with pytest.raises(ValueError, match=r"q must be 2-D.*\(dim,\).*got 3-D"):
        index.search(q[None], 1)
    nan_q = q.copy()
    nan_q[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"q must be finite.*1 NaN/inf"):
        index.search(nan_q, 1)


def test_empty_faiss_index_search() -> None:
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match=r"index is empty"):
        VectorIndex(DIM, "hnsw").search(unit_vectors(1), 1)


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r"torch backend.*exact.*'hnsw'"):
        VectorIndex(DIM, "hnsw", backend="torch")
    with pytest.raises(ValueError, match=r"kind must be one of.*'lsh'"):
        VectorIndex(DIM, "lsh")
    with pytest.raises(ValueError, match=r"backend must be one of.*'numpy'"):
        VectorIndex(DIM, backend="numpy")
    with pytest.raises(TypeError, match=r"dim must be an int.*bool"):
        VectorIndex(True)
    with pytest.raises(ValueError, match=r"dim must be at least 1.*0"):
        VectorIndex(0)
    with pytest.raises(ValueError, match="nprobe must be at least 1"):
        VectorIndex(DIM, "ivf", nprobe=0)
    with pytest.raises(TypeError, match=r"use_gpu must be.*'yes'"):
        VectorIndex(DIM, use_gpu="yes")
    with pytest.raises(ValueError, match="pq_m=5 must divide dim=32"):
        VectorIndex(DIM, "ivfpq", pq_m=5)


def test_exact_search_errors() -> None:
    db = unit_vectors(10)
    with pytest.raises(ValueError, match=r"k=11 .*larger"):
        exact_search(db, db, 11)
    with pytest.raises(ValueError, match=r"q has dimension 16.*dimension 32"):
        exact_search(db, unit_vectors(2, d=16), 1)
    with pytest.raises(TypeError, match=r"db: float32 required.*float64"):
        exact_search(db.astype(np.float64), db, 1)


def test_ivf_add_before_enough_training_points() -> None:
    pytest.importorskip("faiss")
    index = VectorIndex(DIM, "ivf", nlist=64)
    with pytest.raises(ValueError, match=r"at least 64 training vectors.*got 40 in add"):
        index.add(unit_vectors(40))
    assert index.ntotal == 0 and not index.is_trained
    pq = VectorIndex(DIM, "ivfpq", nlist=4, pq_m=8)
    with pytest.raises(ValueError, match=r"at least 256 training vectors.*product quantiser"):
        pq.train(unit_vectors(100))


def test_setters_reject_bad_values(filled: VectorIndex) -> None:
    with pytest.raises(ValueError, match="ef_search must be at least 1"):
        filled.ef_search = 0
    with pytest.raises(TypeError, match="nprobe must be an int"):
        filled.nprobe = 1.5
