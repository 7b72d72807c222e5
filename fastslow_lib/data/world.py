"""The embedded world: seeded, cached splits of images with five captions each, and the probe.

``load_world(preset)`` returns every split of the world a preset describes. The first call
generates them (seconds) and caches them under ``data/cache/``; later calls read the cache.
Everything is a function of the :class:`WorldConfig` and its seed: the same config gives the
same images and captions, bit for bit (``Split.fingerprint`` proves it).

Splits, as in the Karpathy splits of Flickr30K and COCO:

* ``train``, ``val``, ``test``: ordinary scenes, with a share of small-object scenes mixed in;
  the test split of the ``cpu`` preset has 1,000 images and 5,000 captions;
* ``small``: small-object scenes only (tiny objects on a fine grid), where a coarse feature
  map loses detail: the split that tests gradual upsampling;
* ``probe``: the compositional probe, pairs of scenes with the same objects and one binding
  swapped (colour, place or size), each with a caption true of one and false of the other.

Taught in notebooks/00_data.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from fastslow_lib.data.captions import CaptionForm, caption_scene_n, is_true
from fastslow_lib.data.render import render_many
from fastslow_lib.data.scene import COLOURS, SHAPES, Scene, sample_scene, swap_attribute
from fastslow_lib.data.truth import truth_matrix

#: Bump when generation changes, so old caches are not mistaken for new ones.
GENERATOR_VERSION = 2
SPLITS: tuple[str, ...] = ("train", "val", "test", "small")
PROBE_KINDS: tuple[str, ...] = ("colour", "position", "size")
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2, "small": 3, "probe": 4, "distractors": 5}


@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides the embedded world's contents."""

    image_size: int = 64
    shapes: tuple[str, ...] = ("circle", "square", "triangle")
    colours: tuple[str, ...] = ("red", "green", "blue")
    #: Probability of 2, 3 and 4 objects in a scene.
    n_objects_probs: tuple[float, float, float] = (0.1, 0.3, 0.6)
    grid: int = 4
    fine_grid: int = 8
    #: Share of small-object scenes in train / val / test.
    fine_fraction: float = 0.3
    captions_per_image: int = 5
    n_train: int = 10_000
    n_val: int = 1_000
    n_test: int = 1_000
    n_small: int = 1_000
    probe_pairs_per_kind: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__} {self.seed!r}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        unknown = [s for s in self.shapes if s not in SHAPES]
        unknown += [c for c in self.colours if c not in COLOURS]
        if unknown:
            raise ValueError(
                f"unknown words {unknown}; shapes: {SHAPES}, colours: {tuple(COLOURS)}"
            )
        if abs(sum(self.n_objects_probs) - 1.0) > 1e-9 or len(self.n_objects_probs) != 3:
            raise ValueError(f"n_objects_probs must be 3 probabilities summing to 1, got "
                             f"{self.n_objects_probs}")
        sizes = {"n_train": self.n_train, "n_val": self.n_val, "n_test": self.n_test,
                 "n_small": self.n_small, "probe_pairs_per_kind": self.probe_pairs_per_kind}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")

    def n_images(self, split: str) -> int:
        """Number of images in ``split``."""
        check_split(split)
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test,
                "small": self.n_small}[split]

    def key(self) -> str:
        """Short hash naming this config's cache folder."""
        blob = json.dumps({"v": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def check_split(split: str) -> str:
    """``split`` itself, or a ValueError naming the known splits."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return split


def _rng(cfg: WorldConfig, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, _SPLIT_STREAM[stream]]))


def _scene(cfg: WorldConfig, rng: np.random.Generator, fine: bool) -> Scene:
    n = int(rng.choice([2, 3, 4], p=list(cfg.n_objects_probs)))
    return sample_scene(
        rng,
        image_size=cfg.image_size,
        grid=cfg.fine_grid if fine else cfg.grid,
        n_objects=n,
        kind="fine" if fine else "normal",
        shapes=cfg.shapes,
        colours=cfg.colours,
    )


@dataclass
class Split:
    """Images, their scenes, and their captions (``captions_per_image`` per image, in order)."""

    name: str
    images: np.ndarray  # (N, H, W, 3) uint8
    scenes: list[Scene]
    captions: list[str]
    forms: list[CaptionForm]
    caption_image: np.ndarray  # (N * captions_per_image,) int64: the image of each caption

    def __len__(self) -> int:
        return len(self.scenes)

    @cached_property
    def truth(self) -> np.ndarray:
        """``truth[q, g]``: caption q is true of image g of this split (scene descriptions)."""
        return truth_matrix(self.forms, self.scenes)

    def fingerprint(self) -> str:
        """SHA-256 of the pixels and captions: equal fingerprints, identical data."""
        h = hashlib.sha256(self.images.tobytes())
        h.update("\n".join(self.captions).encode())
        return h.hexdigest()


@dataclass
class ProbeSet:
    """Pairs of twin scenes (one binding swapped) with a caption that tells each from its twin.

    ``caption_a`` is true of ``scenes_a[i]`` and false of ``scenes_b[i]``; ``caption_b`` the
    other way round. A model passes a comparison when it scores the true image higher.
    """

    kinds: list[str]
    images_a: np.ndarray
    images_b: np.ndarray
    scenes_a: list[Scene]
    scenes_b: list[Scene]
    caption_a: list[str]
    caption_b: list[str]
    forms_a: list[CaptionForm] = field(repr=False)
    forms_b: list[CaptionForm] = field(repr=False)

    def __len__(self) -> int:
        return len(self.kinds)

    def fingerprint(self) -> str:
        """SHA-256 of the pixels and captions."""
        h = hashlib.sha256(self.images_a.tobytes() + self.images_b.tobytes())
        h.update("\n".join(self.caption_a + self.caption_b).encode())
        return h.hexdigest()


def generate_split(cfg: WorldConfig, split: str) -> Split:
    """Generate ``split`` of the world ``cfg`` (no cache): seeded, deterministic."""
    check_split(split)
    rng = _rng(cfg, split)
    scenes, captions, forms, owner = [], [], [], []
    for i in range(cfg.n_images(split)):
        fine = split == "small" or rng.random() < cfg.fine_fraction
        scene = _scene(cfg, rng, fine)
        scenes.append(scene)
        for text, form in caption_scene_n(scene, rng, cfg.captions_per_image):
            captions.append(text)
            forms.append(form)
            owner.append(i)
    return Split(split, render_many(scenes), scenes, captions, forms,
                 np.asarray(owner, dtype=np.int64))


def generate_distractors(cfg: WorldConfig, n: int) -> tuple[np.ndarray, list[Scene]]:
    """``n`` extra gallery images drawn like the test split's (no captions): ``(images, scenes)``.

    Notebook 04 appends them to the 1k test gallery to measure re-ranking as the gallery grows
    (to 10^4 and beyond); a seeded stream of their own, so the same ``n`` gives the same images
    and a larger ``n`` extends a smaller one.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = _rng(cfg, "distractors")
    scenes = [_scene(cfg, rng, rng.random() < cfg.fine_fraction) for _ in range(n)]
    return render_many(scenes), scenes


def _probe_pair(
    cfg: WorldConfig, rng: np.random.Generator, kind: str
) -> tuple[Scene, Scene, tuple[str, CaptionForm], tuple[str, CaptionForm]] | None:
    """One probe pair of ``kind``, or None when this draw offers no valid swap."""
    fine = rng.random() < cfg.fine_fraction
    scene = _scene(cfg, rng, fine)
    objs = scene.objects
    pairs = []
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            a, b = objs[i], objs[j]
            if kind == "colour" and a.colour != b.colour and a.shape != b.shape:
                pairs.append((i, j))
            elif kind == "position" and (a.shape, a.colour) != (b.shape, b.colour):
                pairs.append((i, j))
            elif kind == "size" and a.size != b.size and (a.shape, a.colour) != (b.shape, b.colour):
                pairs.append((i, j))
    if not pairs:
        return None
    i, j = pairs[int(rng.integers(len(pairs)))]
    twin = swap_attribute(scene, i, j, kind)
    chosen = []
    for this, other in ((scene, twin), (twin, scene)):
        options = [c for c in caption_scene_n(this, rng, cfg.captions_per_image)
                   if not is_true(c[1], other)]
        if not options:
            return None
        chosen.append(options[0])
    return scene, twin, chosen[0], chosen[1]


def generate_probe(cfg: WorldConfig) -> ProbeSet:
    """Generate the compositional probe: ``probe_pairs_per_kind`` pairs of each kind."""
    rng = _rng(cfg, "probe")
    kinds, sa, sb, ca, cb = [], [], [], [], []
    for kind in PROBE_KINDS:
        made = 0
        while made < cfg.probe_pairs_per_kind:
            pair = _probe_pair(cfg, rng, kind)
            if pair is None:
                continue
            kinds.append(kind)
            sa.append(pair[0])
            sb.append(pair[1])
            ca.append(pair[2])
            cb.append(pair[3])
            made += 1
    return ProbeSet(
        kinds, render_many(sa), render_many(sb), sa, sb,
        [c[0] for c in ca], [c[0] for c in cb], [c[1] for c in ca], [c[1] for c in cb],
    )


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$FASTSLOW_DATA`` if set, else ``data/cache`` in the repository (or the cwd)."""
    env = os.environ.get("FASTSLOW_DATA")
    if env:
        return Path(env)
    from fastslow_lib.results import repo_root

    try:
        return repo_root() / "data" / "cache"
    except FileNotFoundError:
        return Path.cwd().resolve() / "data" / "cache"


def _save_split(split: Split, folder: Path) -> None:
    tmp = folder / f"{split.name}.tmp.npz"
    np.savez(tmp, images=split.images, caption_image=split.caption_image)
    meta = {
        "scenes": [s.to_dict() for s in split.scenes],
        "captions": split.captions,
        "forms": [f.to_dict() for f in split.forms],
    }
    (folder / f"{split.name}.json").write_text(json.dumps(meta))
    os.replace(tmp, folder / f"{split.name}.npz")


def _load_split(name: str, folder: Path) -> Split:
    try:
        with np.load(folder / f"{name}.npz") as z:
            images, caption_image = z["images"], z["caption_image"]
        meta = json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise OSError(f"world cache for split {name!r} in {folder} is unreadable ({e}); "
                      f"delete the folder to regenerate it") from e
    return Split(
        name, images, [Scene.from_dict(d) for d in meta["scenes"]], meta["captions"],
        [CaptionForm.from_dict(d) for d in meta["forms"]], caption_image,
    )


def _save_probe(probe: ProbeSet, folder: Path) -> None:
    tmp = folder / "probe.tmp.npz"
    np.savez(tmp, images_a=probe.images_a, images_b=probe.images_b)
    meta = {
        "kinds": probe.kinds,
        "scenes_a": [s.to_dict() for s in probe.scenes_a],
        "scenes_b": [s.to_dict() for s in probe.scenes_b],
        "caption_a": probe.caption_a, "caption_b": probe.caption_b,
        "forms_a": [f.to_dict() for f in probe.forms_a],
        "forms_b": [f.to_dict() for f in probe.forms_b],
    }
    (folder / "probe.json").write_text(json.dumps(meta))
    os.replace(tmp, folder / "probe.npz")


def _load_probe(folder: Path) -> ProbeSet:
    try:
        with np.load(folder / "probe.npz") as z:
            a, b = z["images_a"], z["images_b"]
        m = json.loads((folder / "probe.json").read_text())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise OSError(f"world cache for the probe in {folder} is unreadable ({e}); "
                      f"delete the folder to regenerate it") from e
    return ProbeSet(
        m["kinds"], a, b, [Scene.from_dict(d) for d in m["scenes_a"]],
        [Scene.from_dict(d) for d in m["scenes_b"]], m["caption_a"], m["caption_b"],
        [CaptionForm.from_dict(d) for d in m["forms_a"]],
        [CaptionForm.from_dict(d) for d in m["forms_b"]],
    )


@dataclass
class World:
    """All splits of one world config, plus where they are cached."""

    config: WorldConfig
    splits: dict[str, Split]
    probe: ProbeSet
    folder: Path | None

    def __getitem__(self, split: str) -> Split:
        return self.splits[check_split(split)]

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    @property
    def small(self) -> Split:
        return self.splits["small"]

    def tokenizer(self):  # -> transformers.PreTrainedTokenizerFast
        """The word-level tokenizer of the training captions, cached beside the splits."""
        return cached_tokenizer(self.folder, self.train.captions)


def cached_tokenizer(folder: Path | None, captions: list[str]):
    """The tokenizer of ``captions``, read from ``folder/tokenizer`` or built and saved there.

    Shared by the image world and the clip world (notebook 05); ``folder=None`` builds it
    without caching.
    """
    from fastslow_lib.tokenizer import build_tokenizer, load_tokenizer, save_tokenizer

    where = folder / "tokenizer" if folder is not None else None
    if where is not None and (where / "tokenizer.json").exists():
        return load_tokenizer(where)
    tok = build_tokenizer(captions)
    if where is not None:
        save_tokenizer(tok, where)
    return tok


def load_world(
    config: WorldConfig | str = "cpu",
    cache_dir: str | Path | None = None,
    *,
    use_cache: bool = True,
) -> World:
    """Every split of a world: read from the cache if there, else generated and cached.

    ``config`` is a :class:`WorldConfig` or a preset name (``"tiny"``, ``"cpu"``, ``"gpu"``).
    """
    if isinstance(config, str):
        from fastslow_lib.presets import get_preset

        config = get_preset(config).world
    folder = None
    if use_cache:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        folder = folder / f"world-{config.key()}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(asdict(config), indent=1))
    splits = {}
    for name in SPLITS:
        if folder is not None and (folder / f"{name}.npz").exists():
            splits[name] = _load_split(name, folder)
        else:
            splits[name] = generate_split(config, name)
            if folder is not None:
                _save_split(splits[name], folder)
    if folder is not None and (folder / "probe.npz").exists():
        probe = _load_probe(folder)
    else:
        probe = generate_probe(config)
        if folder is not None:
            _save_probe(probe, folder)
    return World(config, splits, probe, folder)
