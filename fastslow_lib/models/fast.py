"""The Fast model: a dual encoder that maps images and captions into one L2-normalised space.

Taught in notebooks/01_fast.ipynb.

Two towers that never look at each other:

* :class:`VisionTower`: a small timm CNN (global average pooled) and a linear projection;
* :class:`TextTower`: a small transformer encoder (a ``transformers`` ModernBERT with rotary
  positions trained from scratch, a BERT with learned absolute positions for comparison, or a
  local pretrained checkpoint), masked mean pooling and a linear projection.

:class:`DualEncoder` puts them together: both outputs are L2-normalised, so the score of a
(caption, image) pair is a dot product, and image embeddings can be computed once and put in
an index (FAISS). Training uses :func:`fastslow_lib.losses.info_nce` with the model's learnable
temperature (``DualEncoder.scale()``).

Why rotary positions (measured, notebooks/01_fast.ipynb): the compositional probe needs the
text tower to *bind* words ("red" to "circle", not "red" somewhere and "circle" somewhere).
Trained alone to read off which (shape, colour) pairs a caption names, a 2-layer BERT with
learned absolute position embeddings sat on a plateau for ~450 steps before it learned to look
at the neighbouring word; a 2-layer ModernBERT, whose rotary positions make "the previous
word" the same offset everywhere, learned it in under 100 steps. Inside InfoNCE, where binding
is rarely needed to beat random in-batch negatives, the BERT tower never left the plateau in
the laptop budget (probe at chance), the ModernBERT tower did.

Pitfall (DESIGN.md, section 7): a text tower whose word embeddings start at N(0, 1), next
to position embeddings of scale 0.02, ignores word order, so "a red circle left of a blue
square" and "a blue circle left of a red square" get the same embedding, and training does not
fix it. ``transformers`` initialises every embedding at std 0.02 (``initializer_range``). The
tests check the std, that the twins' embeddings differ at initialisation (1 - cosine about
1e-4, against about 1e-6 for the order-blind tower: an untrained transformer is nearly linear,
so the difference is small) and that a few training steps pull them apart (cosine about 0.4,
while the order-blind tower stays at 1.000).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn
from transformers import (
    AutoModel,
    BertConfig,
    BertModel,
    ModernBertConfig,
    ModernBertModel,
    PreTrainedModel,
)

from fastslow_lib.losses import check_embeddings
from fastslow_lib.tokenizer import BOS_ID, CLS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS

__all__ = [
    "DEFAULT_VISION_BACKBONE",
    "DEFAULT_VISION_KWARGS",
    "MAX_LOGIT_SCALE",
    "TEXT_ENCODERS",
    "DualEncoder",
    "FastConfig",
    "TextTower",
    "VisionTower",
    "bert_config",
    "build_text_encoder",
    "load_backbone_weights",
    "modernbert_config",
    "text_encoder_config",
]

#: Upper bound of the log logit scale: the scale ``exp(t)`` never exceeds 100 (as in CLIP).
MAX_LOGIT_SCALE = math.log(100.0)

#: The default vision backbone: timm's ResNet made narrow and shallow with timm's own
#: ``ResNet`` keyword arguments: one BasicBlock per stage, stage widths 16-128, a 3-layer 3x3
#: stem of width 16 (0.32M parameters). Measured forward+backward at batch 128 on 64x64
#: images, 2 CPU threads: about 800 images/s, against about 550 for widths 32-256 (1.2M) and
#: 30-40 for a full ResNet-18 (11M), whose 7x7 stem of width 64 alone costs more than the
#: whole narrow net. Together with the default text tower, a training step runs at about 480
#: pairs/s (2 threads), so several epochs of 10,000 pairs fit in 3 minutes of a 2-core laptop.
DEFAULT_VISION_BACKBONE = "resnet18"
DEFAULT_VISION_KWARGS: dict[str, Any] = {
    "layers": (1, 1, 1, 1),
    "channels": (16, 32, 64, 128),
    "stem_type": "deep",
    "stem_width": 16,
}

#: Text encoders the text tower can build from scratch: ``"modernbert"`` (rotary positions,
#: the default) and ``"bert"`` (learned absolute position embeddings, for comparison).
TEXT_ENCODERS: tuple[str, ...] = ("modernbert", "bert")

# timm.create_model arguments that the vision tower fixes itself.
_FIXED_TIMM_ARGS = frozenset(
    {"pretrained", "num_classes", "global_pool", "in_chans", "features_only"}
)

# Tolerance of the [0, 1] range check on images (resampling can overshoot a little).
_RANGE_TOLERANCE = 1e-3


# --------------------------------------------------------------------------- validation


def _check_int(value: object, name: str, minimum: int) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_float(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _tuples(value: Any) -> Any:
    """Turn lists into tuples, recursively (JSON gives lists back for the tuples we saved)."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


