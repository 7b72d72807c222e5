"""The course's kept paired intervals: the library's answer, bit for bit, computed once."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import fastslow_course.kept_intervals as kept
from fastslow_lib.core.intervals import paired_difference_interval as computed


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTSLOW_DATA", str(tmp_path))
    monkeypatch.setattr(kept, "_KEPT", {})
    return tmp_path / "intervals"


def outcomes(n, seed, p=0.7):
    r = np.random.default_rng(seed)
    return (r.random(n) < p) * 1.0, (r.random(n) < p - 0.1) * 1.0


def test_kept_equals_computed_bit_for_bit_and_is_read_back(cache, monkeypatch):
    a, b = outcomes(3000, 1)
    first = kept.paired_difference_interval(a, b)
    assert first == computed(a, b)
    assert len(list(cache.rglob("*.json"))) == 1
    # a new process (empty memory) reads the file: the library is not called again
    monkeypatch.setattr(kept, "_KEPT", {})
    monkeypatch.setattr(kept, "_computed", lambda *a, **k: pytest.fail("computed again"))
    assert kept.paired_difference_interval(list(a), list(b)) == first


def test_every_input_is_in_the_key(cache):
    a, b = outcomes(500, 2)
    base = kept.paired_difference_interval(a, b)
    variants = [kept.paired_difference_interval(b, a),
                kept.paired_difference_interval(a, b, level=0.9),
                kept.paired_difference_interval(a, b, seed=1),
                kept.paired_difference_interval(a, b, resamples=2000),
                kept.paired_difference_interval(np.roll(a, 1), b)]
    assert len(list(cache.rglob("*.json"))) == 6
    assert all(v == w for v, w in zip(variants, [
        computed(b, a), computed(a, b, level=0.9), computed(a, b, seed=1),
        computed(a, b, resamples=2000), computed(np.roll(a, 1), b)], strict=True))
    assert base != variants[0]


def test_an_unreadable_file_is_computed_again(cache, monkeypatch):
    a, b = outcomes(400, 3)
    want = kept.paired_difference_interval(a, b)
    (path,) = cache.rglob("*.json")
    path.write_text("{not json")
    monkeypatch.setattr(kept, "_KEPT", {})
    assert kept.paired_difference_interval(a, b) == want
    assert path.read_text().startswith('{"value"')


def test_bad_input_gets_the_library_error(cache):
    with pytest.raises(ValueError, match="same length"):
        kept.paired_difference_interval([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        kept.paired_difference_interval([2, 0], [1, 0])
    with pytest.raises(ValueError, match="level"):
        kept.paired_difference_interval([1, 0], [1, 0], level=1.5)
    assert not cache.exists()


def test_a_read_only_cache_still_answers(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("FASTSLOW_DATA", str(blocked))
    monkeypatch.setattr(kept, "_KEPT", {})
    a, b = outcomes(300, 4)
    assert kept.paired_difference_interval(a, b) == computed(a, b)


def test_the_committed_file_answers_first_and_holds_only_what_was_used(cache, tmp_path,
                                                                        monkeypatch):
    results = tmp_path / "results"
    monkeypatch.setenv("FASTSLOW_RESULTS", str(results))
    a, b = outcomes(800, 5)
    c, d = outcomes(900, 6)
    want = kept.paired_difference_interval(a, b)
    path = kept.write_kept()
    assert path == results / kept.KEPT_NAME and len(json.loads(path.read_text())) == 1
    # a fresh clone: no cache folder, an empty memory; the committed file answers
    shutil.rmtree(cache)
    monkeypatch.setattr(kept, "_KEPT", {})
    monkeypatch.setattr(kept, "_computed", lambda *a, **k: pytest.fail("computed again"))
    assert kept.paired_difference_interval(a, b) == want
    monkeypatch.undo()
    monkeypatch.setenv("FASTSLOW_DATA", str(tmp_path))
    monkeypatch.setenv("FASTSLOW_RESULTS", str(results))
    monkeypatch.setattr(kept, "_KEPT", {})
    kept.paired_difference_interval(c, d)          # another process used only this one
    assert len(json.loads(kept.write_kept().read_text())) == 1
    assert kept.paired_difference_interval(c, d) == computed(c, d)


def test_the_committed_file_is_exactly_the_committed_claims_table(monkeypatch, tmp_path):
    """results/kept_intervals.json holds the intervals the committed claims table uses, no
    more (``make course`` writes it after the table), so a fresh clone never resamples."""
    from fastslow_course.report import claims_table
    from fastslow_course.results import load_summary, resolve_results_dir

    committed = json.loads((resolve_results_dir() / kept.KEPT_NAME).read_text())
    monkeypatch.setenv("FASTSLOW_DATA", str(tmp_path))   # no cache folder
    monkeypatch.setattr(kept, "_KEPT", {})
    monkeypatch.setattr(kept, "_computed", lambda *a, **k: pytest.fail(
        "the committed claims table needs an interval results/kept_intervals.json lacks: "
        "rerun make course"))
    claims_table(load_summary(), resolve_results_dir())
    assert set(kept._KEPT) == set(committed)
