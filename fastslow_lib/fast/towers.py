"""The two towers of the Fast dual encoder: :class:`VisionTower` (images) and :class:`TextTower`
(captions), and the ``transformers`` configs of the from-scratch text encoders.

Taught in notebooks/01_fast.ipynb.

Each tower maps its input to a ``(B, embed_dim)`` feature, not normalised;
:class:`fastslow_lib.fast.model.DualEncoder` normalises and pairs them. Both can start from local
pretrained weights (a timm state dict, a ``save_pretrained`` directory); nothing is downloaded.

Why ``initializer_range=0.02`` matters: a text encoder whose word embeddings start at N(0, 1),
next to position embeddings of scale 0.02, ignores word order, so "a red circle left of a blue
square" and its colour-swapped twin get the same embedding, and training does not fix it.
``transformers`` initialises every embedding at std 0.02, so words and positions start at the
same scale (tests/test_fast_model.py checks both the std and the twins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
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

from fastslow_lib.data.tokenizer import BOS_ID, CLS_ID, EOS_ID, PAD_ID
from fastslow_lib.fast.config import FastConfig, as_fast_config
from fastslow_lib.fast.input_checks import check_image_shape, check_token_shapes

__all__ = [
    "TextTower",
    "VisionTower",
    "bert_config",
    "build_text_encoder",
    "load_backbone_weights",
    "modernbert_config",
    "text_encoder_config",
]


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
    from fastslow_lib.core.checkpoint import state_dict_problems

    problems = state_dict_problems(backbone.state_dict(), state)
    if problems:
        raise ValueError(
            f"pretrained backbone weights {str(path)!r} do not fit the backbone "
            f"({type(backbone).__name__}): " + "; ".join(problems)
            + ". Check FastConfig.vision_backbone and vision_kwargs."
        )
    backbone.load_state_dict(state, strict=True)


class VisionTower(nn.Module):
    """A timm CNN, globally average pooled, then a linear projection to ``embed_dim``.

    With ``vision_kwargs["global_pool"] = "flatten"`` the last feature map is flattened instead
    of averaged (:data:`~fastslow_lib.fast.config.VISION_POOLS`), so the vector keeps where each
    feature was; the projection then reads ``channels x cells`` features.

    Input: float images ``(B, 3, H, W)`` in ``[0, 1]`` with ``H = W = config.image_size``;
    they are normalised inside with the backbone's mean/std (ImageNet's unless timm says
    otherwise), kept as non-persistent buffers. Output: ``(B, embed_dim)``, not normalised.
    The forward pass checks shapes only; hand-made images should first go through
    :func:`fastslow_lib.fast.input_checks.check_images` (finite, in [0, 1]).

    ``pretrained_path`` optionally names a local state-dict file (``.safetensors`` or a torch
    file) for the backbone; there is no download path.
    """

    def __init__(
        self, config: FastConfig | dict[str, Any], pretrained_path: str | Path | None = None
    ) -> None:
        super().__init__()
        config = as_fast_config(config)
        self.image_size = config.image_size
        timm_kwargs = dict(config.vision_kwargs)
        self.flatten = timm_kwargs.pop("global_pool", "avg") == "flatten"
        try:
            self.backbone = timm.create_model(
                config.vision_backbone,
                pretrained=False,
                num_classes=0,
                global_pool="" if self.flatten else "avg",
                **timm_kwargs,
            )
        except TypeError as err:
            raise ValueError(
                f"timm model {config.vision_backbone!r} rejected vision_kwargs "
                f"{config.vision_kwargs}: {err}"
            ) from err
        # Width of the pooled features (timm's pre-logits size; above num_features for models
        # with a conv head, e.g. MobileNetV3).
        width = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        if self.flatten:  # channels x cells of the last map, read off one dry run (eval mode:
            self.backbone.eval()  # batch-norm statistics untouched)
            with torch.no_grad():
                size = (1, 3, config.image_size, config.image_size)
                width = self.backbone(torch.zeros(size)).flatten(1).shape[1]
            self.backbone.train()
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
        images = check_image_shape(images, self.image_size)  # shapes only: no device sync
        x = (images.to(self.mean.dtype) - self.mean) / self.std
        features = self.backbone(x)
        return self.proj(features.flatten(1) if self.flatten else features)


# --------------------------------------------------------------------------- text


def bert_config(config: FastConfig) -> BertConfig:
    """The ``transformers`` config of the from-scratch text encoder described by ``config``.

    ``initializer_range=0.02`` is what makes word and position embeddings start at the same
    small scale, so the encoder sees word order from the first step (module docstring).
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
    order (it sets colour-swapped twins far closer together than the mean does); and because
    it is the pooling that pretrained sentence encoders such as MiniLM (sentence-transformers)
    were trained with, so such a checkpoint drops in unchanged.

    Input: ``input_ids`` and ``attention_mask`` of shape ``(B, L)``, ``L <= max_len``, from
    ``fastslow_lib.data.tokenizer.encode``. Output: ``(B, embed_dim)``, not normalised. The
    forward pass checks shapes only; hand-made tokens should first go through
    :func:`fastslow_lib.fast.input_checks.check_tokens` (ids in the vocabulary, a right-padded
    mask).
    """

    def __init__(
        self, config: FastConfig | dict[str, Any], encoder: PreTrainedModel | None = None
    ) -> None:
        super().__init__()
        config = as_fast_config(config)
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
        config = as_fast_config(config)
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
        from transformers.utils import logging as hf_logging

        was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()   # a second's load: no bar left frozen in a notebook
        try:
            encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except OSError as err:
            raise FileNotFoundError(
                f"could not load a text encoder from {str(folder)!r}: {err}"
            ) from err
        finally:
            if was_on:
                hf_logging.enable_progress_bar()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused: we pool ourselves; keeps every parameter trained
        return cls(config, encoder=encoder)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids and mask -> ``(B, width)``: the encoder's masked mean, before the
        projection (for a pretrained MiniLM, its sentence embedding before normalisation)."""
        # Shapes only: the value checks (ids in the vocabulary, a right-padded 0/1 mask) read
        # the tensors back to the host, so they run at the edges (input_checks.check_tokens).
        input_ids, attention_mask = check_token_shapes(input_ids, attention_mask, self.max_len)
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids and mask -> ``(B, embed_dim)`` features."""
        return self.proj(self.pooled(input_ids, attention_mask))
