"""Shared test setup: offline Hugging Face hub, quiet tokenizers (set at import, before any
test module imports transformers/tokenizers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

# `make test` runs one pytest-xdist worker per core: one torch thread each, so that the workers
# share the cores without oversubscribing them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Path:
    """An empty directory for generated data/caches, removed with pytest's tmp_path."""
    cache = tmp_path / "cache"
    cache.mkdir()
    return cache


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny models (2 threads on a busy 2-core machine stall)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The tiny world, generated once per test module into a temporary folder."""
    from fastslow_lib.config.presets import get_preset
    from fastslow_lib.data import load_world

    return load_world(get_preset("tiny").world, tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def tok(world):
    """The tiny world's tokenizer."""
    return world.tokenizer()
