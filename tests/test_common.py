"""Tests for the common helpers: seed, device, progress, results."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fastslow_course.results import load_summary, record
from fastslow_lib.core.device import describe_device, machine_name, pick_device
from fastslow_lib.core.paths import repo_root
from fastslow_lib.core.progress import progress
from fastslow_lib.core.seed import check_seed, rng, seed_everything

# --------------------------------------------------------------------------- seed


def _draws() -> tuple[list[float], list[float], float]:
    return torch.rand(4).tolist(), np.random.rand(4).tolist(), random.random()


def test_same_seed_same_draws():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    assert _draws() != first


def test_rng_is_reproducible():
    assert rng(7).random(3).tolist() == rng(7).random(3).tolist()
    assert rng(7).random(3).tolist() != rng(8).random(3).tolist()


@pytest.mark.parametrize(
    ("seed", "error", "message"),
    [
        (True, TypeError, r"seed must be an int, got bool True"),
        (1.0, TypeError, r"seed must be an int, got float 1\.0"),
        ("3", TypeError, r"seed must be an int, got str '3'"),
        (None, TypeError, r"seed must be an int, got NoneType None"),
        (-1, ValueError, r"0 <= seed < 2\*\*32, got -1"),
        (2**32, ValueError, r"got 4294967296"),
    ],
)
def test_bad_seeds(seed, error, message):
    with pytest.raises(error, match=message):
        check_seed(seed)
    with pytest.raises(error, match=message):
        seed_everything(seed)


def test_good_seeds():
    assert check_seed(0) == 0
    assert check_seed(2**32 - 1) == 2**32 - 1
    value = check_seed(np.int64(5))
    assert value == 5 and type(value) is int


# --------------------------------------------------------------------------- device


def test_env_override_to_cpu(monkeypatch):
    monkeypatch.setenv("FASTSLOW_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_default_without_env(monkeypatch):
    monkeypatch.delenv("FASTSLOW_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    device = pick_device()
    if expected:
        assert device.type == expected
    else:
        assert device.type in {"mps", "cpu"}


def test_unknown_device(monkeypatch):
    monkeypatch.delenv("FASTSLOW_DEVICE", raising=False)
    with pytest.raises(ValueError, match=r"'banana'.*available here: .*cpu"):
        pick_device("banana")
    monkeypatch.setenv("FASTSLOW_DEVICE", "banana")
    with pytest.raises(ValueError, match="banana"):
        pick_device()


def test_unavailable_device():
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or cuda:0 on CPU
    with pytest.raises(ValueError, match=re.escape(repr(missing)) + ".*unavailable"):
        pick_device(missing)


def test_prefer_beats_env(monkeypatch):
    monkeypatch.setenv("FASTSLOW_DEVICE", "banana")
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("FASTSLOW_DEVICE", "cpu")
    with pytest.raises(ValueError, match="banana"):
        pick_device("banana")


def test_describe_device_and_machine():
    assert re.fullmatch(r"cpu \(\d+ threads?\)", describe_device("cpu"))
    if torch.cuda.is_available():
        assert re.fullmatch(r"cuda:0 \(.+\)", describe_device(torch.device("cuda")))
    name = machine_name()
    assert "cores" in name and "threads" in name and "\n" not in name


# --------------------------------------------------------------------------- progress


def test_progress_disabled_by_env(monkeypatch):
    monkeypatch.setenv("FASTSLOW_PROGRESS", "0")
    bar = progress(range(5), desc="x")
    assert bar.disable
    assert list(bar) == [0, 1, 2, 3, 4]


def test_progress_forced_and_explicit(monkeypatch, capsys):
    monkeypatch.setenv("FASTSLOW_PROGRESS", "1")
    bar = progress(iter("abc"), total=3)
    assert not bar.disable
    assert list(bar) == ["a", "b", "c"]
    assert not progress([1], disable=False).disable
    assert progress([1], disable=True).disable  # the argument beats the env var


def test_progress_manual_bar(monkeypatch, capsys):
    monkeypatch.setenv("FASTSLOW_PROGRESS", "1")  # a disabled tqdm does not count updates
    with progress(total=10, desc="manual") as bar:
        bar.update(4)
        assert bar.n == 4


# --------------------------------------------------------------------------- results


def test_record_two_sections(tmp_path: Path):
    out = record(
        "b_train", {"loss": 0.123456, "steps": 10, "recall": {"r1": 3.14159}}, results_dir=tmp_path
    )
    assert out == tmp_path / "summary.json"
    record(
        "a_data",
        {"images": 1000, "name": "toy|world"},
        results_dir=tmp_path,
        notes="Generated world.",
    )
    record("b_train", {"steps": 20}, results_dir=tmp_path)  # merge: keeps loss, updates steps

    summary = load_summary(tmp_path)
    assert summary["a_data"] == {"images": 1000, "name": "toy|world"}
    assert summary["b_train"] == {"loss": 0.123456, "steps": 20, "recall": {"r1": 3.14159}}

    md = (tmp_path / "summary.md").read_text()
    assert md.index("## a_data") < md.index("## b_train")
    assert "## a_data\n\nGenerated world.\n\n| key | value |" in md
    assert "| images | 1000 |" in md and "| name | toy\\|world |" in md
    assert "| loss | 0.12 |" in md and "| recall.r1 | 3.14 |" in md and "| steps | 20 |" in md
    assert md.count("| key | value |") == 2


def test_record_is_reproducible(tmp_path: Path):
    record("s", {"x": 1.5}, results_dir=tmp_path)
    files = [tmp_path / "summary.json", tmp_path / "summary.md"]
    first = [f.read_bytes() for f in files]
    record("s", {"x": 1.5}, results_dir=tmp_path)
    assert [f.read_bytes() for f in files] == first
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_record_rejects_nan(tmp_path: Path):
    record("s", {"ok": 1}, results_dir=tmp_path)
    before = (tmp_path / "summary.json").read_text()
    with pytest.raises(ValueError, match=r"s\.metrics\.r1 is nan.*NaN"):
        record("s", {"metrics": {"r1": float("nan")}}, results_dir=tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        record("s", {"x": np.float32("nan")}, results_dir=tmp_path)
    assert (tmp_path / "summary.json").read_text() == before  # nothing written


def test_record_converts_numpy_and_torch(tmp_path: Path):
    record(
        "s",
        {
            "f": np.float32(0.5),
            "i": np.int64(3),
            "b": np.bool_(True),
            "t": torch.tensor(2.5),
            "a": np.arange(3),
        },
        results_dir=tmp_path,
    )
    raw = json.loads((tmp_path / "summary.json").read_text())["s"]
    assert raw == {"f": 0.5, "i": 3, "b": True, "t": 2.5, "a": [0, 1, 2]}
    assert type(raw["i"]) is int and type(raw["f"]) is float and type(raw["b"]) is bool


def test_record_rejects_bad_input(tmp_path: Path):
    with pytest.raises(TypeError, match="s.obj has type object"):
        record("s", {"obj": object()}, results_dir=tmp_path)
    with pytest.raises(ValueError, match="section"):
        record("_meta", {"x": 1}, results_dir=tmp_path)


def test_results_dir_from_env(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FASTSLOW_RESULTS", str(tmp_path / "res"))
    record("s", {"x": 1}, notes="n")
    assert load_summary() == {"s": {"x": 1}, "_notes": {"s": "n"}}
    assert (tmp_path / "res" / "summary.md").is_file()


def test_repo_root(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path.resolve()))):
        repo_root()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "fastslow_lib").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert repo_root() == tmp_path.resolve()
    monkeypatch.delenv("FASTSLOW_RESULTS", raising=False)
    record("s", {"x": math.pi})
    assert (tmp_path / "results" / "summary.json").is_file()