# --------------------------------------------------------------------------- config


def _default_vision_kwargs() -> dict[str, Any]:
    return dict(DEFAULT_VISION_KWARGS)


@dataclass
class FastConfig:
    """Sizes of the Fast dual encoder.

    ``vocab_size`` must be the tokenizer's (``len(tok)``); ``max_len`` is the longest token
    sequence the text tower accepts (special tokens included) and the number of position
    embeddings. ``vision_kwargs`` go to ``timm.create_model`` (they must be JSON-serialisable,
    since checkpoints save the config as JSON). ``text_encoder`` picks the from-scratch text
    transformer (:data:`TEXT_ENCODERS`). ``dropout`` applies inside the text transformer (0 by
    default: 10,000 images x 5 captions and a few epochs leave little to overfit).
    ``init_temperature`` is the softmax temperature at initialisation: the learnable logit
    scale starts at ``log(1 / init_temperature)``.

    The defaults (about 0.8M parameters) are sized for training on a 2-core laptop CPU; the
    text tower (width 128, 2 layers, 4 heads) costs about as much per pair as the vision tower.
    """

    vocab_size: int
    max_len: int = 48
    embed_dim: int = 256
    vision_backbone: str = DEFAULT_VISION_BACKBONE
    vision_kwargs: dict[str, Any] = field(default_factory=_default_vision_kwargs)
    text_encoder: str = "modernbert"
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    dropout: float = 0.0
    init_temperature: float = 0.07
    image_size: int = 64

    def __post_init__(self) -> None:
        _check_int(self.vocab_size, "vocab_size", minimum=len(SPECIAL_TOKENS) + 1)
        _check_int(self.max_len, "max_len", minimum=3)  # [BOS] word [EOS]
        _check_int(self.embed_dim, "embed_dim", minimum=1)
        _check_int(self.text_width, "text_width", minimum=1)
        _check_int(self.text_layers, "text_layers", minimum=1)
        _check_int(self.text_heads, "text_heads", minimum=1)
        _check_int(self.image_size, "image_size", minimum=8)
        if self.text_width % self.text_heads:
            raise ValueError(
                f"text_width ({self.text_width}) must be divisible by text_heads "
                f"({self.text_heads})"
            )
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(
                f"unknown text_encoder {self.text_encoder!r}; expected one of {TEXT_ENCODERS}"
            )
        dropout = _check_float(self.dropout, "dropout")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        temperature = _check_float(self.init_temperature, "init_temperature")
        if not 1.0 / 100.0 < temperature <= 1.0:
            raise ValueError(
                f"init_temperature must be in (0.01, 1] (the logit scale 1/temperature is "
                f"clamped at 100), got {temperature}"
            )
        if not isinstance(self.vision_backbone, str) or not timm.is_model(self.vision_backbone):
            name = self.vision_backbone
            close = timm.list_models(f"*{name}*")[:10] if isinstance(name, str) else []
            raise ValueError(f"vision_backbone {name!r} is not a timm model; similar: {close}")
        if not isinstance(self.vision_kwargs, dict):
            raise TypeError(
                f"vision_kwargs must be a dict, got {type(self.vision_kwargs).__name__}"
            )
        fixed = sorted(_FIXED_TIMM_ARGS & set(self.vision_kwargs))
        if fixed:
            raise ValueError(
                f"vision_kwargs may not set {fixed}: the vision tower fixes them "
                "(RGB input, no classifier, average pooling, no download)"
            )
        try:
            json.dumps(self.vision_kwargs)
        except TypeError as err:
            raise TypeError(
                f"vision_kwargs must be JSON-serialisable (checkpoints save it): {err}"
            ) from None
        self.vision_kwargs = _tuples(self.vision_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (tuples become lists); ``from_dict`` inverts it."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FastConfig:
        """Build a config from ``to_dict()``'s output; unknown or missing keys raise ValueError."""
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown FastConfig keys {unknown}; known keys: {sorted(names)}")
        if "vocab_size" not in data:
            raise ValueError("FastConfig needs vocab_size (the tokenizer's len(tok))")
        return cls(**data)


def _as_config(config: FastConfig | dict[str, Any]) -> FastConfig:
    """Accept a :class:`FastConfig` or its ``to_dict()`` form."""
    if isinstance(config, FastConfig):
        return config
    if isinstance(config, dict):
        return FastConfig.from_dict(config)
    raise TypeError(f"config must be a FastConfig or a dict, got {type(config).__name__}")


# --------------------------------------------------------------------------- vision


def _read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """Read a local state dict (``.safetensors``, else a torch file); never downloads."""
    if not isinstance(path, str | Path):
        raise TypeError(f"{what} path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: expected a local .safetensors or torch state-dict file at "
            f"{str(path.resolve())!r}; the course never downloads weights, so copy the file "
            "there (or leave the path out to train from scratch)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file: safetensors/pickle raise many kinds of errors
        raise ValueError(f"could not read {what} {str(path)!r}: {err}") from err
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ValueError(f"{what} {str(path)!r} does not hold a state dict of named tensors")
    return state


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a local state dict into a timm ``backbone`` (built with ``num_classes=0``).

    Keys of the model's classifier (``fc.*`` for a ResNet) and a DistributedDataParallel
    ``module.`` prefix are dropped. Missing, unexpected or wrongly shaped tensors raise
    ValueError listing them; a missing file raises FileNotFoundError.
    """
    state = _read_state_dict(path, "pretrained backbone weights")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    classifier = cfg.get("classifier")
    heads = [classifier] if isinstance(classifier, str) else list(classifier or [])
    state = {
        key: value
        for key, value in state.items()
        if not any(key == head or key.startswith(head + ".") for head in heads)
    }
    from fastslow_lib.checkpoint import state_dict_problems

    problems = state_dict_problems(backbone.state_dict(), state)
    if problems:
        raise ValueError(
            f"pretrained backbone weights {str(path)!r} do not fit the backbone "
            f"({type(backbone).__name__}): " + "; ".join(problems)
            + ". Check FastConfig.vision_backbone and vision_kwargs."
        )
    backbone.load_state_dict(state, strict=True)


def _check_images(images: object, image_size: int) -> torch.Tensor:
    """Check a float image batch ``(B, 3, image_size, image_size)`` with values in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not images.dtype.is_floating_point:
        raise TypeError(
            f"images must be a float tensor with values in [0, 1], got dtype {images.dtype}; "
            "convert uint8 pixels with images.float() / 255"
        )
    shape = tuple(images.shape)
    if images.dim() != 4:
        hint = "; for one image use images.unsqueeze(0)" if images.dim() == 3 else ""
        raise ValueError(f"images must have shape (B, 3, H, W), got {shape}{hint}")
    if shape[1] != 3:
        if shape[-1] == 3:
            raise ValueError(
                f"images must be channels-first (B, 3, H, W), got {shape}, which looks "
                "channels-last; use images.permute(0, 3, 1, 2)"
            )
        raise ValueError(f"images must have 3 colour channels (B, 3, H, W), got {shape}")
    if shape[0] == 0:
        raise ValueError("images is an empty batch")
    if shape[2] != image_size or shape[3] != image_size:
        raise ValueError(
            f"images must be {image_size}x{image_size} (FastConfig.image_size), "
            f"got {shape[2]}x{shape[3]}"
        )
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or inf values")
    low, high = (float(v) for v in torch.aminmax(images.detach()))
    if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
        raise ValueError(
            f"images must have values in [0, 1], got [{low:.3g}, {high:.3g}]; "
            "did you forget to divide uint8 pixels by 255?"
        )
    return images


class VisionTower(nn.Module):
    """A timm CNN, globally average pooled, then a linear projection to ``embed_dim``.

    Input: float images ``(B, 3, H, W)`` in ``[0, 1]`` with ``H = W = config.image_size``;
    they are normalised inside with the backbone's mean/std (ImageNet's unless timm says
    otherwise), kept as non-persistent buffers. Output: ``(B, embed_dim)``, not normalised.

    ``pretrained_path`` optionally names a local state-dict file (``.safetensors`` or a torch
    file) for the backbone; there is no download path.
    """

    def __init__(
        self, config: FastConfig | dict[str, Any], pretrained_path: str | Path | None = None
    ) -> None:
        super().__init__()
        config = _as_config(config)
        self.image_size = config.image_size
        try:
            self.backbone = timm.create_model(
                config.vision_backbone,
                pretrained=False,
                num_classes=0,
                global_pool="avg",
                **config.vision_kwargs,
            )
        except TypeError as err:
            raise ValueError(
                f"timm model {config.vision_backbone!r} rejected vision_kwargs "
                f"{config.vision_kwargs}: {err}"
            ) from err
        # Width of the pooled features (timm's pre-logits size; above num_features for models
        # with a conv head, e.g. MobileNetV3).
        width = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        self.num_features: int = int(width)
        self.proj = nn.Linear(self.num_features, config.embed_dim)
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean"), cfg.get("std")
        if mean is None or std is None or len(mean) != 3 or len(std) != 3:
            mean, std = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if pretrained_path is not None:
            load_backbone_weights(self.backbone, pretrained_path)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` images in [0, 1] -> ``(B, embed_dim)`` features."""
        images = _check_images(images, self.image_size)
        x = (images.to(self.mean.dtype) - self.mean) / self.std
        return self.proj(self.backbone(x))


# --------------------------------------------------------------------------- text


def bert_config(config: FastConfig) -> BertConfig:
    """The ``transformers`` config of the from-scratch text encoder described by ``config``.

    ``initializer_range=0.02`` is what makes word and position embeddings start at the same
    small scale, so the encoder sees word order from the first step (DESIGN.md, section 7).
    """
    return BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.text_width,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        intermediate_size=4 * config.text_width,
        max_position_embeddings=config.max_len,
        type_vocab_size=1,
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        pad_token_id=PAD_ID,
        initializer_range=0.02,
    )


def modernbert_config(config: FastConfig) -> ModernBertConfig:
    """The ``transformers`` config of the from-scratch ModernBERT text encoder.

    Rotary position embeddings (no absolute position table), pre-norm layers, GeGLU MLPs of
    width ``2 * text_width``, global attention in every layer (captions are short), word
    embeddings at std 0.02.
    """
    return ModernBertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.text_width,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        intermediate_size=2 * config.text_width,
        max_position_embeddings=config.max_len,
        global_attn_every_n_layers=1,
        embedding_dropout=config.dropout,
        attention_dropout=config.dropout,
        mlp_dropout=config.dropout,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        cls_token_id=CLS_ID,
        sep_token_id=EOS_ID,
        initializer_range=0.02,
    )


def text_encoder_config(config: FastConfig) -> BertConfig | ModernBertConfig:
    """The ``transformers`` config of ``config.text_encoder``, sized by ``config``."""
    if config.text_encoder == "bert":
        return bert_config(config)
    return modernbert_config(config)


def build_text_encoder(config: FastConfig) -> PreTrainedModel:
    """A from-scratch text encoder of kind ``config.text_encoder`` (no pooler)."""
    if config.text_encoder == "bert":
        return BertModel(bert_config(config), add_pooling_layer=False)
    return ModernBertModel(modernbert_config(config))


def _check_tokens(
    input_ids: object, attention_mask: object, vocab_size: int, max_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a right-padded token batch as made by ``fastslow_lib.tokenizer.encode``."""
    for name, value in (("input_ids", input_ids), ("attention_mask", attention_mask)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor, got dtype {value.dtype}")
        if value.dim() != 2:
            raise ValueError(f"{name} must have shape (B, L), got {tuple(value.shape)}")
    assert isinstance(input_ids, torch.Tensor) and isinstance(attention_mask, torch.Tensor)
    if input_ids.shape != attention_mask.shape:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and attention_mask "
            f"{tuple(attention_mask.shape)} must have the same shape"
        )
    batch, length = input_ids.shape
    if batch == 0 or length == 0:
        raise ValueError(f"empty token batch of shape {(batch, length)}")
    if length > max_len:
        raise ValueError(
            f"token sequences are {length} long, more than the text tower's max_len={max_len} "
            "(FastConfig.max_len); encode with max_len <= that"
        )
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"token ids must be in [0, {vocab_size}) (the text tower's vocab_size), got ids in "
            f"[{low}, {high}]; build FastConfig with vocab_size=len(tok) of this tokenizer"
        )
    if bool(((attention_mask != 0) & (attention_mask != 1)).any()):
        raise ValueError("attention_mask must hold only 0 and 1")
    if bool((attention_mask.sum(dim=1) == 0).any()):
        raise ValueError("every row of attention_mask needs at least one real token (a 1)")
    if bool((attention_mask[:, 1:] > attention_mask[:, :-1]).any()):
        raise ValueError(
            "attention_mask must be right-padded (1s, then 0s) as tokenizer.encode makes it; "
            "position embeddings count from the first column"
        )
    return input_ids, attention_mask


class TextTower(nn.Module):
    """A transformer text encoder, masked mean pooling, then a linear projection.

    Built from scratch as a ``transformers`` ``ModernBertModel`` (:func:`modernbert_config`:
    rotary positions, bidirectional self-attention) or ``BertModel`` (:func:`bert_config`:
    learned absolute positions, no pooler), as ``config.text_encoder`` says, or from a local
    pretrained checkpoint with :meth:`from_pretrained_dir`.

    Pooling is the mean of the final hidden states over the real (non-pad) tokens. Every
    token's final state depends on its position and on the whole caption through attention, so
    the mean keeps word order; padding is excluded, so the same caption padded to any length
    gets the same embedding. We prefer it to the BOS state because every token then gets a
    direct gradient from the loss (steadier from scratch with few layers); because at
    initialisation, when attention is nearly uniform, the BOS state is almost blind to word
    order (1 - cosine of colour-swapped twins about 1e-7, against 1e-4 for the mean); and
    because it is the pooling that pretrained sentence encoders such as MiniLM
    (sentence-transformers) were trained with, so such a checkpoint drops in unchanged.

    Input: ``input_ids`` and ``attention_mask`` of shape ``(B, L)``, ``L <= max_len``, from
    ``fastslow_lib.tokenizer.encode``. Output: ``(B, embed_dim)``, not normalised.
    """

    def __init__(
        self, config: FastConfig | dict[str, Any], encoder: PreTrainedModel | None = None
    ) -> None:
        super().__init__()
        config = _as_config(config)
        if encoder is None:
            encoder = build_text_encoder(config)
        elif not isinstance(encoder, PreTrainedModel):
            raise TypeError(
                f"encoder must be a transformers PreTrainedModel, got {type(encoder).__name__}"
            )
        self.encoder = encoder
        enc_cfg = encoder.config
        self.vocab_size = int(enc_cfg.vocab_size)
        self.width = int(enc_cfg.hidden_size)
        positions = getattr(enc_cfg, "max_position_embeddings", None)
        if positions is not None and config.max_len > positions:
            raise ValueError(
                f"FastConfig.max_len={config.max_len} exceeds the encoder's "
                f"max_position_embeddings={positions}"
            )
        if config.vocab_size != self.vocab_size:
            raise ValueError(
                f"FastConfig.vocab_size={config.vocab_size} but the encoder's vocabulary has "
                f"{self.vocab_size} tokens; use that encoder's tokenizer and its size"
            )
        self.max_len = config.max_len
        self.proj = nn.Linear(self.width, config.embed_dim)

    @classmethod
    def from_pretrained_dir(cls, path: str | Path, config: FastConfig | dict) -> TextTower:
        """A text tower whose encoder is loaded from a local ``save_pretrained`` directory.

        The encoder's width, depth and heads come from the checkpoint (``config.text_*`` are
        not used); ``config.vocab_size`` must equal the checkpoint's vocabulary size and
        ``config.max_len`` must not exceed its position embeddings. The projection to
        ``config.embed_dim`` is new. Nothing is downloaded: a missing directory or
        ``config.json`` raises FileNotFoundError naming it.
        """
        if not isinstance(path, str | Path):
            raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
        config = _as_config(config)
        folder = Path(path)
        how = "save one with model.save_pretrained(directory); the course never downloads"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"pretrained text encoder directory {str(folder)!r} does not exist; {how}"
            )
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"no config.json in pretrained text encoder directory {str(folder)!r}; {how}"
            )
        try:
            encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except OSError as err:
            raise FileNotFoundError(
                f"could not load a text encoder from {str(folder)!r}: {err}"
            ) from err
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused: we pool ourselves; keeps every parameter trained
        return cls(config, encoder=encoder)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids and mask -> ``(B, width)``: the encoder's masked mean, before the
        projection (for a pretrained MiniLM, its sentence embedding before normalisation)."""
        input_ids, attention_mask = _check_tokens(
            input_ids, attention_mask, self.vocab_size, self.max_len
        )
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids and mask -> ``(B, embed_dim)`` features."""
        return self.proj(self.pooled(input_ids, attention_mask))


# --------------------------------------------------------------------------- dual encoder


class DualEncoder(nn.Module):
    """The Fast model: vision and text towers into one L2-normalised space of size d.

    ``logit_scale`` is a learnable scalar in log space, initialised to
    ``log(1 / init_temperature)``; :meth:`scale` returns ``exp(min(logit_scale, log 100))``,
    the factor the loss multiplies cosine similarities by (a scale above 100 would let the
    loss shrink by sharpening alone). ``vision_pretrained_path`` / ``text_pretrained_dir``
    optionally start the towers from local pretrained weights.
    """

    def __init__(
        self,
        config: FastConfig | dict[str, Any],
        *,
        vision_pretrained_path: str | Path | None = None,
        text_pretrained_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.config = _as_config(config)
        self.vision = VisionTower(self.config, pretrained_path=vision_pretrained_path)
        if text_pretrained_dir is None:
            self.text = TextTower(self.config)
        else:
            self.text = TextTower.from_pretrained_dir(text_pretrained_dir, self.config)
        init = math.log(1.0 / self.config.init_temperature)
        self.logit_scale = nn.Parameter(torch.tensor(init, dtype=torch.float32))

    @property
    def embed_dim(self) -> int:
        """Dimension d of the joint embedding space."""
        return self.config.embed_dim

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float images in [0, 1] -> ``(B, d)`` unit-norm embeddings."""
        return F.normalize(self.vision(images), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids and mask -> ``(B, d)`` unit-norm embeddings."""
        return F.normalize(self.text(input_ids, attention_mask), dim=-1)

    def scale(self) -> torch.Tensor:
        """The logit scale ``exp(logit_scale)``, clamped at 100 (a 0-d tensor with gradient)."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    @property
    def temperature(self) -> float:
        """The current softmax temperature ``1 / scale()``, as a plain float."""
        return float(1.0 / self.scale().detach())

    def forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embed a batch of matching (image, caption) pairs.

        Returns ``(img_emb, txt_emb, logit_scale)``: two ``(B, d)`` unit-norm tensors and the
        clamped scale ``exp(t)`` (not its log), ready for ``losses.info_nce``.
        """
        n_images = images.shape[0] if isinstance(images, torch.Tensor) else None
        n_texts = input_ids.shape[0] if isinstance(input_ids, torch.Tensor) else None
        if n_images is not None and n_texts is not None and n_images != n_texts:
            raise ValueError(
                f"forward takes matching pairs: got {n_images} images and {n_texts} captions"
            )
        return self.encode_image(images), self.encode_text(input_ids, attention_mask), self.scale()

    @staticmethod
    def similarity(img_emb: torch.Tensor, txt_emb: torch.Tensor) -> torch.Tensor:
        """Score matrix ``scores[t, i] = <txt_emb[t], img_emb[i]>`` (texts x images).

        Rows are caption queries and columns gallery images, the layout of
        ``fastslow_lib.metrics.text_to_image_metrics``.
        """
        img_emb = check_embeddings(img_emb, "img_emb")
        txt_emb = check_embeddings(txt_emb, "txt_emb")
        if img_emb.shape[1] != txt_emb.shape[1]:
            raise ValueError(
                f"img_emb and txt_emb must have the same dimension, got {img_emb.shape[1]} "
                f"and {txt_emb.shape[1]}"
            )
        return txt_emb @ img_emb.T

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (shared ones counted once); only trainable ones if asked."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
