"""Run an experiment, stamp its provenance, write ``results/NAME.json``: what every script in
``scripts/`` and ``benchmarks/`` does last.

A script is a thin entry point: it parses its arguments, calls the library, and hands the record
it built to :func:`write_result`, which stamps where and how the figures were made (the
*provenance*) and writes the file atomically::

    record = {"world": world.config.key(), "results": results}
    write_result("test5k", record, preset=preset, device=device)   # -> results/test5k.json

The stamp (:func:`provenance`), in this order:

``preset``
    the preset's name, where ``preset=`` is given;
``machine``
    :func:`~fastslow_lib.core.device.machine_name` (CPU, cores, torch threads, GPUs);
``device``
    :func:`~fastslow_lib.core.device.describe_device` of ``device=``, where it is given;
``date``
    today, ISO (``2026-12-07``);
``commit``
    :func:`~fastslow_course.release.git_commit`: the library's commit, ``+changes`` when
    ``fastslow_lib/`` differs from it.

**Where the stamp goes.** The record's keys keep the record's order. A stamp key the record
already holds keeps its place and takes the stamp's value; the stamp's other keys go right after
the nearest key before them (in the order above) that is placed, and first when the record holds
none. So ``write_result("x", {"world": w}, preset=p, device=d)`` writes preset, machine, device,
date, commit, world; a script whose files have always put ``preset`` after ``date``
(``distill_signals.json``) keeps ``"preset": preset.name`` in its record (machine, device, date,
commit, preset, ...); and a file read back and rewritten (``tune_fast.json``: trials, machine,
threads, ...) keeps its layout, with fresh provenance (trials, machine, date, commit, threads).
The readers (``readme``, ``claims_5k``, ``results``, the notebooks) look the keys up by name; the
order is kept so that a rerun's diff shows the figures, not a reshuffle.

The stamp is taken when the file is written (so ``machine`` names the torch threads the run
used). ``make results`` reruns the scripts whose file is older than the script, the library's
sources or, for a script that loads the release models, their ``data/release/MANIFEST.json``
(the Makefile's rules; ``make -n results`` lists them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fastslow_course.release import git_commit
from fastslow_course.results import compact_json
from fastslow_lib.config.presets import Preset
from fastslow_lib.core.checkpoint import write_atomic
from fastslow_lib.core.device import describe_device, machine_name
from fastslow_lib.core.paths import repo_root

__all__ = ["PROVENANCE_KEYS", "provenance", "result_path", "stamped", "write_result"]

#: The keys :func:`provenance` may stamp, in its order (``**extra`` go between device and date).
PROVENANCE_KEYS = ("preset", "machine", "device", "date", "commit")
#: A results name: ``results/NAME.json``.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def provenance(preset: Preset | str | None = None,
               device: torch.device | str | None = None, **extra: Any) -> dict[str, Any]:
    """Where and how a result was made, measured now: ``preset`` (where given), ``machine``,
    ``device`` (where given), the ``extra`` keys in the caller's order, ``date``, ``commit``.

    ``preset``: a :class:`~fastslow_lib.config.presets.Preset` or its name. ``device``: the device
    the experiment ran on (described by
    :func:`~fastslow_lib.core.device.describe_device`, e.g. ``"cpu (2 threads)"``).
    """
    stamp: dict[str, Any] = {}
    if preset is not None:
        stamp["preset"] = preset if isinstance(preset, str) else preset.name
    stamp["machine"] = machine_name()
    if device is not None:
        stamp["device"] = describe_device(device)
    clash = sorted(set(extra) & set(PROVENANCE_KEYS))
    if clash:
        raise ValueError(f"provenance() stamps {clash} itself; pass preset= and device= "
                         f"rather than extra keys of those names")
    stamp.update(extra)
    stamp["date"] = dt.date.today().isoformat()
    stamp["commit"] = git_commit()
    return stamp


def stamped(record: Mapping[str, Any], *, preset: Preset | str | None = None,
            device: torch.device | str | None = None) -> dict[str, Any]:
    """``record`` with :func:`provenance` stamped on it (a new dict; ``record`` is unchanged).

    The record's keys keep their order, a stamp key among them taking the stamp's value; each
    stamp key the record lacks goes right after the nearest stamp key before it that is placed
    (first when there is none: before the record's first stamp key, else at the front).
    """
    if not isinstance(record, Mapping):
        raise TypeError(f"a results record is a mapping of str keys, got {type(record).__name__}")
    bad = [k for k in record if not isinstance(k, str)]
    if bad:
        raise TypeError(f"a results record's keys are str (JSON object keys), got {bad[:3]!r}")
    stamp = provenance(preset, device)
    keys = list(record)
    held = [k for k in stamp if k in record]
    last: str | None = None
    for key in stamp:
        if key not in record:
            if last is not None:
                where = keys.index(last) + 1
            else:
                where = keys.index(held[0]) if held else 0
            keys.insert(where, key)
        last = key
    return {k: stamp[k] if k in stamp else record[k] for k in keys}


def result_path(name_or_path: str | os.PathLike[str],
                results_dir: str | os.PathLike[str] | None = None) -> Path:
    """The file for ``name_or_path``: a name ``NAME`` -> ``results_dir/NAME.json`` (default
    the repository's ``results/``); a ``Path`` (a script's ``--out``) -> itself.

    A name is letters, digits, ``_`` and ``-``, starting with a letter or digit; anything else
    (a ``/``, a ``.json`` suffix, spaces, an empty string) is refused with a ``ValueError``
    saying what is wrong.
    """
    if isinstance(name_or_path, os.PathLike):
        path = Path(name_or_path)
        if path.is_dir():
            raise ValueError(f"results path {str(path)!r} is a folder; give the file "
                             f"(e.g. {str(path / 'NAME.json')!r})")
        return path
    if not isinstance(name_or_path, str):
        raise TypeError(f"a results name is a str (results/NAME.json) or a Path, got "
                        f"{type(name_or_path).__name__}")
    name = name_or_path
    if not _NAME.fullmatch(name):
        if not name:
            problem = "it is empty"
        elif "/" in name or "\\" in name or name.startswith("."):
            problem = "it is a path, not a name (pass a pathlib.Path to write elsewhere)"
        elif name.endswith(".json"):
            problem = f"give it without '.json' ({name[:-5]!r} -> results/{name[:-5]}.json)"
        else:
            odd = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "_-"))})
            problem = (f"it holds {''.join(odd)!r}" if odd
                       else "it must start with a letter or a digit")
        raise ValueError(f"bad results name {name!r}: {problem}; a name is letters, digits, "
                         f"'_' and '-' (the file is results/NAME.json)")
    folder = Path(results_dir) if results_dir is not None else repo_root() / "results"
    return folder / f"{name}.json"


def write_result(name_or_path: str | os.PathLike[str], record: Mapping[str, Any], *,
                 preset: Preset | str | None = None, device: torch.device | str | None = None,
                 indent: int | None = None,
                 results_dir: str | os.PathLike[str] | None = None) -> Path:
    """Stamp ``record`` (:func:`stamped`) and write it to ``results/NAME.json`` atomically.

    ``name_or_path``: a name (``"test5k"``) or a ``Path`` (:func:`result_path`). ``indent``:
    None writes :func:`~fastslow_course.results.compact_json` (indent 1, lists of numbers on one
    line: the form of the per-query results files); an int writes plain ``json.dumps`` with that
    indent (the form the benchmarks' and older files keep). The text is made before anything is
    written, then goes through a temporary file beside the target and a rename, so a failed
    write leaves the old file as it was and no temporary file behind. Returns the path.
    """
    path = result_path(name_or_path, results_dir)
    data = stamped(record, preset=preset, device=device)
    text = compact_json(data) if indent is None else json.dumps(data, indent=indent)
    return write_atomic(path, text + "\n")
