"""Release models stored in float16: half the bytes, every figure measured as stored.

The committed weights under ``data/`` have a budget (60 MB in all). The caption-detail worlds
(notebook 03, "Where a teacher pays") each add a Fast, a Slow, a student and its control; in
float32 they do not fit beside the full-caption world's models. So, after ``make reproduce``
has trained them in float32 like every release model, ``scripts/reproduce.py --compact``
stores their weights in float16 (the files halve; loading casts them back to float32):

* each named model's floating-point tensors are rounded to float16 (a value float16 cannot
  hold, an overflow, is an error naming the tensor), the file's metadata keeps the trained
  file's sha256;
* a child in the same release folder names its parents by their weights' hash in its key
  (``training.json``), so those hashes are rewritten to the stored parents' and the trained
  ones kept beside them (``extra["parents_as_trained"]``): the chain of parents stays checked;
* the manifest entry keeps the training commit and adds ``stored_dtype``, ``trained_sha256``
  (the float32 file), ``compacted`` (commit and date), and the validation figures measured
  again on the stored weights (``validation``) beside the ones measured at training time
  (``validation_as_trained``): the rounding's effect, in the manifest.

Every result the course reports for a compacted model is measured on the stored weights.

Taught in notebooks/03_distill.ipynb (section "Where a teacher pays").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from fastslow_course.manifest import manifest, sha256_file, show_path, verify_release
from fastslow_lib.core.cache import file_fingerprint
from fastslow_lib.core.checkpoint import TRAINING_NAME, WEIGHTS_NAME, read_metadata, write_atomic
from fastslow_lib.registry import REGISTRY

__all__ = ["STORED_DTYPE", "compact_release", "half_weights"]

#: The dtype a compacted release model's weights are stored in.
STORED_DTYPE = "float16"


def half_weights(path: str | Path, *, trained_sha256: str) -> None:
    """Rewrite the safetensors file ``path`` with its float32 tensors in float16 (atomically).

    Other tensors (integers, buffers already in another dtype) are kept as they are. A value
    outside float16's range raises ValueError naming the tensors; nothing is written then.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
    tensors = load_file(str(path))
    half = {k: (v.to(torch.float16) if v.dtype == torch.float32 else v)
            for k, v in tensors.items()}
    overflow = sorted(k for k, v in half.items()
                      if v.dtype == torch.float16 and not bool(torch.isfinite(v).all())
                      and bool(torch.isfinite(tensors[k]).all()))
    if overflow:
        raise ValueError(f"{show_path(path)}: tensors {overflow} hold values float16 cannot "
                         "represent (beyond +-65504); this model cannot be stored in float16")
    metadata.update({"stored_dtype": STORED_DTYPE, "trained_sha256": trained_sha256})
    write_atomic(path, lambda tmp: save_file({k: v.contiguous() for k, v in half.items()},
                                             str(tmp), metadata=metadata))


def _replace_values(tree: Any, old: str, new: str) -> Any:
    if isinstance(tree, dict):
        return {k: _replace_values(v, old, new) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_replace_values(v, old, new) for v in tree]
    return new if tree == old else tree


def _repoint_children(root: Path, data: dict[str, Any], parent: str, old_sha: str) -> list[str]:
    """Point the children of ``parent`` in ``root`` at its stored weights; return their names."""
    old_fp, new_fp = old_sha[:16], file_fingerprint(root / parent)
    new_sha = sha256_file(root / parent / WEIGHTS_NAME)
    children = []
    for child, entry in data["models"].items():
        if parent not in REGISTRY[child].parents:
            continue
        meta_file = root / child / TRAINING_NAME
        meta = read_metadata(root / child)
        meta["config"] = _replace_values(meta["config"], old_fp, new_fp)
        trained = meta["extra"].setdefault("parents_as_trained", {})
        trained.setdefault(new_fp, old_fp)
        write_atomic(meta_file, json.dumps(meta, indent=1) + "\n")
        entry["key"] = meta["config"]
        entry.setdefault("parents_as_trained", dict(entry["parents"]))
        entry["parents"][parent] = new_sha
        entry["sha256"][TRAINING_NAME] = sha256_file(meta_file)
        children.append(child)
    return children


def compact_release(names: Iterable[str], rel: Any, *, log: Callable[[str], None] = print,
                    ) -> dict[str, Any]:
    """Store release models ``names`` of the release store ``rel`` (a
    :class:`~fastslow_course.release.Releases` in ``release`` mode) in float16; return the
    manifest. A model already stored so is kept (the call is idempotent).
    """
    from fastslow_course.release import git_commit, write_manifest

    root = Path(rel.root)
    data = manifest(root)
    names = list(names)
    unknown = sorted(set(names) - set(data["models"]))
    if unknown:
        raise ValueError(f"cannot compact {unknown}: not in {show_path(root / 'MANIFEST.json')} "
                         f"(it lists {sorted(data['models'])}); train them first")
    done = []
    for name in [n for n in REGISTRY if n in names]:
        entry = verify_release(name, root)
        if entry.get("stored_dtype") == STORED_DTYPE:
            log(f"{name:24s} already stored in {STORED_DTYPE}")
            continue
        weights = root / name / WEIGHTS_NAME
        old_sha, before = sha256_file(weights), weights.stat().st_size
        half_weights(weights, trained_sha256=old_sha)
        entry = data["models"][name]
        entry.update({"stored_dtype": STORED_DTYPE, "trained_sha256": old_sha,
                      "compacted": {"commit": git_commit(), "date": dt.date.today().isoformat()}})
        entry["sha256"][WEIGHTS_NAME] = sha256_file(weights)
        children = _repoint_children(root, data, name, old_sha)
        write_manifest(root, data)
        done.append(name)
        log(f"{name:24s} {before / 1e6:.1f} MB -> {weights.stat().st_size / 1e6:.1f} MB"
            + (f"; children repointed: {children}" if children else ""))
    for name in done:  # measured again on the stored weights, once every file is in place
        entry = data["models"][name]
        entry.setdefault("validation_as_trained", entry["validation"])
        entry["validation"] = stored_validation(rel, name)
        write_manifest(root, data)
        log(f"{name:24s} validation as trained {entry['validation_as_trained']}, "
            f"as stored {entry['validation']}")
    return data


def stored_validation(rel: Any, name: str) -> dict[str, float]:
    """The validation figures of release model ``name`` measured on its stored weights.

    Slow-type models are scored as :meth:`Releases.validation` does; a Fast-type model's
    validation R@1 is recomputed on the queries its training validated on (the training
    history holds the float32 model's)."""
    from fastslow_lib.config.training import FastTrainConfig
    from fastslow_lib.fast.training import validation_protocol, validation_recall

    if REGISTRY[name].kind != "fast" or REGISTRY[name].clips:
        return rel.validation(name)
    model, history, _ = rel.get(name)
    train = FastTrainConfig(**read_metadata(rel.folder(name))["config"]["train"])
    val = validation_protocol(rel.world.val, train)   # the queries its training validated on
    r1 = validation_recall(model, rel.tokenizer, val, max_len=train.max_len, device=rel.device)
    return {"final_loss": round(float(history["final_loss"]), 4), "val_R@1": round(float(r1), 2)}
