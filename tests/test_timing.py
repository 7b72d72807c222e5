"""Tests for fastslow_lib.core.timing: timers, repeated measurement, stage breakdown, formatting."""

from __future__ import annotations

import time

import pytest
import torch

from fastslow_lib.core.timing import (
    StageTimer,
    Timer,
    TimingResult,
    format_seconds,
    measure,
    synchronize,
)


def test_timer_measures_sleep_lower_bound():
    with Timer("cpu") as t:
        time.sleep(0.02)
    assert t.seconds >= 0.015


def test_timer_accepts_torch_device():
    with Timer(torch.device("cpu")) as t:
        pass
    assert t.seconds >= 0.0


def test_timer_seconds_before_exit_raises():
    timer = Timer("cpu")
    with pytest.raises(RuntimeError, match="after the `with` block"):
        _ = timer.seconds
    with timer:
        with pytest.raises(RuntimeError, match="after the `with` block"):
            _ = timer.seconds
    assert timer.seconds >= 0.0


def test_synchronize_cpu_is_noop_and_rejects_bad_type():
    synchronize("cpu")
    synchronize(torch.device("cpu"))
    with pytest.raises(TypeError, match="device must be a str or torch.device"):
        synchronize(3)  # type: ignore[arg-type]


def test_measure_call_counts_and_repeats():
    calls = []
    result = measure(lambda: calls.append(1), warmup=3, repeats=4)
    assert len(calls) == 7
    assert len(result.times) == 4
    assert result.device == "cpu"
    assert result.min <= result.median <= max(result.times)


def test_measure_zero_warmup():
    calls = []
    result = measure(lambda: calls.append(1), warmup=0, repeats=1)
    assert len(calls) == 1
    assert len(result.times) == 1


def test_measure_times_each_call():
    result = measure(lambda: time.sleep(0.01), warmup=0, repeats=2)
    assert all(t >= 0.007 for t in result.times)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"warmup": -1}, ValueError, "warmup must be at least 0"),
        ({"warmup": 1.5}, TypeError, "warmup must be an int"),
        ({"warmup": True}, TypeError, "warmup must be an int"),
        ({"repeats": 0}, ValueError, "repeats must be at least 1"),
        ({"repeats": True}, TypeError, "repeats must be an int"),
        ({"repeats": "5"}, TypeError, "repeats must be an int"),
    ],
)
def test_measure_rejects_bad_counts(kwargs, error, message):
    calls = []
    with pytest.raises(error, match=message):
        measure(lambda: calls.append(1), **kwargs)
    assert calls == []


def test_measure_rejects_non_callable():
    with pytest.raises(TypeError, match="fn must be callable"):
        measure(42)  # type: ignore[arg-type]


def test_timing_result_statistics():
    r = TimingResult.from_times([0.3, 0.1, 0.2, 1.0], device=torch.device("cpu"))
    assert r.times == (0.3, 0.1, 0.2, 1.0)
    assert r.median == pytest.approx(0.25)
    assert r.mean == pytest.approx(0.4)
    assert r.min == pytest.approx(0.1)
    assert r.device == "cpu"
    odd = TimingResult.from_times([5.0, 1.0, 3.0])
    assert odd.median == 3.0
    assert odd.per_item(4) == pytest.approx(0.75)


def test_timing_result_is_frozen():
    r = TimingResult.from_times([0.1])
    with pytest.raises(AttributeError):
        r.median = 2.0  # type: ignore[misc]


def test_timing_result_format():
    r = TimingResult.from_times([0.0123, 0.0119, 0.0130, 0.0125, 0.0121])
    assert str(r) == "12.3 ms (median of 5, min 11.9 ms) on cpu"
    assert r.format() == str(r)


def test_timing_result_bad_inputs():
    with pytest.raises(ValueError, match="at least one"):
        TimingResult.from_times([])
    with pytest.raises(ValueError, match="finite and >= 0"):
        TimingResult.from_times([0.1, -1.0])
    with pytest.raises(ValueError, match="n must be at least 1"):
        TimingResult.from_times([0.1]).per_item(0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0123, "12.3 ms"),
        (2.5, "2.50 s"),
        (4.2e-5, "42.0 µs"),
        (0.5, "500 ms"),
        (123.4, "123 s"),
        (0.0009999, "1.00 ms"),
        (0.0, "0.00 µs"),
    ],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.mark.parametrize("bad", [-0.001, float("nan"), float("inf")])
def test_format_seconds_rejects(bad):
    with pytest.raises(ValueError, match="finite and >= 0"):
        format_seconds(bad)


def test_stage_timer_accumulates_and_keeps_order():
    st = StageTimer("cpu")
    with st.stage("text encoding"):
        time.sleep(0.01)
    with st.stage("index search"):
        pass
    with st.stage("text encoding"):
        time.sleep(0.01)
    with st.stage("slow re-scoring"):
        pass
    totals = st.totals()
    assert list(totals) == ["text encoding", "index search", "slow re-scoring"]
    assert st.counts() == {"text encoding": 2, "index search": 1, "slow re-scoring": 1}
    assert totals["text encoding"] >= 0.015


def test_stage_timer_table():
    st = StageTimer(torch.device("cpu"))
    for name in ("text encoding", "index search", "slow re-scoring"):
        with st.stage(name):
            pass
    table = st.table(per=8)
    for name in ("text encoding", "index search", "slow re-scoring", "ms/item", "share %"):
        assert name in table
    plain = st.table()
    assert "ms/item" not in plain
    assert "total ms" in plain and "text encoding" in plain
    lines = plain.splitlines()
    assert len({len(line) for line in lines}) == 1  # aligned: all rows equally wide


def test_stage_timer_table_bad_per():
    with pytest.raises(ValueError, match="per must be at least 1"):
        StageTimer().table(per=0)


def test_stage_timer_nested_raises():
    st = StageTimer()
    with pytest.raises(RuntimeError, match="no nesting"):
        with st.stage("outer"):
            with st.stage("inner"):
                pass
    # The timer is usable again afterwards and the failed stages were not counted.
    with st.stage("outer"):
        pass
    assert st.counts() == {"outer": 1}


def test_stage_timer_bad_names():
    st = StageTimer()
    with pytest.raises(ValueError, match="non-empty"):
        with st.stage(""):
            pass
    with pytest.raises(TypeError, match="stage name must be a str"):
        with st.stage(None):  # type: ignore[arg-type]
            pass


def test_stage_timer_reset():
    st = StageTimer()
    with st.stage("a"):
        pass
    st.reset()
    assert st.totals() == {}
    assert st.counts() == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_timer_cuda():
    x = torch.randn(512, 512, device="cuda")
    with Timer("cuda") as t:
        for _ in range(10):
            x = x @ x
            x = x / x.norm()
    assert t.seconds > 0.0
    result = measure(lambda: x @ x, device="cuda", warmup=1, repeats=3)
    assert len(result.times) == 3
    assert result.device == "cuda"
    st = StageTimer("cuda")
    with st.stage("matmul"):
        x @ x
    assert st.totals()["matmul"] > 0.0
