"""What FPT and its baselines share around the sequence model: input checks, pooling, the head, the loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput


@dataclass
class SequenceModelOutput(ModelOutput):
    """Output of `FPTModel` and `LSTMBaseline`.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): cross-entropy, when `labels` are given.
        logits (`torch.FloatTensor`): `(batch, num_labels)` for pooled outputs, or
            `(batch, num_output_tokens * predictions_per_token, num_labels)` for `output_mode="tokens"`.
        last_hidden_state (`torch.FloatTensor` of shape `(batch, seq_len, hidden)`, *optional*): the
            sequence model's final features, when `output_hidden_states=True`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


def checked_batch(config, inputs, attention_mask, labels, max_length: int | None):
    """`(inputs, attention_mask, labels)` checked and in the dtypes the model computes with; raise `ValueError` saying what
    was expected and what came on anything that would fail deep inside torch or, worse, give a quiet wrong answer.
    Only lossless casts: token ids, masks and labels of any integer width -> int64."""
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}.")
    if inputs.numel() == 0:
        raise ValueError(f"inputs is empty (shape {tuple(inputs.shape)}): a batch needs at least one row of at least one token.")
    if config.vocab_size is not None:
        if inputs.dim() != 2:
            raise ValueError(f"Token-id inputs must have shape (batch, seq_len), got {tuple(inputs.shape)}.")
        if inputs.is_floating_point() or inputs.is_complex() or inputs.dtype == torch.bool:
            raise ValueError(
                f"This model takes integer token ids (vocab_size={config.vocab_size}), got a {inputs.dtype} tensor. "
                "Build the model with input_dim=... for continuous features."
            )
        if int(inputs.min()) < 0 or int(inputs.max()) >= config.vocab_size:
            raise ValueError(
                f"Token ids must be in [0, {config.vocab_size}), got values in [{int(inputs.min())}, {int(inputs.max())}]."
            )
        inputs = inputs.long()
    else:
        if inputs.dim() != 3 or inputs.shape[-1] != config.input_dim:
            raise ValueError(
                f"Continuous inputs must have shape (batch, seq_len, {config.input_dim}), got {tuple(inputs.shape)}."
            )
        if inputs.dtype != torch.float32:
            raise ValueError(f"Continuous inputs must be float32 (the input layer's dtype), got {inputs.dtype}: pass inputs.float().")
        if not bool(torch.isfinite(inputs).all()):
            raise ValueError("inputs contain NaN or inf values.")
    batch, seq_len = inputs.shape[:2]
    if max_length is not None and seq_len > max_length:
        sinks = getattr(config, "sink_tokens", 0)
        room = f" (its {max_length + sinks} positions less {sinks} sink token{'s' if sinks > 1 else ''})" if sinks else ""
        raise ValueError(f"Sequence length {seq_len} exceeds the backbone's {max_length} positions{room}.")
    if attention_mask is not None:
        attention_mask = _checked_mask(config, attention_mask, batch, seq_len)
    elif config.output_mode == "tokens" and seq_len < config.num_output_tokens:
        raise ValueError(f"output_mode='tokens' reads the last {config.num_output_tokens} tokens, got seq_len={seq_len}.")
    if labels is not None:
        labels = checked_labels(config, labels, batch)
    return inputs, attention_mask, labels


def _checked_mask(config, attention_mask, batch: int, seq_len: int) -> torch.Tensor:
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.is_complex():
        raise ValueError(f"attention_mask must be a tensor of 0s and 1s, got {type(attention_mask).__name__}.")
    if tuple(attention_mask.shape) != (batch, seq_len):
        raise ValueError(f"attention_mask must have shape (batch, seq_len) = {(batch, seq_len)}, got {tuple(attention_mask.shape)}.")
    if bool(((attention_mask != 0) & (attention_mask != 1)).any()):  # positions are counted from the mask: a 2 would shift them
        raise ValueError(f"attention_mask must hold only 0 (padding) and 1 (real token), got values {sorted(attention_mask.unique().tolist())}.")
    mask = attention_mask.long()
    real = mask.sum(-1)
    if bool((real == 0).any()):
        raise ValueError("attention_mask has a row with no real tokens.")
    if config.output_mode == "tokens":  # the last k tokens are read by position: right padding only, k real tokens per row
        if bool((mask[:, 1:] > mask[:, :-1]).any()):
            raise ValueError("output_mode='tokens' reads each row's last real tokens and needs right padding (1s then 0s); "
                             "this attention_mask has padding before real tokens.")
        if int(real.min()) < config.num_output_tokens:
            raise ValueError(f"output_mode='tokens' reads the last {config.num_output_tokens} tokens of each row; a row has only "
                             f"{int(real.min())} real tokens.")
    return mask


