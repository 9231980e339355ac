"""The paper's LSTM baseline with the same inputs and outputs as `FPTModel`, so the same training code runs it."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from .configuration_fpt import check_io_spec, check_known_kwargs, head_kwargs
from .heads import OutputHead, SequenceModelOutput, check_finite_logits, checked_batch, classification_loss, pool


class LSTMConfig(PretrainedConfig):
    r"""A stack of `num_layers` LSTMs, each followed by LayerNorm (the paper's 3-layer layer-normalised LSTM).

    Takes the same input/output arguments as `FPTConfig` (`input_dim` or `vocab_size`, `num_labels`,
    `output_mode`, `num_output_tokens`, `predictions_per_token`).
    """

    model_type = "fpt-lstm"

    def __init__(
        self,
        input_dim: int | None = None,
        vocab_size: int | None = None,
        num_labels: int | None = None,
        hidden_size: int = 768,
        num_layers: int = 3,
        dropout: float = 0.0,
        output_mode: str = "last",
        num_output_tokens: int = 1,
        predictions_per_token: int = 1,
        max_length: int | None = None,
        initializer_range: float = 0.02,
        validate_inputs: bool = True,
        **kwargs,
    ):
        check_known_kwargs(type(self), kwargs)
        check_io_spec(input_dim, vocab_size, output_mode)
        for name, value in (("num_layers", num_layers), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LSTMConfig {name} must be a positive int, got {value!r}.")
        self.input_dim = input_dim
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.output_mode = output_mode
        self.num_output_tokens = num_output_tokens
        self.predictions_per_token = predictions_per_token
        self.max_length = max_length
        self.initializer_range = initializer_range
        self.validate_inputs = validate_inputs
        super().__init__(**head_kwargs(kwargs, num_labels, output_mode, num_output_tokens, predictions_per_token))


def real_tokens_first(inputs: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's real tokens moved, in order, before its padding. An LSTM reads every position, so padding before a
    real token would change its state; a transformer masks it, and FPT counts positions from the mask, so this gives the
    LSTM the same view of left-padded (or gapped) rows as of the row alone. Right-padded batches come back as they are."""
    mask = attention_mask.long()
    if not bool((mask[:, 1:] > mask[:, :-1]).any()):
        return inputs, attention_mask
    order = torch.argsort(1 - mask, dim=1, stable=True)
    index = order if inputs.dim() == 2 else order.unsqueeze(-1).expand(-1, -1, inputs.shape[-1])
    return inputs.gather(1, index), attention_mask.gather(1, order)


class LSTMBaseline(PreTrainedModel):
    """Input layer -> stacked layer-normalised LSTM -> the same output head as FPT. Everything trains."""

    config_class = LSTMConfig
    main_input_name = "inputs"
    accepts_loss_kwargs = False

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        if config.input_dim is None and config.vocab_size is None:
            raise ValueError("LSTMConfig needs input_dim (continuous tokens) or vocab_size (token ids).")
        h = config.hidden_size
        self.input_layer = nn.Embedding(config.vocab_size, h) if config.vocab_size else nn.Linear(config.input_dim, h)
        self.lstms = nn.ModuleList([nn.LSTM(h, h, batch_first=True) for _ in range(config.num_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(h) for _ in range(config.num_layers)])
        self.dropout = nn.Dropout(config.dropout)
        self.head = OutputHead(config, h)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=self.config.initializer_range)

    def forward(self, inputs, attention_mask=None, labels=None, output_hidden_states: bool = False) -> SequenceModelOutput:
        if self.config.validate_inputs:
            inputs, attention_mask, labels = checked_batch(self.config, inputs, attention_mask, labels, self.config.max_length)
        if attention_mask is not None:
            inputs, attention_mask = real_tokens_first(inputs, attention_mask)
        hidden = self.dropout(self.input_layer(inputs))
        for lstm, norm in zip(self.lstms, self.norms):
            hidden = norm(lstm(hidden)[0])
        logits = self.head(pool(self.config, hidden, attention_mask))
        if self.config.validate_inputs:
            check_finite_logits(logits, inputs, training=self.training)
        loss = classification_loss(logits, labels) if labels is not None else None
        return SequenceModelOutput(loss=loss, logits=logits, last_hidden_state=hidden if output_hidden_states else None)
