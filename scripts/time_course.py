#!/usr/bin/env python3
"""Execute the course notebooks in order, time each one, write results/course_times.json.

Used by `make course` (executed copies go to results/executed/) and `make notebooks`
(`--inplace`: outputs are written back into notebooks/*.ipynb). Each notebook runs in a
fresh kernel of the Python running this script (the venv's, so `fastslow_lib` is the editable
install) with the kernel's working directory set to the notebook's own directory, as in
JupyterLab and `jupyter nbconvert --execute`. Stops at the first failing notebook (later ones
usually depend on its outputs), saves what it executed for inspection, and exits 1.

    python scripts/time_course.py [--inplace] [--timeout 1800] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import ipykernel.kernelspec
import nbformat
import psutil
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

REPO = Path(__file__).resolve().parent.parent
CURRENT_ENV = ":current-env"
BATCH_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONHASHSEED": "0",
    "FASTSLOW_PROGRESS": "0",
}
SLOWEST_CELLS = 8  # kept per notebook in the times file: where a notebook's time goes
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _CurrentEnvSpecs(KernelSpecManager):
    """Kernel specs plus one for this very interpreter (whatever kernels are installed)."""

    def get_kernel_spec(self, kernel_name: str):  # type: ignore[override]
        if kernel_name == CURRENT_ENV:
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES,
                **ipykernel.kernelspec.get_kernel_dict(),
            )
        return super().get_kernel_spec(kernel_name)


def _machine() -> str:
    """The machine, as the results files' provenance names it (a rough line without the tools)."""
    try:
        from fastslow_course.experiment import provenance
    except ImportError:
        import platform

        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return provenance()["machine"]


