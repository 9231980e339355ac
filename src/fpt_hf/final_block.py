"""Run the backbone's final block only at the positions the head reads.

A classification head reads one position per row (`output_mode="last"` or `"first"`) or a few (`"tokens"`). The final
block's output everywhere else is computed and thrown away: its feed-forward and its attention queries at the other
positions are wasted work (at 1024 tokens, ~1/N of a step for N blocks). `final_block_at` replaces the final block's
`forward`, for one forward pass, with one that computes keys and values at every position (the read queries attend to
them) and the queries, attention output and feed-forward only at the read positions, with the block's own modules. Same numbers up
to float rounding, dropout included (the same layers, drawn over fewer positions); tested against the block's own
forward. Other block types run in full (`supports_final_block_at` says which).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import find_blocks


def visible_keys(positions: torch.Tensor, key_mask: torch.Tensor | None, seq_len: int) -> torch.Tensor:
    """`(batch, 1, k, seq_len)` bool: what each read position's query may attend to (causal, real tokens only)."""
    keys = torch.arange(seq_len, device=positions.device)
    visible = keys <= positions.unsqueeze(-1)
    if key_mask is not None:
        visible = visible & key_mask.bool().unsqueeze(1)
    return visible.unsqueeze(1)


def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    return x.view(*x.shape[:2], -1, head_dim).transpose(1, 2)


def _llama_block(block, hidden, positions, key_mask, position_embeddings=None, **_):
    attn = block.self_attn
    rotate = sys.modules[type(attn).__module__].apply_rotary_pos_emb  # the model family's own RoPE
    batch, seq_len, _ = hidden.shape
    rows = torch.arange(batch, device=hidden.device).unsqueeze(-1)
    x = block.input_layernorm(hidden)
    query = _heads(attn.q_proj(x[rows, positions]), attn.head_dim)
    key, value = _heads(attn.k_proj(x), attn.head_dim), _heads(attn.v_proj(x), attn.head_dim)
    cos, sin = (t.expand(batch, -1, -1) for t in position_embeddings)
    query, _ = rotate(query, query, cos[rows, positions], sin[rows, positions])
    _, key = rotate(key, key, cos, sin)
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=visible_keys(positions, key_mask, seq_len),
        dropout_p=attn.attention_dropout if block.training else 0.0, scale=attn.scaling,
        enable_gqa=query.shape[1] != key.shape[1],
    )
    read = hidden[rows, positions] + attn.o_proj(out.transpose(1, 2).flatten(2))
    return read + block.mlp(block.post_attention_layernorm(read))


def _gpt2_block(block, hidden, positions, key_mask, **_):
    attn = block.attn
    batch, seq_len, width = hidden.shape
    rows = torch.arange(batch, device=hidden.device).unsqueeze(-1)
    x = block.ln_1(hidden)
    weight, bias = attn.c_attn.weight, attn.c_attn.bias  # Conv1D: x @ weight + bias, weight (width, 3 * width)
    query = _heads(torch.matmul(x[rows, positions], weight[:, :width]) + bias[:width], attn.head_dim)
    key, value = (_heads(t, attn.head_dim) for t in (torch.matmul(x, weight[:, width:]) + bias[width:]).split(width, dim=-1))
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=visible_keys(positions, key_mask, seq_len),
        dropout_p=attn.attn_dropout.p if block.training else 0.0, scale=attn.scaling,
    )
    read = hidden[rows, positions] + attn.resid_dropout(attn.c_proj(out.transpose(1, 2).flatten(2)))
    return read + block.mlp(block.ln_2(read))


def _block_function(block: nn.Module):
    if "forward" in vars(block):  # already wrapped per instance (e.g. an accelerate device hook): leave it alone
        return None
    name = type(block).__name__
    if name == "LlamaDecoderLayer":
        return _llama_block
    if name == "GPT2Block" and not (
        block.attn.is_cross_attention or block.attn.scale_attn_by_inverse_layer_idx or block.attn.reorder_and_upcast_attn
    ):
        return _gpt2_block
    return None


def supports_final_block_at(backbone: nn.Module) -> bool:
    """Whether `final_block_at` knows the backbone's block type (Llama-style blocks, e.g. SmolLM2, and GPT-2)."""
    _, blocks = find_blocks(backbone)
    return len(blocks) > 0 and _block_function(blocks[-1]) is not None


@contextmanager
def final_block_at(backbone: nn.Module, positions: torch.Tensor, key_mask: torch.Tensor | None = None):
    """Within the block, `backbone(...)` computes its final block only at `positions` (`(batch, k)` indices into the
    sequence): its `last_hidden_state` is right there and zeros (then the final norm) elsewhere, so read it at
    `positions` only. `key_mask`: `(batch, seq_len)`, 1 for real tokens (default: all real).

    Only the block's `forward` is replaced, for the duration: the block is still called through its own `__call__`,
    so its hooks (FSDP's gather, activation checkpointing) run as usual."""
    _, blocks = find_blocks(backbone)
    final = blocks[-1]
    function = _block_function(final)
    if function is None:
        raise ValueError(f"final_block_at does not know {type(final).__name__} blocks (or this one's forward is already "
                         "wrapped); check supports_final_block_at(backbone) first.")
    if positions.dim() != 2 or (key_mask is not None and key_mask.shape[0] != positions.shape[0]):
        raise ValueError(f"positions must be (batch, k) indices matching the key mask's batch, got {tuple(positions.shape)}.")
    rows = torch.arange(positions.shape[0], device=positions.device).unsqueeze(-1)

    def forward(hidden_states, *args, **kwargs):
        read = function(final, hidden_states, positions, key_mask, **kwargs)
        out = read.new_zeros(hidden_states.shape)  # the shape the model's own forward expects after its blocks
        out[rows, positions] = read
        return out

    final.forward = forward
    try:
        yield
    finally:
        del final.forward
