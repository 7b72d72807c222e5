"""Device-aware timers for the course's timing cells.

Taught in notebooks/04_rerank.ipynb.

GPU work is asynchronous: a CUDA kernel launch returns before the kernel has run, so a plain
``time.perf_counter()`` around GPU code measures the launch, not the work. :class:`Timer`
therefore times CUDA with a pair of ``torch.cuda.Event`` recorded on the current stream (and
waits for the end event at exit), and times CPU/MPS with ``time.perf_counter()`` (synchronising
MPS first). :func:`measure` repeats a call and reports median/mean/min; :class:`StageTimer`
breaks a pipeline (text encoding, index search, slow re-scoring) into per-stage totals.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from fastslow_lib.config.checks import check_int

__all__ = ["StageTimer", "Timer", "TimingResult", "format_seconds", "measure", "synchronize"]


def _as_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        return torch.device(device)
    raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")


def synchronize(device: str | torch.device) -> None:
    """Wait for all queued work on ``device`` (cuda or mps) to finish; a no-op on cpu."""
    dev = _as_device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def format_seconds(s: float) -> str:
    """A duration with about 3 significant digits: ``"42.0 µs"``, ``"12.3 ms"``, ``"2.50 s"``."""
    s = float(s)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"seconds must be finite and >= 0, got {s!r}")
    units = [(1e-6, "µs"), (1e-3, "ms"), (1.0, "s")]
    i = 0 if s < 1e-3 else 1 if s < 1.0 else 2
    value = s / units[i][0]
    if value >= 999.5 and i < 2:  # would print as "1000 µs"/"1000 ms": use the next unit
        i += 1
        value = s / units[i][0]
    decimals = 2 if value < 9.995 else 1 if value < 99.95 else 0
    return f"{value:.{decimals}f} {units[i][1]}"


class Timer:
    """Context manager timing one interval on a device; read :attr:`seconds` after the block.

    >>> with Timer("cpu") as t:
    ...     pass
    >>> t.seconds >= 0
    True
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = _as_device(device)
        self._seconds: float | None = None
        self._start: Any = None

    def __enter__(self) -> Timer:
        self._seconds = None
        if self.device.type == "cuda":
            stream = torch.cuda.current_stream(self.device)
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            self._start.record(stream)
        else:
            synchronize(self.device)
            self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self._end.record(torch.cuda.current_stream(self.device))
            self._end.synchronize()
            self._seconds = self._start.elapsed_time(self._end) / 1000.0  # ms -> s
        else:
            synchronize(self.device)
            self._seconds = time.perf_counter() - self._start

    @property
    def seconds(self) -> float:
        """Duration of the finished block, in seconds."""
        if self._seconds is None:
            raise RuntimeError("Timer.seconds is only available after the `with` block has ended")
        return self._seconds


@dataclass(frozen=True)
class TimingResult:
    """Repeated timings of one call, in seconds. Build with :meth:`from_times`."""

    times: tuple[float, ...]
    median: float
    mean: float
    min: float
    device: str

    @classmethod
    def from_times(cls, times: Iterable[float], device: str | torch.device = "cpu") -> TimingResult:
        """Compute median, mean and min of ``times`` (at least one, each finite and >= 0)."""
        ts = tuple(float(t) for t in times)
        if not ts:
            raise ValueError("times must hold at least one measurement")
        if any(not math.isfinite(t) or t < 0 for t in ts):
            raise ValueError(f"times must be finite and >= 0, got {ts}")
        return cls(ts, statistics.median(ts), statistics.fmean(ts), min(ts), str(device))

    def per_item(self, n: int) -> float:
        """Median seconds per item when one call handles ``n`` items."""
        return self.median / check_int(n, "n", type_error=ValueError)

    def format(self) -> str:
        """E.g. ``"12.3 ms (median of 5, min 11.9 ms) on cpu"``."""
        return (
            f"{format_seconds(self.median)} (median of {len(self.times)}, "
            f"min {format_seconds(self.min)}) on {self.device}"
        )

    def __str__(self) -> str:
        return self.format()


def measure(
    fn: Callable[[], object],
    *,
    device: str | torch.device = "cpu",
    warmup: int = 1,
    repeats: int = 5,
) -> TimingResult:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times, each under a Timer."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    check_int(warmup, "warmup", 0)
    check_int(repeats, "repeats")
    dev = _as_device(device)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        with Timer(dev) as t:
            fn()
        times.append(t.seconds)
    return TimingResult.from_times(times, dev)


class StageTimer:
    """Per-stage time breakdown; repeated stages accumulate, nesting is an error.

    A stage whose block raises is not counted.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = _as_device(device)
        self._totals: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._active: str | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block and add it to stage ``name``."""
        if not isinstance(name, str):
            raise TypeError(f"stage name must be a str, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("stage name must be a non-empty str")
        if self._active is not None:
            raise RuntimeError(f"stage {name!r} opened inside stage {self._active!r}; no nesting")
        self._active = name
        try:
            with Timer(self.device) as t:
                yield
        finally:
            self._active = None
        self._totals[name] = self._totals.get(name, 0.0) + t.seconds
        self._counts[name] = self._counts.get(name, 0) + 1

    def totals(self) -> dict[str, float]:
        """Seconds summed per stage, in the order stages were first seen."""
        return dict(self._totals)

    def counts(self) -> dict[str, int]:
        """How many times each stage ran."""
        return dict(self._counts)

    def reset(self) -> None:
        """Forget all stages."""
        self._totals.clear()
        self._counts.clear()

    def table(self, per: int | None = None) -> str:
        """Aligned text table: stage, total ms, ms per item (when ``per`` is given), share %."""
        if per is not None:
            check_int(per, "per")
        header = ["stage", "total ms"] + (["ms/item"] if per else []) + ["share %"]
        grand = sum(self._totals.values())
        rows = []
        for name, secs in [*self._totals.items(), ("total", grand)]:
            row = [name, f"{secs * 1e3:.2f}"]
            if per:
                row.append(f"{secs * 1e3 / per:.3f}")
            row.append(f"{100.0 * secs / grand if grand > 0 else 0.0:.1f}")
            rows.append(row)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        sep = "  ".join("-" * w for w in widths)
        return "\n".join([line(header), sep, *map(line, rows[:-1]), sep, line(rows[-1])])
