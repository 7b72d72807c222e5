"""Input checks shared by the Fast and Slow models: shape checks for every forward pass, value
checks for the edges where user input enters.

Taught in notebooks/01_fast.ipynb (the Slow model of notebooks/02_slow.ipynb uses them too).

The checks come in two kinds, kept apart on purpose:

* **Shape checks** (:func:`check_image_shape`, :func:`check_token_shapes`) look only at a
  tensor's type, dtype and shape. Those live on the host, so the checks cost nothing and the
  models run them in every forward pass.
* **Value checks** (:func:`check_images`, :func:`check_tokens`) read a tensor's values: no NaN,
  pixels in [0, 1], token ids inside the vocabulary, a right-padded 0/1 attention mask. On a
  GPU, reading a value makes the host wait until every queued kernel has run; once per training
  step that stalls the pipeline. They are therefore called where user-supplied tensors enter
  (:func:`fastslow_lib.fast.evaluate.embed_images` and ``embed_texts``), on the CPU batch before
  it moves to the device, never inside a forward pass or a loss. Call them yourself before
  handing hand-made tensors to a model.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "RANGE_TOLERANCE",
    "as_tuples",
    "check_image_shape",
    "check_images",
    "check_token_shapes",
    "check_tokens",
    "check_vocabulary",
]

#: Tolerance of the [0, 1] range check on images (resampling can overshoot a little).
RANGE_TOLERANCE = 1e-3


def as_tuples(value: Any) -> Any:
    """Turn lists into tuples, recursively (JSON gives lists back for the tuples we saved)."""
    if isinstance(value, list | tuple):
        return tuple(as_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: as_tuples(item) for key, item in value.items()}
    return value


# --------------------------------------------------------------------------- images


def check_image_shape(images: object, image_size: int) -> torch.Tensor:
    """``images`` itself if it is a float batch ``(B, 3, image_size, image_size)``, B > 0.

    Reads no values, so it is safe in a forward pass; :func:`check_images` adds the value checks.
    """
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
            f"images must be {image_size}x{image_size} (the model's image_size), "
            f"got {shape[2]}x{shape[3]}"
        )
    return images


def check_images(images: object, image_size: int) -> torch.Tensor:
    """``images`` itself if it is a valid image batch: the shape checks of
    :func:`check_image_shape`, then finite values in [0, 1].

    An edge check: it reads the values back to the host (a device sync on a GPU), so call it
    on user input, not inside a training step.
    """
    images = check_image_shape(images, image_size)
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or inf values")
    low, high = (float(v) for v in torch.aminmax(images.detach()))
    if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        raise ValueError(
            f"images must have values in [0, 1], got [{low:.3g}, {high:.3g}]; "
            "did you forget to divide uint8 pixels by 255?"
        )
    return images


# --------------------------------------------------------------------------- tokens


def check_token_shapes(
    input_ids: object, attention_mask: object, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` if both are integer tensors of one shape ``(B, L)``,
    ``B, L > 0`` and ``L <= max_len`` (when given).

    Reads no values, so it is safe in a forward pass; :func:`check_tokens` adds the value checks.
    """
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
    if max_len is not None and length > max_len:
        raise ValueError(
            f"token sequences are {length} long, more than the text tower's max_len={max_len} "
            "(FastConfig.max_len); encode with max_len <= that"
        )
    return input_ids, attention_mask


def check_tokens(
    input_ids: object, attention_mask: object, vocab_size: int, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` if they form a right-padded token batch as made by
    ``fastslow_lib.data.tokenizer.encode``: the shape checks of :func:`check_token_shapes`,
    then ids in ``[0, vocab_size)`` and a 0/1, right-padded mask with a real token in every row.

    An edge check: it reads the values back to the host (a device sync on a GPU), so call it
    on user input, not inside a training step.
    """
    input_ids, attention_mask = check_token_shapes(input_ids, attention_mask, max_len)
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"token ids must be in [0, {vocab_size}) (the text tower's vocab_size), got ids in "
            f"[{low}, {high}]; build FastConfig with vocab_size=len(tokenizer) of this tokenizer"
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


def check_vocabulary(model: torch.nn.Module, tokenizer: Any) -> None:
    """A clear error when ``tokenizer`` can make ids the model's vocabulary does not hold.

    Checked once where a model meets a tokenizer (training, scoring), so that the token ids of
    every batch after it are in range without reading them back from the device.
    """
    if tokenizer is None:
        raise TypeError("a tokenizer is needed to encode the captions")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and len(tokenizer) > vocab:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary "
                         f"holds {vocab}: use the tokenizer the model was built with")
