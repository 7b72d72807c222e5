"""The text side of the Slow captioner: attention, decoder layers, the caption decoder.

Taught in notebooks/02_slow.ipynb.

:class:`CaptionDecoder` stacks transformer decoder layers (:class:`DecoderLayer`: causal
self-attention, cross-attention to the visual tokens of the layer's pyramid level, MLP) over
token and position embeddings, with an output head tied to the token embedding.
``SlowConfig.layer_strides`` picks each layer's level, coarse to fine: ``(32, 16, 8)`` is
gradual upsampling, ``(32, 32, 32)`` no upsampling. :func:`token_logprobs` turns the decoder's
logits into a caption's log-likelihood, the Slow score.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fastslow_lib.data.tokenizer import PAD_ID
from fastslow_lib.slow.config import SlowConfig

__all__ = ["Attention", "CaptionDecoder", "DecoderLayer", "token_logprobs"]


class Attention(nn.Module):
    """Multi-head attention (queries from ``x``, keys/values from ``memory`` or ``x``).

    The same computation as ``torch.nn.MultiheadAttention`` (checked in notebook 02), written
    with ``F.scaled_dot_product_attention``.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, width) -> (B, heads, N, width / heads)``."""
        b, n, w = x.shape
        return x.view(b, n, self.heads, w // self.heads).transpose(1, 2)

    def keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``memory``, split into heads (cacheable per image)."""
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def weights(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, heads, L, N)`` of queries ``x`` over ``memory`` (no mask).

        What the heatmaps of notebook 02 draw: row ``i`` says where query ``i`` looks.
        """
        q = self.split(self.q(x))
        k, _ = self.keys_values(memory)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor | None = None, *, causal: bool = False,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """``x`` ``(B, L, width)`` attends to ``memory`` (or itself); ``kv`` reuses cached K/V.

        ``group > 1`` (cross-attention only): rows ``g * group ... (g + 1) * group - 1`` of ``x``
        all attend to entry ``g`` of ``memory``/``kv``, e.g. many captions to one cached image.
        Their tokens are then one long query sequence per image: the image's keys and values
        are used as they are, never copied once per caption.
        """
        b, n, w = x.shape
        if group > 1:
            if causal or b % group:
                raise ValueError(f"group={group} needs cross-attention and a batch divisible "
                                 f"by it, got causal={causal}, batch {b}")
            x = x.reshape(b // group, group * n, w)
        q = self.split(self.q(x))
        k, v = kv if kv is not None else self.keys_values(x if memory is None else memory)
        out = F.scaled_dot_product_attention(
            q, k, v, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(out.transpose(1, 2).reshape(b, n, w))


class DecoderLayer(nn.Module):
    """Pre-norm decoder layer: causal self-attention, cross-attention to one level, MLP."""

    def __init__(self, config: SlowConfig, stride: int) -> None:
        super().__init__()
        w = config.width
        self.stride = stride
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(w), nn.LayerNorm(w), nn.LayerNorm(w)
        self.self_attn = Attention(w, config.heads, config.dropout)
        self.cross_attn = Attention(w, config.heads, config.dropout)
        self.mlp = nn.Sequential(
            nn.Linear(w, config.mlp_ratio * w), nn.GELU(), nn.Linear(config.mlp_ratio * w, w)
        )

    def forward(
        self, x: torch.Tensor, visual: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """``x`` ``(B, L, width)``; ``visual`` ``(B / group, N, width)`` or its cached ``kv``."""
        x = x + self.self_attn(self.norm1(x), causal=True)
        x = x + self.cross_attn(self.norm2(x), visual, kv=kv, group=group)
        return x + self.mlp(self.norm3(x))

    def cross_attention_weights(self, x: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """This layer's cross-attention weights ``(B, heads, L, N)`` for its input ``x``."""
        x = x + self.self_attn(self.norm1(x), causal=True)
        return self.cross_attn.weights(self.norm2(x), visual)


class CaptionDecoder(nn.Module):
    """Token and position embeddings, decoder layers (coarse to fine), tied output head."""

    def __init__(self, config: SlowConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.width, padding_idx=PAD_ID)
        self.pos = nn.Parameter(torch.zeros(config.max_len, config.width))
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(DecoderLayer(config, s) for s in config.layer_strides)
        self.norm = nn.LayerNorm(config.width)

    def forward(
        self, ids: torch.Tensor, visual: dict[int, torch.Tensor] | None = None,
        kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """Next-token logits ``(B, L, vocab)`` for input ids ``(B, L)``.

        ``group``: how many consecutive rows of ``ids`` share one image (see ``Attention``).
        """
        return self.hidden(ids, visual, kv, group) @ self.embed.weight.T

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings ``(B, L, width)``; a clear error past ``max_len``."""
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
        if ids.shape[1] > self.pos.shape[0]:
            raise ValueError(
                f"sequence of {ids.shape[1]} tokens is longer than the decoder's max_len "
                f"({self.pos.shape[0]}); encode captions with max_len={self.pos.shape[0]}"
            )
        return self.embed(ids) + self.pos[: ids.shape[1]]

    def hidden(
        self, ids: torch.Tensor, visual: dict[int, torch.Tensor] | None = None,
        kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, group: int = 1,
    ) -> torch.Tensor:
        """Final normalised hidden states ``(B, L, width)`` (before the output head)."""
        if visual is None and kv is None:
            raise ValueError("give the visual tokens or their cached keys/values")
        x = self.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            if kv is not None:
                x = layer(x, kv=kv[i], group=group)
            else:
                x = layer(x, visual[layer.stride], group=group)
        return self.norm(x)

    def cross_attention(
        self, ids: torch.Tensor, visual: dict[int, torch.Tensor]
    ) -> list[torch.Tensor]:
        """Every layer's cross-attention weights ``(B, heads, L, N_level)``, first layer first."""
        x = self.embed_tokens(ids)
        out = []
        for layer in self.layers:
            out.append(layer.cross_attention_weights(x, visual[layer.stride]))
            x = layer(x, visual[layer.stride])
        return out

    def cache(self, visual: dict[int, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's cross-attention keys/values for these images (reused for all texts)."""
        return [layer.cross_attn.keys_values(visual[layer.stride]) for layer in self.layers]


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over each sequence of ``log p(token_{i+1} | tokens_<=i)`` on its real tokens: ``(B,)``.

    ``ids``/``mask`` are the full sequences ``[BOS] w1 ... wn [EOS] [PAD]...``; ``logits`` were
    computed on ``ids[:, :-1]``; the targets are ``ids[:, 1:]`` where ``mask[:, 1:]`` is 1.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    target = ids[:, 1:]
    picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return (picked * mask[:, 1:].to(picked.dtype)).sum(dim=1)
