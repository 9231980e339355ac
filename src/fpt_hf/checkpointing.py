"""Selective activation checkpointing: keep the outputs of matmuls and attention kernels, recompute the
cheap element-wise ops (norms, softmax, activations, RoPE) in the backward pass.

Frozen linear layers need no saved input for their backward (only the weight), so what an FPT step stores
is mostly element-wise intermediates, several of them in fp32 (norm and softmax internals). Recomputing
those costs little time and frees a large share of activation memory; full checkpointing frees more but
recomputes every matmul too. Plugs into transformers' own mechanism:

    model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
"""

from __future__ import annotations

import functools

import torch
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

_aten = torch.ops.aten
_SAVED_OP_NAMES = (
    "mm", "addmm", "bmm", "baddbmm", "convolution",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
)
# the default overload of each op this torch build has
SAVED_OPS = frozenset(getattr(_aten, name).default for name in _SAVED_OP_NAMES if hasattr(_aten, name))


def save_matmuls_policy(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Keep matmul / attention-kernel outputs (expensive to recompute), recompute everything else."""
    return CheckpointPolicy.MUST_SAVE if op in SAVED_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def selective_checkpointing_kwargs() -> dict:
    """`activation_checkpointing_kwargs` for `PreTrainedModel.activation_checkpointing_enable`."""
    return {"use_reentrant": False, "context_fn": functools.partial(create_selective_checkpoint_contexts, save_matmuls_policy)}
