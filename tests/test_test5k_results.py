"""results/test5k.json is used only when it describes this checkout's 5K protocol and release
models (fastslow_course.test5k): a stale file says what to rerun."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastslow_course.manifest import manifest, release_dir
from fastslow_course.test5k import Kept5K
from fastslow_lib.config.presets import get_preset
from fastslow_lib.data.protocols import TEST5K_VERSION


def _file(tmp_path, **changes) -> object:
    preset = get_preset("cpu")
    released = manifest(release_dir(preset))["models"]

    def sha(name: str) -> str:
        return released[name]["sha256"]["model.safetensors"]

    data = {"version": TEST5K_VERSION, "world": preset.world.key(),
            "fast": {"fast": {"sha256": sha("fast"), "ranks": [1, 2, 3],
                              "consistent_bits": "101"}},
            "shortlists": {"slow": {"sha256": sha("slow"), "fast": {"ranks": [1, 1],
                                                                    "consistent_bits": "11"}}},
            "slow_all": {"sha256": sha("slow"), "ranks": [1, 4], "consistent_bits": "10",
                         "reranked_hits": {"fast": {"10": "10"}}},
            "slow_query_ids": [0, 2], "shortlist_query_ids": [0, 2], "Ks": [10],
            "protocol": {"images": 3}}
    data.update(changes)
    path = tmp_path / "test5k.json"
    path.write_text(json.dumps(data))
    return path


def test_a_matching_file_loads_and_gives_arrays(tmp_path):
    kept = Kept5K.load(get_preset("cpu"), _file(tmp_path))
    np.testing.assert_array_equal(kept.fast_ranks(), [1, 2, 3])
    np.testing.assert_array_equal(kept.fast_consistent(), [1, 0, 1])
    np.testing.assert_array_equal(kept.reranked_hits("fast", 10), [1, 0])
    np.testing.assert_array_equal(kept.shortlist_ranks("slow"), [1, 1])
    assert kept.ks == [10] and kept.slow_ids.tolist() == [0, 2]


def test_a_stale_or_missing_file_says_what_to_rerun(tmp_path):
    preset = get_preset("cpu")
    with pytest.raises(FileNotFoundError, match="rerun scripts/test5k.py"):
        Kept5K.load(preset, tmp_path / "nothing.json")
    with pytest.raises(ValueError, match="another 5K protocol or world"):
        Kept5K.load(preset, _file(tmp_path, version=TEST5K_VERSION + 1))
    other = {"fast": {"sha256": "0" * 64, "ranks": [1], "consistent_bits": "1"}}
    with pytest.raises(ValueError, match="other weights of 'fast'.*rerun scripts/test5k.py"):
        Kept5K.load(preset, _file(tmp_path, fast=other))
