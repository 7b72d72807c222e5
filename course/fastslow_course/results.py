"""One results file for the whole course: every notebook records its numbers in a section.

Taught in notebooks/00_data.ipynb

:func:`record` merges a dict of values into ``results/summary.json`` under a section name and
re-renders ``results/summary.md`` (one ``## section`` table per section, sorted). Both files
are written atomically and hold no timestamps, so re-running an unchanged notebook leaves them
byte-identical. Per-query outcomes (ranks, probe
outcomes) go to ``results/outcomes.json`` through :func:`record_outcomes`: the claims table
computes its 95% intervals from them (:mod:`fastslow_lib.core.intervals`). Optional notes are
kept in the reserved top-level key ``"_notes"``
(section -> text); section names therefore may not start with ``_``.

The results directory is: the ``results_dir`` argument, else ``$FASTSLOW_RESULTS``, else
``<repo root>/results``, where the repo root is the nearest directory at or above the current
working directory holding both ``pyproject.toml`` and ``fastslow_lib/``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fastslow_course.locations import resolve_results_dir
from fastslow_lib.core.checkpoint import write_atomic
from fastslow_lib.core.paths import repo_root

__all__ = ["compact_json", "load_outcomes", "load_summary", "record", "record_outcomes",
           "render_markdown", "repo_root", "resolve_results_dir", "section_fingerprint"]

JSON_NAME = "summary.json"
MD_NAME = "summary.md"
OUTCOMES_NAME = "outcomes.json"
NOTES_KEY = "_notes"


def _jsonable(value: Any, where: str) -> Any:
    """Convert ``value`` to plain JSON types; reject NaN/inf and anything unknown."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"{where} is {value!r}: NaN/inf cannot be recorded (JSON has no NaN); "
                f"check the computation or record None explicitly"
            )
        return float(value)
    if isinstance(value, np.generic):  # numpy scalars: np.float32, np.int64, np.bool_, ...
        return _jsonable(value.item(), where)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if type(value).__module__.startswith("torch") and hasattr(value, "tolist"):
        return _jsonable(value.detach().cpu().tolist(), where)  # tensors, 0-d or not
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be str, got {type(key).__name__} {key!r}")
            out[key] = _jsonable(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{where} has type {type(value).__name__}, which cannot be recorded as JSON")


def load_summary(results_dir: str | Path | None = None) -> dict[str, Any]:
    """The contents of ``summary.json`` (``{}`` if nothing has been recorded yet)."""
    path = resolve_results_dir(results_dir) / JSON_NAME
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _flatten(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows += _flatten(value, f"{name}.")
        else:
            rows.append((name, value))
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.2f}"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, separators=(", ", ": "))
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Mapping[str, Any], results_dir: str | Path | None = None) -> str:
    """The markdown text of ``summary.md`` for a loaded summary.

    It opens with the claims table (:func:`fastslow_course.report.claims_table`: the
    paper's claims beside the measured numbers and the goals) and the course's wall time when
    ``make course`` recorded it (section ``course``), then lists every section's values.
    """
    from fastslow_course.report import RULE, claims_table

    notes = summary.get(NOTES_KEY, {})
    lines = [
        "# Results summary",
        "",
        f"Generated from `{JSON_NAME}` by `fastslow_course.results.record`; "
        "do not edit by hand.",
        "",
        "## Claims",
        "",
        RULE,
        "",
        claims_table(summary, results_dir),
    ]
    course = summary.get("course")
    if isinstance(course, Mapping) and "total_s" in course:
        lines += ["", f"Whole course (`make course`): {course['total_s'] / 60:.1f} min on "
                  f"{course.get('machine', 'this machine')}."]
    for section in sorted(k for k in summary if not k.startswith("_")):
        lines += ["", f"## {section}", ""]
        if notes.get(section):
            lines += [str(notes[section]), ""]
        rows = _flatten(summary[section])
        if not rows:
            lines.append("(no values)")
            continue
        lines += ["| key | value |", "| --- | --- |"]
        lines += [f"| {_cell(key)} | {_cell(value)} |" for key, value in rows]
    return "\n".join(lines) + "\n"


