"""Release models: Hugging Face folders, the manifest's sha256 checks and their errors, resuming,
the FASTSLOW_TRAIN switch, and the committed release folder itself."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from shared import TINY_VISION

from fastslow_lib.config.presets import get_preset
from fastslow_lib.config.training import (
    DistillConfig,
    FastTrainConfig,
    ReleaseBudgets,
    SlowTrainConfig,
)
from fastslow_lib.core.cache import load_or_train
from fastslow_lib.core.paths import repo_root
from fastslow_lib.course.release import (
    MANIFEST_NAME,
    RELEASES,
    Releases,
    manifest,
    reproduce,
    train_mode,
    verify_release,
)
from fastslow_lib.fast.model import DualEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


def small_preset(epochs: int = 1):
    tiny = get_preset("tiny")
    budgets = ReleaseBudgets(
        FastTrainConfig(epochs=epochs, batch_size=32, val_queries=20),
        SlowTrainConfig(epochs=1, batch_size=32), DistillConfig(start_epoch=0), tiny.video)
    return dataclasses.replace(
        tiny, fast_model={**tiny.fast_model, "vision_kwargs": TINY_VISION}, release=budgets)


@pytest.fixture(scope="module")
def built(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    data = reproduce(["fast"], small_preset(), device="cpu", root=root, log=lambda s: None)
    return root, data


def test_reproduce_writes_a_hugging_face_folder_and_a_manifest(built, world):
    root, data = built
    assert sorted(p.name for p in (root / "fast").iterdir()) == [
        "config.json", "model.safetensors", "training.json"]
    entry = data["models"]["fast"]
    assert set(entry["sha256"]) == {"config.json", "model.safetensors", "training.json"}
    assert entry["budget"]["steps"] > 0 and entry["training_seconds"] > 0
    assert {"final_loss", "val_R@1"} <= set(entry["validation"])
    assert entry["machine"] and entry["torch"] == torch.__version__
    assert json.loads((root / MANIFEST_NAME).read_text())["models"]["fast"] == entry
    # The folder alone rebuilds the model (no training code, no manifest).
    model = DualEncoder.from_pretrained(root / "fast")
    rel = Releases(small_preset(), torch.device("cpu"), mode="release", root=root, world=world)
    loaded, history, was_loaded = rel.get("fast")
    assert was_loaded and history["steps"] == entry["budget"]["steps"]
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_reproduce_resumes_a_matching_model(built):
    root, data = built
    again = reproduce(["fast"], small_preset(), device="cpu", root=root, log=lambda s: None)
    assert again["models"]["fast"] == data["models"]["fast"]


def test_missing_and_altered_files_name_the_file_and_the_fix(built, tmp_path):
    root, _ = built
    import shutil

    copy = tmp_path / "release"
    shutil.copytree(root, copy)
    assert verify_release("fast", copy)["sha256"]
    weights = copy / "fast" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"model\.safetensors was altered.*make reproduce"):
        verify_release("fast", copy)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing.*git checkout"):
        verify_release("fast", copy)
    with pytest.raises(FileNotFoundError, match="not in"):
        verify_release("slow", copy)
    with pytest.raises(ValueError, match="unknown release model"):
        verify_release("nope", copy)


def test_release_mode_never_trains_a_model_the_code_no_longer_matches(built, world):
    root, _ = built
    rel = Releases(small_preset(epochs=2), torch.device("cpu"), mode="release", root=root,
                   world=world)
    with pytest.raises(ValueError, match=r"trained from something else.*epochs.*make reproduce"):
        rel.get("fast")


def test_load_only_checkpoints_raise_when_missing(tmp_path):
    def build(config):
        return torch.nn.Linear(2, 2)

    def train(model):
        raise AssertionError("must not train")

    with pytest.raises(FileNotFoundError, match="is missing; run this"):
        load_or_train(tmp_path / "absent", build, train, {"a": 1}, may_train=False,
                      rebuild_hint="run this")


def test_train_mode_switch(monkeypatch):
    monkeypatch.delenv("FASTSLOW_TRAIN", raising=False)
    assert train_mode() == "release"
    monkeypatch.setenv("FASTSLOW_TRAIN", "full")
    assert train_mode() == "full"
    monkeypatch.setenv("FASTSLOW_TRAIN", "fast")
    with pytest.raises(ValueError, match="FASTSLOW_TRAIN='fast'"):
        train_mode()


def test_the_committed_release_models_match_their_manifest():
    root = repo_root() / "data" / "release"
    data = manifest(root)
    assert data["models"], "data/release/MANIFEST.json lists no models: run make reproduce"
    assert set(data["models"]) <= set(RELEASES)
    for name in data["models"]:
        verify_release(name, root)
    total = sum(Path(root / n / "model.safetensors").stat().st_size for n in data["models"])
    assert total == data["total_weight_bytes"] and total < 60e6
    assert data["budgets"] == get_preset("cpu").release_budgets().to_dict()
