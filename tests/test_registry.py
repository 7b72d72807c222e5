"""The registry of models: one entry per model, one factory (fastslow_lib.registry)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from shared import TINY_VISION

from fastslow_lib.config.presets import get_preset
from fastslow_lib.config.training import FastTrainConfig
from fastslow_lib.core.checkpoint import read_metadata
from fastslow_lib.fast.model import DualEncoder
from fastslow_lib.fast.training import fast_recipe
from fastslow_lib.registry import (
    REGISTRY,
    Models,
    ModelSpec,
    create_model,
    list_models,
    model_spec,
    register,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_preset():
    tiny = get_preset("tiny")
    return dataclasses.replace(tiny, fast_model={**tiny.fast_model, "vision_kwargs": TINY_VISION},
                               fast_train=FastTrainConfig(epochs=1, batch_size=32,
                                                          val_queries=20))


def test_every_entry_names_registered_parents_before_itself():
    names = list_models()
    assert names[:2] == ["fast", "slow"] and len(names) == len(set(names)) == len(REGISTRY)
    for i, name in enumerate(names):
        spec = model_spec(name)
        assert spec.name == name and spec.kind in ("fast", "slow")
        assert all(names.index(p) < i for p in spec.parents), name
        assert spec.notebook[:2].isdigit() and spec.what


def test_bad_names_and_entries_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'fats'.*'fast'"):
        model_spec("fats")
    with pytest.raises(ValueError, match="already registered"):
        register(REGISTRY["fast"])
    with pytest.raises(ValueError, match="unregistered parents \\['nope'\\]"):
        register(ModelSpec("child", "x", "01_fast", REGISTRY["fast"].recipe, ("nope",)))
    with pytest.raises(ValueError, match="kind 'medium'"):
        register(ModelSpec("odd", "x", "01_fast", REGISTRY["fast"].recipe, kind="medium"))
    with pytest.raises(TypeError, match="takes a ModelSpec"):
        register({"name": "dict"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds name unknown models \\['fats'\\]"):
        Models(get_preset("tiny"), torch.device("cpu"), seeds={"fats": 1})
    assert "child" not in REGISTRY and "odd" not in REGISTRY


def test_the_factory_trains_once_then_loads_through_the_entry(world, tmp_path):
    preset = tiny_preset()
    budgets = preset.live_budgets()
    model, history, loaded = create_model("fast", preset, root=tmp_path, device="cpu",
                                          world=world, budgets=budgets)
    assert isinstance(model, DualEncoder) and not loaded and history["steps"] > 0
    again, history2, loaded = create_model("fast", preset, root=tmp_path, device="cpu",
                                           world=world, budgets=budgets)
    assert loaded and history2 == history
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    # The key is the recipe's own: what the entry builds is what fast_recipe describes.
    recipe = fast_recipe(world, world.tokenizer(), preset.fast_model, budgets.fast_train)
    assert read_metadata(tmp_path / "fast")["config"] == dict(recipe.key)
    # A load-only store refuses a model made from another budget, naming the difference.
    longer = dataclasses.replace(budgets, fast_train=dataclasses.replace(budgets.fast_train,
                                                                         epochs=2))
    with pytest.raises(ValueError, match="trained from something else.*epochs"):
        create_model("fast", preset, root=tmp_path, device="cpu", world=world,
                     budgets=longer, may_train=False)


def test_adding_a_model_is_one_entry(world, tmp_path):
    preset = tiny_preset()
    spec = ModelSpec(
        "fast_wide", "Fast with wider embeddings", "01_fast",
        lambda m, name: fast_recipe(m.world, m.tokenizer, {**m.preset.fast_model,
                                                           "embed_dim": 48},
                                    m.budgets_for(name).fast_train, device=m.device))
    register(spec)
    try:
        model, _, loaded = create_model("fast_wide", preset, root=tmp_path, device="cpu",
                                        world=world, budgets=preset.live_budgets())
        assert not loaded and model.config.embed_dim == 48
        assert (tmp_path / "fast_wide" / "model.safetensors").is_file()
    finally:
        del REGISTRY["fast_wide"]


def test_a_child_takes_its_parents_from_another_store(world, tmp_path):
    """A demonstration model made from the release models: its parents come from that store,
    their folders' hashes join its key, and the parent store trains nothing of its own."""
    preset = tiny_preset()
    budgets = preset.live_budgets()
    parents = Models(preset, torch.device("cpu"), tmp_path / "release", world=world,
                     budgets=budgets)
    store = Models(preset, torch.device("cpu"), tmp_path / "live", world=world, budgets=budgets,
                   parents=parents, cache_dir=tmp_path / "cache")
    video = store.get("video_fast_mean")
    assert not video.loaded and (tmp_path / "release" / "fast").is_dir()
    assert not (tmp_path / "live" / "fast").exists()
    key = read_metadata(tmp_path / "live" / "video_fast_mean")["config"]
    assert set(key["parents"]) == {"image_model"} and key["temporal"] == "mean"