class PeakMemory:
    """The peak memory (bytes) of this process and every process under it (the kernels),
    sampled every ``every`` seconds while the ``with`` block runs: the sum of their
    proportional set sizes (PSS: a page shared by two processes counts half in each) where the
    platform reports it (Linux), else of their resident sizes (which counts shared pages twice)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in (me, *me.children(recursive=True)):
            try:
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except psutil.Error:  # a process that ended while we looked
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def run_notebook(path: Path, timeout: int, kernel: str) -> tuple[NotebookNode, float, str | None]:
    """Execute ``path`` with cwd = its directory; return (executed notebook, seconds, error)."""
    nb = nbformat.read(path, as_version=4)
    # IPC sockets where the platform has them: a local kernel needs no TCP port (and its log
    # no warning about unencrypted TCP)
    km = KernelManager(kernel_name=kernel, kernel_spec_manager=_CurrentEnvSpecs())
    sockets = None
    if os.name == "posix":  # the sockets' files by absolute path: the kernel runs elsewhere
        sockets = tempfile.mkdtemp(prefix="fastslow-kernel-")
        km.transport, km.ip = "ipc", str(Path(sockets) / "kernel")
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        record_timing=True,  # per-cell times for the report (stripped again: clean diffs)
        resources={"metadata": {"path": str(path.parent)}},
    )
    error = None
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        lines = ANSI.sub("", str(exc)).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"
    finally:
        # nbclient leaves a kernel manager it was handed running: without this, every
        # notebook's kernel (and its memory) would live until the last notebook ends
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        if sockets is not None:
            shutil.rmtree(sockets, ignore_errors=True)
    return nb, time.perf_counter() - start, error


def pop_cell_times(nb: NotebookNode) -> list[tuple[int, float, str]]:
    """Remove nbclient's per-cell timestamps from ``nb``; return ``(cell index, seconds, first
    line)`` for each executed code cell, slowest first."""
    out = []
    for i, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).pop("execution", None)
        if not stamps or "shell.execute_reply" not in stamps:
            continue
        begin = stamps.get("iopub.execute_input") or stamps.get("shell.execute_reply.started")
        if begin is None:
            continue
        seconds = (_stamp(stamps["shell.execute_reply"]) - _stamp(begin))
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        out.append((i, round(seconds, 2), first[:60]))
    return sorted(out, key=lambda row: -row[1])


def _stamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to run (default: notebooks/[0-9][0-9]_*.ipynb, sorted)",
    )
    parser.add_argument(
        "--inplace", action="store_true", help="write outputs back into the notebooks themselves"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=REPO / "results" / "executed",
        help="where executed copies go (and failed runs with --inplace)",
    )
    parser.add_argument(
        "--times",
        type=Path,
        default=REPO / "results" / "course_times.json",
        help="timings json to write",
    )
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout, seconds")
    parser.add_argument(
        "--kernel", default=CURRENT_ENV, help="kernelspec name (default: this Python's own kernel)"
    )
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        print("no notebooks matching notebooks/[0-9][0-9]_*.ipynb", file=sys.stderr)
        return 1
    # Kernels inherit our environment. Same batch settings as the Makefile's (kept if already
    # set), so running this script by hand gives the same outputs as `make course`...
    for name, value in BATCH_ENV.items():
        os.environ.setdefault(name, value)
    # ...but no MPLBACKEND: ipykernel then uses its inline backend (with MPLBACKEND=Agg, which
    # `make` exports for batch runs, the figures would be missing from executed notebooks).
    os.environ.pop("MPLBACKEND", None)

    print(f"machine: {_machine()}")
    times: dict[str, float] = {}
    slowest: dict[str, list] = {}  # per notebook: its slowest cells (index, seconds, first line)
    memory: dict[str, float] = {}  # peak memory per notebook, GiB (kernel + runner)
    failed: tuple[str, str] | None = None
    for path in paths:
        path = path.resolve()
        print(f"running {path.name} ...", flush=True)
        with PeakMemory() as peak:
            nb, seconds, error = run_notebook(path, args.timeout, args.kernel)
        times[path.name] = round(seconds, 2)
        slowest[path.name] = [list(row) for row in pop_cell_times(nb)[:SLOWEST_CELLS]]
        memory[path.name] = round(peak.peak / 2**30, 2)
        # A failed run never overwrites the notebook itself: it goes to --output-dir.
        out = path if (args.inplace and error is None) else args.output_dir / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        if error is not None:
            failed = (path.name, f"{error} (executed copy: {out})")
            break

    total = round(sum(times.values()), 2)
    width = max(len(name) for name in [*times, "total"])
    peak = max(memory.values())
    print(f"\n{'notebook'.ljust(width)}  seconds  peak memory (GiB)")
    for name, seconds in times.items():
        print(f"{name.ljust(width)}  {seconds:8.1f}  {memory[name]:6.2f}")
    print(f"{'total'.ljust(width)}  {total:8.1f}  {peak:6.2f}")

    if failed is not None:
        print(f"\nFAILED: {failed[0]}: {failed[1]}", file=sys.stderr)
        return 1
    args.times.parent.mkdir(parents=True, exist_ok=True)
    args.times.write_text(json.dumps({**times, "total": total, "peak_memory_gib": peak,
                                      "notebook_peak_memory_gib": memory,
                                      "slowest_cells": slowest}, indent=2) + "\n")
    print(f"wrote {args.times}")
    if not args.notebooks:  # the whole course: its wall time and the claims table
        from fastslow_course.report import claims_table
        from fastslow_course.results import load_summary, record

        record("course", {"total_s": total, "notebook_s": times, "machine": _machine(),
                          "peak_memory_gib": peak, "notebook_peak_memory_gib": memory},
               notes="wall time of `make course`, per notebook (seconds), and the peak "
                     "memory (PSS) of the runner and its kernel (GiB)")
        print("\n" + claims_table(load_summary(), REPO / "results"))
        from fastslow_course.kept_intervals import write_kept

        # the table's intervals, committed beside it: a fresh clone renders it without resampling
        print(f"wrote {write_kept().relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
