"""Where the repository is: the root that results/, checkpoints/ and data/ hang from.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["repo_root"]


def repo_root(start: str | Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) with pyproject + fastslow_lib."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "fastslow_lib").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no fastslow repository root (a directory with pyproject.toml and fastslow_lib/) "
        f"at or above {here}; run from inside the repo or set $FASTSLOW_RESULTS"
    )
