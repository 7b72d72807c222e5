"""Tests for fastslow_lib.core.checkpoint: round trips, tied tensors, corrupt files, config
checks."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from fastslow_lib.core.checkpoint import (
    checkpoint_exists,
    config_differences,
    load_checkpoint,
    load_if_present,
    load_state,
    metadata_path,
    read_metadata,
    save_checkpoint,
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


def test_dual_encoder_round_trip_gives_the_same_outputs(tmp_path: Path):
    torch.manual_seed(0)
    model = DualEncoder(TINY)
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
    # a training step's worth of BatchNorm statistics, so buffers are checked too
    model.train().vision(torch.rand(4, 3, 32, 32))
    path = save_checkpoint(model, tmp_path / "fast.safetensors", TINY, {"epochs": 2})
    assert path == tmp_path / "fast.safetensors" and metadata_path(path).is_file()
    loaded = load_checkpoint(DualEncoder, path)
    assert isinstance(loaded, DualEncoder) and not loaded.training
    assert loaded.config == TINY
    for got, want in zip(dual_outputs(loaded), dual_outputs(model), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert float(loaded.logit_scale.detach()) == 3.0
    meta = read_metadata(path)
    assert meta["extra"] == {"epochs": 2}
    assert meta["config"] == TINY.to_dict()
    assert meta["model_class"].endswith("DualEncoder")
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # atomic writes cleaned up


def test_tied_and_non_contiguous_tensors_are_saved_once_and_restored(tmp_path: Path):
    model = Tied(seed=0)
    path = save_checkpoint(model, tmp_path / "tied.safetensors", {"dim": 4})
    assert read_metadata(path)["aliases"] == {"decoder.weight": "encoder.weight"}
    other = load_checkpoint(lambda cfg: Tied(cfg["dim"], seed=1), path)
    assert other.decoder.weight is other.encoder.weight  # still tied after loading
    x = torch.randn(3, 4)
    torch.testing.assert_close(other(x), model(x))


def test_missing_files_raise_file_not_found_naming_them(tmp_path: Path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        load_checkpoint(DualEncoder, path)
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        load_state(Tied(), path)
    save_checkpoint(Tied(), path, {"dim": 4})
    metadata_path(path).unlink()
    with pytest.raises(FileNotFoundError, match=r"absent\.json.*delete"):
        load_checkpoint(lambda cfg: Tied(), path)


def test_truncated_weights_raise_value_error_saying_to_delete(tmp_path: Path):
    path = save_checkpoint(Tied(), tmp_path / "cut.safetensors", {"dim": 4})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.safetensors.*truncated or corrupt.*delete"):
        load_state(Tied(), path)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_if_present(path, lambda cfg: Tied(), lambda m: None, {"dim": 4})
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(lambda cfg: Tied(), path)


def test_corrupt_metadata_raises_value_error(tmp_path: Path):
    path = save_checkpoint(Tied(), tmp_path / "m.safetensors", {"dim": 4})
    metadata_path(path).write_text("{not json")
    with pytest.raises(ValueError, match=r"m\.json.*corrupt.*delete"):
        read_metadata(path)
    metadata_path(path).write_text(json.dumps({"config": {}}))
    with pytest.raises(ValueError, match="not fastslow checkpoint metadata"):
        read_metadata(path)


def test_config_mismatch_lists_the_differing_keys(tmp_path: Path):
    path = save_checkpoint(DualEncoder(TINY), tmp_path / "f.safetensors", TINY)
    wanted = TINY.to_dict() | {"embed_dim": 32, "dropout": 0.1}
    with pytest.raises(ValueError, match=r"different config: dropout: saved 0\.0, wanted 0\.1; "
                                         r"embed_dim: saved 16, wanted 32"):
        load_checkpoint(DualEncoder, path, expected_config=wanted)
    with pytest.raises(ValueError, match="embed_dim"):
        load_if_present(path, DualEncoder, lambda m: None, wanted, on_mismatch="error")
    # tuples and the lists JSON turns them into are the same config
    assert config_differences(TINY.to_dict(), {**TINY.to_dict(), "vision_kwargs": {
        "layers": (1, 1, 1, 1), "channels": (8, 8, 16, 16), "stem_type": "deep",
        "stem_width": 8}}) == []
    assert config_differences({"a": 1}, {"b": 2}) == ["a: saved 1, wanted '<missing>'",
                                                       "b: saved '<missing>', wanted 2"]


def test_load_state_lists_missing_unexpected_and_misshapen_keys(tmp_path: Path):
    path = save_checkpoint(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)),
                           tmp_path / "seq.safetensors", {})
    with pytest.raises(ValueError, match=r"missing keys \['2.bias', '2.weight'\]"):
        load_state(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 2)), path)
    with pytest.raises(ValueError, match=r"unexpected keys \['1.bias', '1.weight'\]"):
        load_state(nn.Sequential(nn.Linear(3, 4)), path)
    with pytest.raises(ValueError, match=r"shape mismatches.*0.weight: saved \(4, 3\), model"):
        load_state(nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2)), path)


def test_load_if_present_trains_only_the_first_time(tmp_path: Path):
    path = tmp_path / "cache" / "fast.safetensors"
    calls: list[int] = []

    def train(model: nn.Module) -> dict:
        calls.append(1)
        with torch.no_grad():
            model.logit_scale.fill_(4.0)  # "training" leaves a mark we can find after loading
        return {"history": [1.0, 0.5]}

    first, loaded = load_if_present(path, DualEncoder, train, TINY)
    assert (loaded, len(calls)) == (False, 1) and checkpoint_exists(path)
    assert not first.training
    second, loaded = load_if_present(path, DualEncoder, train, TINY)
    assert (loaded, len(calls)) == (True, 1)
    assert float(second.logit_scale.detach()) == 4.0
    for got, want in zip(dual_outputs(second), dual_outputs(first), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert read_metadata(path)["extra"] == {"history": [1.0, 0.5]}


def test_load_if_present_retrains_on_a_config_change_with_a_warning(tmp_path: Path):
    path = tmp_path / "tied.safetensors"
    calls: list[dict] = []
    load_if_present(path, lambda cfg: Tied(cfg["dim"]), lambda m: calls.append(1), {"dim": 4})
    with pytest.warns(UserWarning, match=r"dim: saved 4, wanted 6.*retraining"):
        model, loaded = load_if_present(path, lambda cfg: Tied(cfg["dim"]),
                                        lambda m: calls.append(1), {"dim": 6})
    assert not loaded and len(calls) == 2 and model.encoder.weight.shape == (6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, loaded = load_if_present(path, lambda cfg: Tied(cfg["dim"]), lambda m: None,
                                    {"dim": 6})
    assert loaded


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p: save_checkpoint(Tied(), p.with_suffix(".pt"), {}), ValueError, ".safetensors"),
        (lambda p: save_checkpoint(Tied(), p, {"f": object()}), TypeError, "JSON"),
        (lambda p: save_checkpoint(Tied(), p, {}, {"t": torch.ones(1)}), TypeError, "extra"),
        (lambda p: save_checkpoint("model", p, {}), TypeError, "nn.Module"),
        (lambda p: save_checkpoint(Tied(), p, [1, 2]), TypeError, "config must be a dict"),
        (lambda p: load_if_present(p, lambda c: Tied(), lambda m: 3, {}), TypeError,
         "train_fn must return None or a dict"),
        (lambda p: load_if_present(p, lambda c: "x", lambda m: None, {}), TypeError, "build_fn"),
        (lambda p: load_if_present(p, lambda c: Tied(), lambda m: None, {}, on_mismatch="keep"),
         ValueError, "on_mismatch"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path: Path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path / "x.safetensors")


def test_cached_arrays_load_if_present(tmp_path):
    import numpy as np

    from fastslow_lib.core.checkpoint import cached_arrays

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
    with pytest.raises(ValueError, match="unreadable"):
        cached_arrays(path, {"k": 2}, compute)
    with pytest.raises(TypeError, match="dict of numpy arrays"):
        cached_arrays(tmp_path / "x.safetensors", {}, lambda: {"a": [1, 2]})


def test_a_folder_checkpoint_is_a_hugging_face_model_folder(tmp_path: Path):
    from fastslow_lib.core.cache import file_fingerprint

    torch.manual_seed(0)
    model = DualEncoder(TINY)
    folder = tmp_path / "fast"
    weights = save_checkpoint(model, folder, {"model": TINY.to_dict()}, {"history": [1]})
    assert weights == folder / "model.safetensors"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors",
                                                        "training.json"]
    assert metadata_path(folder) == folder / "training.json" and checkpoint_exists(folder)
    assert json.loads((folder / "config.json").read_text()) == {"config": TINY.to_dict()}
    assert read_metadata(folder)["extra"] == {"history": [1]}
    # from_pretrained needs nothing but the folder; the training code reads the same files.
    for loaded in (DualEncoder.from_pretrained(folder),
                   load_checkpoint(lambda cfg: DualEncoder(cfg["model"]), folder)):
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert file_fingerprint(folder) == file_fingerprint(folder / "model.safetensors")
    out = tmp_path / "pushed"
    loaded.save_pretrained(out)  # the hub mixin's save: config.json + model.safetensors
    again = DualEncoder.from_pretrained(out)
    assert torch.equal(again.logit_scale, model.logit_scale)
    with pytest.raises(ValueError, match="a folder .no suffix"):
        save_checkpoint(model, tmp_path / "fast.pt", {})


def test_tied_names_travel_in_the_weights_file_itself(tmp_path: Path):
    model = Tied(seed=0)
    path = save_checkpoint(model, tmp_path / "tied", {"dim": 4})
    (tmp_path / "tied" / "training.json").unlink()  # the weights file alone must be enough
    other = load_state(Tied(seed=1), path)
    assert other.decoder.weight is other.encoder.weight
    x = torch.randn(3, 4)
    torch.testing.assert_close(other(x), model(x))
