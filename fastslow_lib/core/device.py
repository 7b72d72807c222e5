"""Choosing the torch device, and naming the machine that produced a timing.

Taught in notebooks/00_data.ipynb

Order of precedence in :func:`pick_device`: the ``prefer`` argument, then the environment
variable ``FASTSLOW_DEVICE`` (e.g. ``cpu``, ``cuda``, ``cuda:1``, ``mps``), then the first
available of cuda, mps, cpu. ``"auto"`` (or an empty value) means "use that default order".
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["available_devices", "describe_device", "machine_name", "pick_device"]

ENV_VAR = "FASTSLOW_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Names of the devices torch can use here, best first, e.g. ``["cuda:0", "cpu"]``."""
    names: list[str] = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def _unusable(name: str, why: str) -> ValueError:
    return ValueError(f"device {name!r} {why}; available here: {', '.join(available_devices())}")


def _check(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise _unusable(name, "is not a device name torch understands") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise _unusable(name, "is unavailable (torch sees no CUDA device)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise _unusable(name, f"is unavailable ({torch.cuda.device_count()} CUDA device(s))")
        return device
    if device.type == "mps":
        if not _mps_available():
            raise _unusable(name, "is unavailable (no Apple MPS backend)")
        return device
    raise _unusable(name, "is not supported by fastslow (use cuda, mps or cpu)")


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the device to run on: ``prefer``, else ``$FASTSLOW_DEVICE``, else cuda > mps > cpu.

    An unknown or unavailable requested device raises ``ValueError`` naming it and listing
    what is available.
    """
    requested = prefer if prefer is not None else os.environ.get(ENV_VAR, "")
    requested = requested.strip()
    if requested and requested.lower() != "auto":
        return _check(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | str) -> str:
    """A short label, e.g. ``"cpu (2 threads)"`` or ``"cuda:0 (NVIDIA H100 80GB HBM3)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return f"mps (Apple GPU, {_cpu_model()})"
    threads = torch.get_num_threads()
    return f"{device.type} ({threads} thread{'s' if threads != 1 else ''})"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in {"model name", "Model", "Hardware"} and value.strip():
                return value.strip()
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_name() -> str:
    """One line describing this machine, to print beside timings.

    e.g. ``"AMD EPYC 7R13 Processor, 16 cores, torch 16 threads, GPU NVIDIA H100 80GB HBM3"``.
    """
    parts = [
        _cpu_model(),
        f"{os.cpu_count() or '?'} cores",
        f"torch {torch.get_num_threads()} threads",
    ]
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if len(gpus) == 1:
            parts.append(f"GPU {gpus[0]}")
        elif len(set(gpus)) == 1:
            parts.append(f"GPU {len(gpus)}x {gpus[0]}")
        else:
            parts.append("GPUs " + " + ".join(gpus))
    elif _mps_available():
        parts.append("GPU Apple MPS")
    else:
        parts.append("no GPU")
    return ", ".join(parts)
