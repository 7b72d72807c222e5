"""Progress bars that show up in JupyterLab and a terminal, and stay out of batch runs.

Taught in notebooks/00_data.ipynb

:func:`progress` wraps ``tqdm.auto.tqdm`` (a widget in Jupyter, text in a terminal). Whether
the bar is shown, when ``disable`` is not given:

1. ``FASTSLOW_PROGRESS=0`` hides it and ``FASTSLOW_PROGRESS=1`` forces it. The Makefile sets
   ``FASTSLOW_PROGRESS=0`` for ``make test`` / ``make course`` / ``make notebooks``, so executed
   notebooks (nbval, nbclient) carry no bar outputs.
2. Otherwise it is shown inside a Jupyter kernel (``ipykernel`` imported) or when stderr is a
   terminal, and hidden elsewhere (logs, CI, pipes).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress", "progress_enabled"]

ENV_VAR = "FASTSLOW_PROGRESS"
T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether bars are shown by default here (see the module docstring for the rules)."""
    flag = os.environ.get(ENV_VAR, "").strip().lower()
    if flag in {"0", "false", "no", "off"}:
        return False
    if flag in {"1", "true", "yes", "on"}:
        return True
    if "ipykernel" in sys.modules:
        return True
    stderr = sys.stderr
    return bool(stderr is not None and hasattr(stderr, "isatty") and stderr.isatty())


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | float | None = None,
    desc: str | None = None,
    leave: bool = False,
    disable: bool | None = None,
    **kwargs: Any,
) -> tqdm:
    """``tqdm.auto.tqdm(iterable, ...)``; iterating it yields every item whether shown or not.

    ``disable=None`` applies :func:`progress_enabled`; ``True``/``False`` override it. Extra
    keyword arguments go to tqdm unchanged. Without an iterable, use it as a manual bar
    (``with progress(total=n) as bar: bar.update(k)``).
    """
    if disable is None:
        disable = not progress_enabled()
    return tqdm(iterable, total=total, desc=desc, leave=leave, disable=disable, **kwargs)
