"""Where the course's results live: ``results/`` in the repository, or ``$FASTSLOW_RESULTS``.

Its own module so that everything reading or writing results (``results``, the claims table's
``kept_intervals``) resolves the folder one way without importing one another.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastslow_lib.core.paths import repo_root

__all__ = ["ENV_VAR", "resolve_results_dir"]

ENV_VAR = "FASTSLOW_RESULTS"


def resolve_results_dir(results_dir: str | Path | None = None) -> Path:
    """Resolve the results directory (argument, else ``$FASTSLOW_RESULTS``, else repo/results)."""
    if results_dir is not None:
        return Path(results_dir)
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env)
    return repo_root() / "results"
