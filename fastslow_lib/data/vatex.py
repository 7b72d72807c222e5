"""VATEX captions with video frames or precomputed features, read into a :class:`CaptionedSplit`.

The VATEX caption files (``vatex_training_v1.0.json``, ``vatex_validation_v1.0.json``) are a list
of clips, each with ten English captions (and ten Chinese ones, ignored here)::

    [{"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": ["A man ...", ...], "chCap": [...]}, ...]

The ``videoID`` is a YouTube ID followed by the clip's start and end seconds. The clips
themselves are not distributed with the captions, so a clip comes from disk in one of two forms:

* frames: ``frames_dir/<videoID>/`` holds the clip's frames as ``.jpg``/``.jpeg``/``.png``
  files (sorted by name), e.g. extracted with ``ffmpeg -i clip.mp4 -vf fps=1 %06d.jpg``;
* features: ``features_dir/<videoID>.npy`` holds a ``(T, D)`` array per clip, e.g. the I3D
  features released with VATEX.

``frames`` of them are sampled uniformly in time (:func:`frame_indices`). Nothing is downloaded
here; every missing piece raises an error that says what to fetch. Taught in
notebooks/06_demo_and_scale.ipynb (the real-data path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fastslow_lib.config.checks import check_int, check_optional_int
from fastslow_lib.core.progress import progress
from fastslow_lib.data.real import (
    CaptionedSplit,
    DatasetMissingError,
    load_image,
    read_json,
)

__all__ = ["FRAME_SUFFIXES", "frame_files", "frame_indices", "load_vatex"]

#: File suffixes (lower-cased) counted as frames in a video folder.
FRAME_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")

HOW_CAPTIONS = ("the VATEX captions (vatex_training_v1.0.json, vatex_validation_v1.0.json) from "
                "https://eric-xw.github.io/vatex-website/download.html")
HOW_FRAMES = ("the clips are YouTube videos named by videoID (<youtube id>_<start>_<end>): "
              "download them and extract frames into frames_dir/<videoID>/ "
              "(e.g. ffmpeg -i clip.mp4 -vf fps=1 frames_dir/<videoID>/%06d.jpg)")
HOW_FEATURES = ("the VATEX I3D features from https://eric-xw.github.io/vatex-website/download.html"
                ", one <videoID>.npy of shape (T, D) per clip in features_dir")


def frame_indices(n_available: int, frames: int) -> np.ndarray:
    """Indices of ``frames`` samples spread uniformly over ``n_available`` frames (int64).

    ``np.linspace(0, n_available - 1, frames)`` rounded to the nearest index (halves to even,
    as ``np.round``), so the first and last frames are always taken; with fewer frames than
    ``frames`` some indices repeat (``frame_indices(3, 5)`` is ``[0, 0, 1, 2, 2]``).
    """
    check_int(n_available, "n_available", allow_numpy=True, type_error=ValueError)
    check_int(frames, "frames", allow_numpy=True, type_error=ValueError)
    return np.round(np.linspace(0, n_available - 1, frames)).astype(np.int64)


def frame_files(folder: str | Path) -> list[Path]:
    """The frame images in ``folder`` (suffix in :data:`FRAME_SUFFIXES`), sorted by name."""
    return sorted((p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES), key=lambda p: p.name)


def _check_entries(entries: Any, json_path: Path) -> None:
    """Raise a ValueError naming the first entry that is not a VATEX caption record."""
    if not isinstance(entries, list):
        raise ValueError(f"{json_path} holds a {type(entries).__name__}, expected a JSON list of "
                         f"{{\"videoID\": ..., \"enCap\": [...]}} (a VATEX caption file)")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{json_path}: entry [{i}] is a {type(entry).__name__}, expected "
                             f"an object with 'videoID' and 'enCap'")
        for key in ("videoID", "enCap"):
            if key not in entry:
                raise ValueError(f"{json_path}: entry [{i}] has no {key!r} field")
        if not isinstance(entry["videoID"], str) or not entry["videoID"]:
            raise ValueError(f"{json_path}: entry [{i}] 'videoID' must be a non-empty string")
        caps = entry["enCap"]
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise ValueError(f"{json_path}: entry [{i}] ({entry['videoID']}) 'enCap' must be a "
                             f"list of strings")


def _load_features(path: Path, frames: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise OSError(f"cannot read feature file {path} ({e})") from e
    if arr.ndim != 2:
        raise ValueError(f"feature file {path} has shape {arr.shape}; expected 2 dimensions "
                         f"(T, D)")
    if arr.shape[0] == 0:
        raise ValueError(f"feature file {path} has no rows (shape {arr.shape})")
    return arr[frame_indices(arr.shape[0], frames)].astype(np.float32)


def load_vatex(
    json_path: str | Path,
    *,
    frames_dir: str | Path | None = None,
    features_dir: str | Path | None = None,
    frames: int = 8,
    image_size: int = 64,
    captions_per_item: int = 10,
    max_items: int | None = None,
) -> CaptionedSplit:
    """VATEX clips and their English captions, from frames or from precomputed features.

    Give exactly one of ``frames_dir`` (folders of frame images, one per ``videoID``) and
    ``features_dir`` (one ``<videoID>.npy`` of shape ``(T, D)`` per clip). ``frames`` samples
    are taken per clip with :func:`frame_indices`; frames are centre-cropped and resized to
    ``image_size`` like images (:func:`~fastslow_lib.data.real.load_image`).

    * ``captions_per_item``: the first that many ``enCap`` captions (stripped) are kept; a clip
      with fewer raises a ValueError naming its videoID;
    * ``max_items``: keep the first n clips of the file.

    Returns a :class:`CaptionedSplit` named after the file's stem, ``ids`` the videoIDs, and
    either ``images`` uint8 ``(N, frames, image_size, image_size, 3)`` or ``features`` float32
    ``(N, frames, D)`` (``images`` then None). Every clip's folder or file is checked to exist
    (the first missing one is named) before anything is loaded. Taught in
    notebooks/06_demo_and_scale.ipynb.
    """
    if (frames_dir is None) == (features_dir is None):
        given = "both" if frames_dir is not None else "neither"
        raise ValueError(f"give exactly one of frames_dir and features_dir (got {given})")
    check_int(frames, "frames", allow_numpy=True, type_error=ValueError)
    check_int(image_size, "image_size", allow_numpy=True, type_error=ValueError)
    check_int(captions_per_item, "captions_per_item", allow_numpy=True, type_error=ValueError)
    check_optional_int(max_items, "max_items", allow_numpy=True, type_error=ValueError)
    json_path = Path(json_path)

    entries = read_json(json_path, what="VATEX caption file", how=HOW_CAPTIONS)
    _check_entries(entries, json_path)
    if not entries:
        raise ValueError(f"{json_path} lists no videos")
    if max_items is not None:
        entries = entries[:max_items]

    ids = [e["videoID"] for e in entries]
    captions: list[str] = []
    for entry in entries:
        caps = entry["enCap"]
        if len(caps) < captions_per_item:
            raise ValueError(f"{json_path}: video {entry['videoID']} has {len(caps)} English "
                             f"captions, fewer than captions_per_item={captions_per_item}")
        captions += [c.strip() for c in caps[:captions_per_item]]
    caption_image = np.repeat(np.arange(len(ids), dtype=np.int64), captions_per_item)

    if frames_dir is not None:
        root, how = Path(frames_dir), HOW_FRAMES
        paths = [root / vid for vid in ids]
        exists = Path.is_dir
        kind, root_what = "video frame folders", "VATEX frames folder (frames_dir)"
    else:
        root, how = Path(features_dir), HOW_FEATURES
        paths = [root / f"{vid}.npy" for vid in ids]
        exists = Path.is_file
        kind, root_what = "feature files", "VATEX features folder (features_dir)"
    if not root.is_dir():
        raise DatasetMissingError(root_what, root, how)
    missing = [p for p in paths if not exists(p)]
    if missing:
        raise DatasetMissingError(
            f"{len(missing)} of the {len(paths)} {kind} (first missing: {missing[0].name})",
            missing[0], how)

    name = json_path.stem
    if frames_dir is not None:
        listed = []
        for vid, folder in zip(ids, paths, strict=True):
            files = frame_files(folder)
            if not files:
                raise DatasetMissingError(
                    f"frames of video {vid} (no {'/'.join(FRAME_SUFFIXES)} files in its folder)",
                    folder, how)
            listed.append(files)
        images = np.empty((len(ids), frames, image_size, image_size, 3), dtype=np.uint8)
        for k, files in enumerate(progress(listed, desc=f"{name} frames")):
            for t, idx in enumerate(frame_indices(len(files), frames)):
                images[k, t] = load_image(files[idx], image_size)
        return CaptionedSplit(name, images, captions, caption_image, ids)

    feats = []
    for path in progress(paths, desc=f"{name} features"):
        arr = _load_features(path, frames)
        if feats and arr.shape[1] != feats[0].shape[1]:
            raise ValueError(f"feature file {path} has D={arr.shape[1]} but {paths[0]} has "
                             f"D={feats[0].shape[1]}; every video must share the feature size")
        feats.append(arr)
    return CaptionedSplit(name, None, captions, caption_image, ids, features=np.stack(feats))