def checked_labels(config, labels, batch: int) -> torch.Tensor:
    expected = (batch,) if config.output_mode != "tokens" else (batch, config.num_output_tokens * config.predictions_per_token)
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        kind = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an integer tensor of class ids, got {kind}.")
    if tuple(labels.shape) != expected:
        raise ValueError(f"labels must have shape {expected}, got {tuple(labels.shape)}.")
    labels = labels.long()
    valid = labels[labels != -100]
    if valid.numel() == 0:
        raise ValueError("Every label is -100 (ignored): the loss would be NaN. Give at least one real class id.")
    if int(valid.min()) < 0 or int(valid.max()) >= config.num_labels:
        raise ValueError(
            f"labels must be in [0, {config.num_labels}) (or -100 to ignore), got values in [{int(valid.min())}, {int(valid.max())}]."
        )
    return labels


class NonFiniteLogitsError(ValueError, FloatingPointError):
    """NaN/inf logits from finite inputs: a `ValueError` (the inputs may overflow) and a `FloatingPointError` (while
    training, the weights may have diverged), so callers that handle either see it."""


def check_finite_logits(logits: torch.Tensor, inputs: torch.Tensor | None, training: bool = False) -> None:
    """Finite inputs can still overflow inside the network (e.g. features of 1e30), and a diverging training run turns
    the weights non-finite: say so instead of returning NaN."""
    if not bool(torch.isfinite(logits).all()):
        scale = f" (largest |input| {inputs.abs().max().item():.3g})" if inputs is not None and inputs.is_floating_point() else ""
        cause = ("Training diverged or the values overflow inside the network: lower --learning_rate, or scale the inputs"
                 if training else "The values overflow inside the network: scale the inputs")
        raise NonFiniteLogitsError(f"The model produced NaN/inf logits from finite inputs{scale}. {cause} "
                                   "(e.g. standardise features) or check the cached features.")


def read_positions(config, attention_mask: torch.Tensor | None, batch: int, seq_len: int, device) -> torch.Tensor | None:
    """The `(batch, k)` positions the head reads (k = 1, or `num_output_tokens` in `"tokens"` mode); None for `"mean"`."""
    if config.output_mode == "mean":
        return None
    if config.output_mode in ("last", "first") and attention_mask is None:
        return torch.full((batch, 1), seq_len - 1 if config.output_mode == "last" else 0, device=device)
    if config.output_mode == "last":  # the last real token, wherever the padding is
        positions = torch.arange(seq_len, device=device).expand(batch, -1)
        return torch.where(attention_mask.bool(), positions, -1).max(-1, keepdim=True).values
    if config.output_mode == "first":
        return attention_mask.long().argmax(-1, keepdim=True)
    # "tokens": the last k real tokens (right padding assumed)
    lengths = torch.full((batch,), seq_len, device=device) if attention_mask is None else attention_mask.long().sum(-1)
    return lengths.unsqueeze(-1) - config.num_output_tokens + torch.arange(config.num_output_tokens, device=device)


def pool(config, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Select the features the head reads: `(B, H)` for pooled modes, `(B, k, H)` for `"tokens"`."""
    batch, seq_len, _ = hidden.shape
    positions = read_positions(config, attention_mask, batch, seq_len, hidden.device)
    if positions is None:  # "mean"
        if attention_mask is None:
            return hidden.mean(1)
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(1) / attention_mask.sum(-1, keepdim=True).to(hidden.dtype)
    return read_features(config, hidden[torch.arange(batch, device=hidden.device).unsqueeze(-1), positions])


def read_features(config, features: torch.Tensor) -> torch.Tensor:
    """`(B, k, H)` hidden states at the read positions -> the head's input (`(B, H)` for pooled modes)."""
    return features if config.output_mode == "tokens" else features[:, 0]


class OutputHead(nn.Module):
    """Linear read-out: `num_labels` (times `predictions_per_token` in tokens mode) outputs."""

    def __init__(self, config, hidden_size: int):
        super().__init__()
        per_token = config.predictions_per_token if config.output_mode == "tokens" else 1
        self.config = config
        self.proj = nn.Linear(hidden_size, config.num_labels * per_token)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.proj(features)
        if self.config.output_mode == "tokens":
            batch = logits.shape[0]
            logits = logits.reshape(batch, -1, self.config.num_labels)
        return logits


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
