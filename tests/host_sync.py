"""A CPU stand-in for ``torch.cuda.set_sync_debug_mode("error")``, for the hot-path tests.

Imported by the model tests as ``from host_sync import no_host_reads`` (pytest puts ``tests/``
on ``sys.path``).

On a GPU, any read of a tensor's value by Python (``.item()``, ``bool(t)``, ``int(t)``,
``float(t)``, ``.tolist()``, ...) makes the host wait for the device. Such reads are invisible on
a CPU, so :func:`no_host_reads` makes those ``Tensor`` methods raise while it is active.
Reads made inside torch's C++ code (boolean-mask indexing, ``nonzero``) are not seen; the CUDA
sync debug mode catches those on a GPU.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: The Tensor methods through which Python reads a value back to the host.
READS = ("item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__")


@contextmanager
def no_host_reads(allow: tuple[str, ...] = ()) -> Iterator[list[str]]:
    """Raise AssertionError on any host read of a tensor value inside the ``with`` block.

    A read made directly by a function named in ``allow`` (``"module.function"``, or a module to
    allow all its functions) is let through and recorded as ``"module.function: Tensor.method"``
    in the yielded list. Reads
    that raised are recorded too and re-raised on exit, in case the caller swallowed the error.
    """
    originals = {name: getattr(torch.Tensor, name) for name in READS}
    own = {name for name in READS if name in vars(torch.Tensor)}  # the rest is inherited
    allowed: list[str] = []
    refused: list[str] = []

    def guard(name: str):
        original = originals[name]

        def read(self, *args, **kwargs):
            frame = sys._getframe(1)
            module = frame.f_globals.get("__name__", "?")
            function = f"{module}.{frame.f_code.co_name}"
            where = f"{function}: Tensor.{name}"
            if any(function == a or function.startswith(a + ".") for a in allow):
                allowed.append(where)
                return original(self, *args, **kwargs)
            refused.append(f"{where} (line {frame.f_lineno})")
            raise AssertionError(f"host read of a tensor value in the hot path: {refused[-1]}")

        return read

    try:
        for name in READS:
            setattr(torch.Tensor, name, guard(name))
        yield allowed
    finally:
        for name, original in originals.items():
            if name in own:
                setattr(torch.Tensor, name, original)
            elif name in vars(torch.Tensor):
                delattr(torch.Tensor, name)
    assert not refused, f"host reads of tensor values: {refused}"