def record(
    section: str,
    values: Mapping[str, Any],
    *,
    results_dir: str | Path | None = None,
    notes: str | None = None,
) -> Path:
    """Merge ``values`` into ``section`` of ``summary.json``, re-render ``summary.md``.

    Keys already in the section and not in ``values`` are kept; other sections are untouched.
    ``notes`` (if given) replaces the section's note, shown under its heading in the markdown.
    Returns the path of ``summary.json``.
    """
    if not isinstance(section, str) or not section.strip() or section.startswith("_"):
        raise ValueError(f"section must be a non-empty str not starting with '_', got {section!r}")
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be a dict, got {type(values).__name__}")
    clean = _jsonable(values, section)  # validate everything before touching the files

    directory = resolve_results_dir(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    summary = load_summary(directory)
    merged = dict(summary.get(section, {}))
    merged.update(clean)
    summary[section] = merged
    if notes is not None:
        summary.setdefault(NOTES_KEY, {})[section] = str(notes)

    json_path = directory / JSON_NAME
    text = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    write_atomic(json_path, text + "\n")
    write_atomic(directory / MD_NAME, render_markdown(summary, directory))
    return json_path


def section_fingerprint(section: str, results_dir: str | Path | None = None) -> str:
    """12 hex digits that name what ``section`` holds in ``summary.json`` and ``outcomes.json``.

    Each notebook prints it when it records its figures; the README's generated blocks are
    rendered from those files, so the fingerprint printed in a committed notebook equals the
    one of the committed results only when both come from the same run
    (``tests/test_one_run.py`` checks it). Raises ``KeyError`` naming the section when
    ``summary.json`` has none."""
    summary = load_summary(results_dir)
    if section not in summary or section.startswith("_"):
        raise KeyError(f"no section {section!r} in {resolve_results_dir(results_dir) / JSON_NAME}"
                       f" (sections: {sorted(k for k in summary if not k.startswith('_'))})")
    body = {"summary": summary[section], "outcomes": load_outcomes(results_dir).get(section)}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def load_outcomes(results_dir: str | Path | None = None) -> dict[str, Any]:
    """The contents of ``outcomes.json``: section -> name -> per-query list (``{}`` if none)."""
    path = resolve_results_dir(results_dir) / OUTCOMES_NAME
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def record_outcomes(
    section: str, outcomes: Mapping[str, Any], *, results_dir: str | Path | None = None,
) -> Path:
    """Merge per-query outcomes into ``section`` of ``outcomes.json`` and re-render summary.md.

    Each value is one number per query (or probe pair), in a fixed order that every model of
    the section shares, so two models' outcomes can be paired: 1-based ranks (ints) for
    retrieval, outcomes in ``[0, 1]`` for a probe. The claims table reads them for its
    intervals. Returns the path of ``outcomes.json``.
    """
    if not isinstance(section, str) or not section.strip() or section.startswith("_"):
        raise ValueError(f"section must be a non-empty str not starting with '_', got {section!r}")
    if not isinstance(outcomes, Mapping):
        raise TypeError(f"outcomes must be a dict of name -> per-query list, got "
                        f"{type(outcomes).__name__}")
    clean = _jsonable(outcomes, section)
    for name, values in clean.items():
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in values)):
            raise ValueError(f"{section}.{name} must be a non-empty list of numbers (one per "
                             "query or probe pair)")
    directory = resolve_results_dir(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    everything = load_outcomes(directory)
    everything[section] = {**everything.get(section, {}), **clean}
    path = directory / OUTCOMES_NAME
    write_atomic(path, json.dumps(everything, sort_keys=True, separators=(",", ":")) + "\n")
    write_atomic(directory / MD_NAME, render_markdown(load_summary(directory), directory))
    return path


def compact_json(obj: Any) -> str:
    """Indented JSON with every list of numbers (per-query outcomes) on one line: the form of
    the results files the scripts write (``slow_ablations.json``, ``distill_signals.json``)."""
    import re

    text = json.dumps(obj, indent=1, default=list)
    return re.sub(r"\[\s*([-0-9.eE,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
