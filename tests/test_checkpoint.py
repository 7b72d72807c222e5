"""Tests for the one persistence layer (fastslow_lib.core.checkpoint) and the one model cache
(fastslow_lib.core.cache.load_or_train): round trips, tied tensors, corrupt files, keys."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from fastslow_lib.core.cache import Recipe, load_or_train
from fastslow_lib.core.checkpoint import (
    cached_arrays,
    cached_item,
    checkpoint_exists,
    config_differences,
    load_state,
    read_metadata,
    save_checkpoint,
    write_atomic,
)
from fastslow_lib.fast.model import DualEncoder, FastConfig

TINY = FastConfig(
    vocab_size=20, max_len=12, embed_dim=16, text_width=16, text_layers=1, text_heads=2,
    image_size=32, vision_kwargs={"layers": (1, 1, 1, 1), "channels": (8, 8, 16, 16),
                                  "stem_type": "deep", "stem_width": 8},
)


pytestmark = pytest.mark.usefixtures("one_thread")


class Tied(nn.Module):
    """Two layers sharing one weight tensor, plus a non-contiguous (transposed) parameter."""

    def __init__(self, dim: int = 4, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Linear(dim, dim, bias=False)
        self.decoder = nn.Linear(dim, dim, bias=False)
        self.decoder.weight = self.encoder.weight
        self.transposed = nn.Parameter(torch.randn(dim, dim).T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)) @ self.transposed


def dual_outputs(model: DualEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 32, 32, generator=gen)
    ids = torch.tensor([[2, 7, 8, 9, 3, 0], [2, 10, 11, 3, 0, 0]])
    with torch.no_grad():
        img, txt, _ = model.eval()(images, ids, (ids != 0).long())
    return img, txt


def recipe(key: dict, build, train=lambda m: {"history": {}}) -> Recipe:
    return Recipe(key, build, train)


def test_dual_encoder_round_trip_gives_the_same_outputs(tmp_path: Path):
    torch.manual_seed(0)
    model = DualEncoder(TINY)
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
    # a training step's worth of BatchNorm statistics, so buffers are checked too
    model.train().vision(torch.rand(4, 3, 32, 32))
    assert save_checkpoint(model, tmp_path / "fast", TINY, {"epochs": 2}) == tmp_path / "fast"
    for loaded in (DualEncoder.from_pretrained(tmp_path / "fast"),
                   load_state(DualEncoder(TINY), tmp_path / "fast").eval()):
        assert isinstance(loaded, DualEncoder) and not loaded.training
        assert loaded.config == TINY
        for got, want in zip(dual_outputs(loaded), dual_outputs(model), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert float(loaded.logit_scale.detach()) == 3.0
    meta = read_metadata(tmp_path / "fast")
    assert meta["extra"] == {"epochs": 2}
    assert meta["config"] == TINY.to_dict()
    assert meta["model_class"].endswith("DualEncoder")
    assert not [p for p in (tmp_path / "fast").iterdir() if ".tmp" in p.name]  # atomic writes


def test_tied_and_non_contiguous_tensors_are_saved_once_and_restored(tmp_path: Path):
    from safetensors import safe_open

    model = Tied(seed=0)
    weights = save_checkpoint(model, tmp_path / "tied", {"dim": 4}) / "model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        assert sorted(f.keys()) == ["decoder.weight", "transposed"]  # the tied tensor once
    (tmp_path / "tied" / "training.json").unlink()  # the weights file alone must be enough
    other = load_state(Tied(seed=1), tmp_path / "tied")
    assert other.decoder.weight is other.encoder.weight  # still tied after loading
    x = torch.randn(3, 4)
    torch.testing.assert_close(other(x), model(x))


def test_missing_files_raise_file_not_found_naming_them(tmp_path: Path):
    path = tmp_path / "absent"
    with pytest.raises(FileNotFoundError, match=r"absent.model\.safetensors"):
        load_state(Tied(), path)
    save_checkpoint(Tied(), path, {"dim": 4})
    (path / "training.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"absent.training\.json.*delete"):
        read_metadata(path)
    with pytest.raises(FileNotFoundError, match="training.json"):
        load_or_train(path, recipe({"dim": 4}, lambda k: Tied()))


def test_truncated_weights_raise_value_error_saying_to_delete(tmp_path: Path):
    weights = save_checkpoint(Tied(), tmp_path / "cut", {"dim": 4}) / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.model\.safetensors.*truncated or corrupt.*delete"):
        load_state(Tied(), tmp_path / "cut")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_or_train(tmp_path / "cut", recipe({"dim": 4}, lambda k: Tied()))
    weights.write_bytes(b"")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        Tied().load_state_dict(load_state(Tied(), tmp_path / "cut").state_dict())


def test_corrupt_metadata_raises_value_error(tmp_path: Path):
    save_checkpoint(Tied(), tmp_path / "m", {"dim": 4})
    (tmp_path / "m" / "training.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"training\.json.*corrupt.*delete"):
        read_metadata(tmp_path / "m")
    (tmp_path / "m" / "training.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(ValueError, match="not fastslow checkpoint metadata"):
        read_metadata(tmp_path / "m")


def test_key_mismatch_lists_the_differing_keys(tmp_path: Path):
    save_checkpoint(DualEncoder(TINY), tmp_path / "f", TINY)
    wanted = TINY.to_dict() | {"embed_dim": 32, "dropout": 0.1}
    with pytest.raises(ValueError, match=r"dropout: saved 0\.0, wanted 0\.1; "
                                         r"embed_dim: saved 16, wanted 32.*make reproduce"):
        load_or_train(tmp_path / "f", recipe(wanted, DualEncoder), may_train=False,
                      rebuild_hint="make reproduce")
    # tuples and the lists JSON turns them into are the same config
    assert config_differences(TINY.to_dict(), {**TINY.to_dict(), "vision_kwargs": {
        "layers": (1, 1, 1, 1), "channels": (8, 8, 16, 16), "stem_type": "deep",
        "stem_width": 8}}) == []
    assert config_differences({"a": 1}, {"b": 2}) == ["a: saved 1, wanted '<missing>'",
                                                       "b: saved '<missing>', wanted 2"]
    # a long value (5,000 query ids) is shortened, its length said
    (line,) = config_differences({"ids": list(range(5000))}, {"ids": list(range(1, 5001))})
    assert len(line) < 400 and line.startswith("ids: saved [0, 1, 2") and "4999]" in line
    assert "characters)" in line


def test_load_state_lists_missing_unexpected_and_misshapen_keys(tmp_path: Path):
    path = tmp_path / "seq"
    save_checkpoint(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), path, {})
    with pytest.raises(ValueError, match=r"missing keys \['2.bias', '2.weight'\]"):
        load_state(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 2)), path)
    with pytest.raises(ValueError, match=r"unexpected keys \['1.bias', '1.weight'\]"):
        load_state(nn.Sequential(nn.Linear(3, 4)), path)
    with pytest.raises(ValueError, match=r"shape mismatches.*0.weight: saved \(4, 3\), model"):
        load_state(nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2)), path)


def test_load_or_train_trains_only_the_first_time(tmp_path: Path):
    path = tmp_path / "cache" / "fast"
    calls: list[int] = []

    def train(model: nn.Module) -> dict:
        calls.append(1)
        with torch.no_grad():
            model.logit_scale.fill_(4.0)  # "training" leaves a mark we can find after loading
        return {"history": {"loss": [1.0, 0.5]}, "seconds": 2.0}

    make = recipe(TINY.to_dict(), DualEncoder, train)
    first = load_or_train(path, make)
    assert (first.loaded, len(calls)) == (False, 1) and checkpoint_exists(path)
    assert not first.model.training
    second = load_or_train(path, make)
    assert (second.loaded, len(calls)) == (True, 1)
    assert float(second.model.logit_scale.detach()) == 4.0
    for got, want in zip(dual_outputs(second.model), dual_outputs(first.model), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert second.history == first.history == {"loss": [1.0, 0.5], "seconds": 2.0}
    assert read_metadata(path)["extra"] == {"history": {"loss": [1.0, 0.5]}, "seconds": 2.0}


def test_load_or_train_retrains_on_a_key_change_with_a_warning(tmp_path: Path):
    path = tmp_path / "tied"
    calls: list[int] = []

    def train(model: nn.Module) -> dict:
        calls.append(1)
        return {}

    load_or_train(path, recipe({"dim": 4}, lambda k: Tied(k["dim"]), train))
    with pytest.warns(UserWarning, match=r"dim: saved 4, wanted 6.*retraining"):
        again = load_or_train(path, recipe({"dim": 6}, lambda k: Tied(k["dim"]), train))
    assert not again.loaded and len(calls) == 2 and again.model.encoder.weight.shape == (6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_or_train(path, recipe({"dim": 6}, lambda k: Tied(k["dim"]), train)).loaded


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p: save_checkpoint(Tied(), p.with_suffix(".pt"), {}), ValueError, "model folder"),
        (lambda p: save_checkpoint(Tied(), p, {"f": object()}), TypeError, "JSON"),
        (lambda p: save_checkpoint(Tied(), p, {}, {"t": torch.ones(1)}), TypeError, "extra"),
        (lambda p: save_checkpoint("model", p, {}), TypeError, "nn.Module"),
        (lambda p: save_checkpoint(Tied(), p, [1, 2]), TypeError, "config must be a dict"),
        (lambda p: load_or_train(p, recipe({}, lambda k: Tied(), lambda m: 3)), TypeError,
         "train must return a dict"),
        (lambda p: load_or_train(p, recipe({}, lambda k: "x")), TypeError, "build returned"),
        (lambda p: write_atomic(p / "f.txt", 3), TypeError, "content must be"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path: Path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path / "x")


def test_write_atomic_leaves_the_old_file_when_a_write_fails(tmp_path: Path):
    path = write_atomic(tmp_path / "sub" / "f.txt", "old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, fail)
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]


def test_cached_arrays_load_if_present(tmp_path):
    import numpy as np

    calls = []

    def compute():
        calls.append(1)
        return {"scores": np.arange(6, dtype=np.float32).reshape(2, 3)}

    path = tmp_path / "teacher.safetensors"
    first, loaded = cached_arrays(path, {"k": 1}, compute)
    assert not loaded and len(calls) == 1
    again, loaded = cached_arrays(path, {"k": 1}, compute)
    assert loaded and len(calls) == 1
    np.testing.assert_array_equal(again["scores"], first["scores"])
    with pytest.warns(UserWarning, match="different config"):
        _, loaded = cached_arrays(path, {"k": 2}, compute)
    assert not loaded and len(calls) == 2
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(OSError, match=r"teacher\.safetensors.*unreadable.*delete"):
        cached_arrays(path, {"k": 2}, compute)
    with pytest.raises(TypeError, match="dict of numpy arrays"):
        cached_arrays(tmp_path / "x.safetensors", {}, lambda: {"a": [1, 2]})
    with pytest.raises(ValueError, match="NAME.safetensors"):
        cached_arrays(tmp_path / "x.npz", {}, compute)


def test_cached_item_keeps_arrays_and_metadata_and_names_what_is_unreadable(tmp_path):
    import numpy as np

    calls = []

    def generate() -> tuple[np.ndarray, list[str]]:
        calls.append(1)
        return np.arange(4, dtype=np.uint8), ["a red circle", "a blue square"]

    def pack(item):
        return {"pixels": item[0]}, {"captions": item[1]}

    def unpack(arrays, meta):
        return arrays["pixels"], meta["captions"]

    path = tmp_path / "split.safetensors"
    first = cached_item(path, {"world": "w1"}, generate, pack, unpack, what="world split 'x'")
    again = cached_item(path, {"world": "w1"}, generate, pack, unpack, what="world split 'x'")
    assert len(calls) == 1 and again[1] == first[1]
    np.testing.assert_array_equal(again[0], first[0])
    assert cached_item(None, {}, generate, pack, unpack) is not None and len(calls) == 2
    path.with_suffix(".json").write_text(json.dumps({"config": {"world": "w1"}, "meta": {}}))
    with pytest.raises(OSError, match=r"world split 'x'.*unreadable.*delete the folder"):
        cached_item(path, {"world": "w1"}, generate, pack, unpack, what="world split 'x'",
                    hint="delete the folder")


def test_a_folder_checkpoint_is_a_hugging_face_model_folder(tmp_path: Path):
    from fastslow_lib.core.cache import file_fingerprint

    torch.manual_seed(0)
    model = DualEncoder(TINY)
    folder = tmp_path / "fast"
    assert save_checkpoint(model, folder, {"model": TINY.to_dict()},
                           {"history": {"loss": [1]}}) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors",
                                                        "training.json"]
    assert checkpoint_exists(folder)
    assert json.loads((folder / "config.json").read_text()) == {"config": TINY.to_dict()}
    assert read_metadata(folder)["extra"] == {"history": {"loss": [1]}}
    # from_pretrained needs nothing but the folder; the model cache reads the same files.
    for loaded in (DualEncoder.from_pretrained(folder),
                   load_or_train(folder, recipe({"model": TINY.to_dict()},
                                                lambda k: DualEncoder(k["model"]))).model):
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert file_fingerprint(folder) == file_fingerprint(folder / "model.safetensors")
    out = tmp_path / "pushed"
    loaded.save_pretrained(out)  # the hub mixin's save: config.json + model.safetensors
    again = DualEncoder.from_pretrained(out)
    assert torch.equal(again.logit_scale, model.logit_scale)


def test_release_checkpoints_written_before_this_layer_still_load():
    """The committed release folders (written by the earlier hand-written tied-tensor code,
    with an ``aliases`` header) load through safetensors' own load_model, unchanged."""
    from fastslow_lib.core.paths import repo_root

    folder = repo_root() / "data" / "release" / "fast"
    if not folder.exists():
        pytest.skip("no release models in this checkout")
    model = DualEncoder.from_pretrained(folder)
    from safetensors.torch import load_file

    saved = load_file(str(folder / "model.safetensors"))
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name
