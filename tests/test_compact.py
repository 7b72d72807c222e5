"""Release models stored in float16 (fastslow_course.compact): sizes, the parents' chain, the
figures measured again, bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from shared import TINY_VISION
from test_release import small_preset

from fastslow_course.compact import compact_release, half_weights
from fastslow_course.manifest import sha256_file, verify_release
from fastslow_course.release import MANIFEST_NAME, Releases, reproduce
from fastslow_lib.config.presets import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")


def preset():
    return dataclasses.replace(small_preset(), slow_model={
        **get_preset("tiny").slow_model, "vision_kwargs": TINY_VISION})


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("release32")
    reproduce(["fast", "slow", "fast_distilled"], preset(), device="cpu", root=root,
              log=lambda s: None, allow_dirty=True)
    return root


def test_compacting_halves_the_weights_and_keeps_the_chain_of_parents(trained, world, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(trained, root)
    before = json.loads((root / MANIFEST_NAME).read_text())["models"]
    trained_weights = {n: load_file(str(root / n / "model.safetensors")) for n in before}
    rel = Releases(preset(), torch.device("cpu"), mode="release", root=root, world=world)
    lines: list[str] = []
    data = compact_release(["fast", "slow", "fast_distilled"], rel, log=lines.append)
    for name, entry in data["models"].items():
        weights = root / name / "model.safetensors"
        assert entry["stored_dtype"] == "float16"
        assert entry["trained_sha256"] == before[name]["sha256"]["model.safetensors"]
        assert weights.stat().st_size < 0.6 * (trained / name / "model.safetensors").stat().st_size
        with safe_open(str(weights), framework="pt") as f:
            assert f.metadata()["trained_sha256"] == entry["trained_sha256"]
        stored = load_file(str(weights))
        for key, value in trained_weights[name].items():
            if value.dtype == torch.float32:
                assert stored[key].dtype == torch.float16
                torch.testing.assert_close(stored[key], value.to(torch.float16), rtol=0, atol=0)
        verify_release(name, root)  # the manifest follows the files
        assert entry["validation_as_trained"] == before[name]["validation"]
        assert set(entry["validation"]) == set(entry["validation_as_trained"])
    # The student's key names its parents' stored weights, the trained ones kept beside them.
    student = data["models"]["fast_distilled"]
    assert student["parents"] == {p: data["models"][p]["sha256"]["model.safetensors"]
                                  for p in ("fast", "slow")}
    assert student["parents_as_trained"] == before["fast_distilled"]["parents"]
    # ... so release mode loads the whole chain: each model in float32, with the stored values.
    fresh = Releases(preset(), torch.device("cpu"), mode="release", root=root, world=world)
    model, _, loaded = fresh.get("fast_distilled")
    assert loaded
    for key, value in model.state_dict().items():
        if key in trained_weights["fast_distilled"] and value.is_floating_point():
            assert value.dtype == torch.float32
            torch.testing.assert_close(
                value, trained_weights["fast_distilled"][key].half().float(), rtol=0, atol=0)
    # Compacting again keeps what is already stored in float16.
    again = compact_release(["fast"], fresh, log=lines.append)
    assert again["models"] == data["models"] and "already stored in float16" in lines[-1]


def test_a_value_float16_cannot_hold_and_an_unknown_model_are_clear_errors(trained, world,
                                                                             tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"ok": torch.ones(3), "big": torch.tensor([1.0, 1e6])}, str(path))
    digest = sha256_file(path)
    with pytest.raises(ValueError, match=r"\['big'\].*float16 cannot represent"):
        half_weights(path, trained_sha256=digest)
    assert sha256_file(path) == digest  # nothing written
    rel = Releases(preset(), torch.device("cpu"), mode="release", root=trained, world=world)
    with pytest.raises(ValueError, match=r"cannot compact \['fast_ranked'\]: not in.*train them"):
        compact_release(["fast_ranked"], rel)
