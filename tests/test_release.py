"""Release models: Hugging Face folders, the manifest's sha256 checks and their errors, resuming,
the FASTSLOW_TRAIN switch, and the committed release folder itself."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from shared import TINY_VISION

from fastslow_course.manifest import sha256_file
from fastslow_course.release import (
    MANIFEST_NAME,
    Releases,
    manifest,
    reproduce,
    train_mode,
    verify_release,
)
from fastslow_course.reproduce_check import check_reproduction
from fastslow_lib.config.presets import get_preset
from fastslow_lib.config.training import (
    DistillConfig,
    FastTrainConfig,
    ReleaseBudgets,
    SlowTrainConfig,
)
from fastslow_lib.core.cache import Recipe, load_or_train
from fastslow_lib.core.intervals import prediction_interval
from fastslow_lib.core.paths import repo_root
from fastslow_lib.fast.model import DualEncoder
from fastslow_lib.registry import REGISTRY

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
    data = reproduce(["fast"], small_preset(), device="cpu", root=root, log=lambda s: None,
                     allow_dirty=True)
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
    again = reproduce(["fast"], small_preset(), device="cpu", root=root, log=lambda s: None,
                     allow_dirty=True)
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
        load_or_train(tmp_path / "absent", Recipe({"a": 1}, build, train), may_train=False,
                      rebuild_hint="run this")


def test_train_mode_switch(monkeypatch):
    monkeypatch.delenv("FASTSLOW_TRAIN", raising=False)
    assert train_mode() == "release"
    monkeypatch.setenv("FASTSLOW_TRAIN", "full")
    assert train_mode() == "full"
    monkeypatch.setenv("FASTSLOW_TRAIN", "fast")
    with pytest.raises(ValueError, match="FASTSLOW_TRAIN='fast'"):
        train_mode()


def test_a_retrained_model_is_checked_against_the_manifest_interval(built, tmp_path,
                                                                     monkeypatch):
    root, data = built
    monkeypatch.setenv("FASTSLOW_RELEASE_DIR", str(root))
    lines = []
    record = check_reproduction("fast", small_preset(), device="cpu", scratch=tmp_path / "s",
                                record_to=tmp_path / "check.json", log=lines.append)
    check = record["checks"]["val_R@1"]
    assert check["committed"] == data["models"]["fast"]["validation"]["val_R@1"]
    assert check["queries"] == 20 and check["interval"][0] <= check["committed"]
    assert record["within"] == (check["interval"][0] <= check["reproduced"] <= check["interval"][1])
    assert record["within"]  # the same seed on the same machine
    assert (tmp_path / "s" / "fast" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "check.json").read_text())["checks"] == [record]
    assert any("within" in line for line in lines)
    assert verify_release("fast", root)  # the committed folder is untouched


def test_the_same_recipe_at_other_seeds_is_recorded_beside_the_check(built, tmp_path,
                                                                      monkeypatch):
    root, data = built
    monkeypatch.setenv("FASTSLOW_RELEASE_DIR", str(root))
    lines = []
    record = check_reproduction("fast", small_preset(), device="cpu", scratch=tmp_path / "s",
                                record_to=tmp_path / "check.json", seeds=[1, 2],
                                log=lines.append)
    assert record["seed"] == 0 and set(record["seed_runs"]) == {"1", "2"}
    assert set(record["seed_runs"]["1"]) == set(record["checks"]) == {"val_R@1"}
    # two other seeds: the verdict is the recipe's prediction interval, the sampling one kept
    check = record["checks"]["val_R@1"]
    spread = prediction_interval([check["committed"]] + [r["val_R@1"] for r in
                                                         record["seed_runs"].values()])
    assert check["seed_interval"] == [round(spread.low, 2), round(spread.high, 2)]
    assert record["within"] == (spread.low <= check["reproduced"] <= spread.high)
    low, high = check["interval"]
    assert check["within_sampling"] == (low <= check["reproduced"] <= high)
    assert any("prediction interval of the recipe's runs" in line for line in lines)
    other = tmp_path / "s" / "seed-1" / "fast"
    saved = json.loads((other / "training.json").read_text())
    assert saved["config"]["train"]["seed"] == 1
    assert sha256_file(other / "model.safetensors") != sha256_file(
        tmp_path / "s" / "fast" / "model.safetensors")  # another seed, other weights
    assert any("at seeds 1" in line for line in lines)
    assert verify_release("fast", root)
    with pytest.raises(ValueError, match="other than the committed seed 0"):
        check_reproduction("fast", small_preset(), device="cpu", scratch=tmp_path / "s",
                           record_to=tmp_path / "check.json", seeds=[0], log=lines.append)
    with pytest.raises(ValueError, match="must be distinct"):
        check_reproduction("fast", small_preset(), device="cpu", scratch=tmp_path / "s",
                           record_to=tmp_path / "check.json", seeds=[2, 2], log=lines.append)


def test_release_budgets_with_another_seed_change_every_run_and_only_the_seed():
    budgets = get_preset("cpu").release_budgets()
    other = budgets.with_seed(3)
    assert budgets.seeds() == [0] and other.seeds() == [3]
    assert other.video.slow_train.seed == other.itm_train.seed == other.fast_train.seed == 3
    assert dataclasses.replace(other.fast_train, seed=0) == budgets.fast_train
    assert other.with_seed(0) == budgets
    with pytest.raises(ValueError, match="seed must be at least 0"):
        budgets.with_seed(-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        budgets.with_seed("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds name unknown models"):
        Releases(get_preset("tiny"), "cpu", mode="release", seeds={"fats": 1})


def test_the_committed_release_models_match_their_manifest():
    root = repo_root() / "data" / "release"
    data = manifest(root)
    assert data["models"], "data/release/MANIFEST.json lists no models: run make reproduce"
    assert set(data["models"]) <= set(REGISTRY)
    for name in data["models"]:
        verify_release(name, root)
    total = sum(Path(root / n / "model.safetensors").stat().st_size for n in data["models"])
    assert total == data["total_weight_bytes"] and total < 60e6
    assert data["budgets"] == get_preset("cpu").release_budgets().to_dict()


def test_the_caption_detail_worlds_match_their_manifests_within_the_weights_budget():
    root = repo_root() / "data" / "release"
    worlds = sorted(p for p in root.glob("captions-*") if (p / MANIFEST_NAME).is_file())
    assert worlds, "no caption-detail world under data/release (notebook 03 reads them)"
    for folder in worlds:
        data = manifest(folder)
        detail = int(folder.name.split("-")[1]) / 100
        assert data["budgets"] == get_preset("cpu").with_caption_detail(detail) \
            .release_budgets().to_dict()
        for name in data["models"]:
            entry = verify_release(name, folder)
            assert "+changes" not in entry["commit"], f"{folder.name}/{name}: dirty commit"
            if entry.get("stored_dtype"):  # float16 storage keeps the figures before and after
                assert entry["trained_sha256"] != entry["sha256"]["model.safetensors"]
                assert set(entry["validation_as_trained"]) == set(entry["validation"])
    # every committed weights file under data/, the repository's budget (60 MiB in all)
    total = sum(p.stat().st_size for p in (repo_root() / "data").glob("release/**/*.safetensors"))
    assert total < 60 * 2**20, f"committed weights under data/release total {total / 2**20:.1f} MiB"


def test_test_scores_are_kept_beside_the_model_and_follow_its_weights(world, tmp_path):
    import numpy as np

    from fastslow_lib.data import RetrievalProtocol
    from fastslow_lib.slow.scoring import slow_scores

    preset = dataclasses.replace(small_preset(), slow_model={
        **get_preset("tiny").slow_model, "vision_kwargs": TINY_VISION})
    reproduce(["slow"], preset, device="cpu", root=tmp_path, log=lambda s: None, allow_dirty=True)
    assert (tmp_path / "scores" / "slow_test.safetensors").is_file()   # reproduce refreshed them
    rel = Releases(preset, torch.device("cpu"), mode="release", root=tmp_path, world=world)
    arrays, loaded = rel.test_scores("slow")
    assert loaded and set(arrays) == {"query_ids", "forward", "backward"}
    test = RetrievalProtocol.from_split(world.test)
    ids = test.query_subset(preset.slow_queries, seed=0)
    np.testing.assert_array_equal(arrays["query_ids"], ids)
    want = slow_scores(rel.get("slow")[0], rel.tokenizer, [test.queries[q] for q in ids],
                       test.gallery, max_len=preset.release_budgets().slow_train.max_len,
                       directions=("forward",))
    np.testing.assert_allclose(arrays["forward"], want, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="Slow-type"):
        rel.test_scores("fast")


def test_the_committed_test_scores_belong_to_the_committed_slow():
    from fastslow_lib.core.cache import file_fingerprint

    root = repo_root() / "data" / "release"
    for name in ("slow", "video_slow"):
        meta = json.loads((root / "scores" / f"{name}_test.json").read_text())
        assert meta["config"]["model"] == file_fingerprint(root / name), \
            f"data/release/scores/{name}_test.* come from another model: make reproduce ONLY={name}"


def test_the_chosen_student_is_the_best_on_validation(tmp_path):
    from fastslow_course.release import chosen_student

    with pytest.raises(FileNotFoundError, match="no distilled student"):
        chosen_student(tmp_path)

    def write(**val):
        models = {n: {"validation": {"val_R@1": v}} for n, v in val.items()}
        (tmp_path / MANIFEST_NAME).write_text(json.dumps({"models": models}))

    write(fast=90.0, fast_distilled=80.0)
    assert chosen_student(tmp_path) == "fast_distilled"
    write(fast_distilled=80.0, fast_ranked=81.0)
    assert chosen_student(tmp_path) == "fast_ranked"
    write(fast_distilled=81.0, fast_ranked=81.0)   # a tie keeps the paper's signal
    assert chosen_student(tmp_path) == "fast_distilled"


def test_reproduce_refuses_to_stamp_a_model_from_uncommitted_library_code(monkeypatch, tmp_path):
    import fastslow_course.release as release

    monkeypatch.setattr(release, "git_commit", lambda: "0123456789ab+changes")
    with pytest.raises(RuntimeError, match="uncommitted changes.*commit them first.*--allow-dirty"):
        reproduce(["fast"], small_preset(), device="cpu", root=tmp_path, log=lambda s: None)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing stamped


def test_the_library_diff_hash_follows_uncommitted_changes(monkeypatch, tmp_path):
    import subprocess

    from fastslow_course.release import library_diff_hash

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "fastslow_lib").mkdir()
    (tmp_path / "fastslow_lib" / "a.py").write_text("A = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "x")
    monkeypatch.chdir(tmp_path)  # the repository root is found from the working directory
    assert library_diff_hash() is None
    (tmp_path / "fastslow_lib" / "a.py").write_text("A = 2\n")
    edited = library_diff_hash()
    (tmp_path / "fastslow_lib" / "b.py").write_text("B = 1\n")  # an untracked module counts too
    both = library_diff_hash()
    assert edited and both and len({edited, both}) == 2
    (tmp_path / "fastslow_lib" / "a.py").write_text("A = 3\n")
    assert library_diff_hash() not in (edited, both, None)
    (tmp_path / "notes.txt").write_text("outside the library\n")
    (tmp_path / "fastslow_lib" / "a.py").write_text("A = 1\n")
    (tmp_path / "fastslow_lib" / "b.py").unlink()
    assert library_diff_hash() is None


def test_a_manifest_entry_whose_folder_was_removed_does_not_stop_the_next_write(tmp_path):
    """Removing a model's folder is how one has ``make reproduce`` train it again: writing the
    manifest after the first retrained model must not fail on the folders still missing."""
    from fastslow_course.release import write_manifest

    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "model.safetensors").write_bytes(b"x" * 10)
    data = {"models": {"fast": {"what": "kept"}, "slow": {"what": "folder removed"}}}
    write_manifest(tmp_path, data)
    written = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert written["total_weight_bytes"] == 10 and set(written["models"]) == {"fast", "slow"}


def test_the_kept_demonstration_teacher_table_belongs_to_the_committed_slow():
    """Notebook 03's demonstration student learns from a teacher table kept beside the release
    models (data/release/scores/demo/); it must be the committed Slow's, and the groups the
    committed Fast mines (their key)."""
    from fastslow_lib.core.cache import file_fingerprint

    root = repo_root() / "data" / "release"
    meta = json.loads((root / "scores" / "demo" / "teacher_scores_cpu.json").read_text())
    assert meta["config"]["teacher"] == file_fingerprint(root / "slow" / "model.safetensors"), \
        "data/release/scores/demo/ holds another teacher's table: rerun notebook 03 and commit it"
    assert meta["config"]["world"] == get_preset("cpu").world.key()
