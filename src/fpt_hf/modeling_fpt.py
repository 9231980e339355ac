"""FPTModel: new input layer -> frozen pretrained transformer blocks -> new output layer."""

from __future__ import annotations

import inspect
import re

import torch
from torch import nn
from transformers import AutoConfig, PreTrainedModel

from .backbones import (
    FINGERPRINT_VERSION,
    classify_parameters,
    fingerprint,
    load_backbone,
    load_backbone_config,
    max_positions,
)
from .checkpoint_files import check_same_architecture, is_fpt_checkpoint, load_safetensors
from .configuration_fpt import FPTConfig
from .final_block import final_block_at, supports_final_block_at
from .heads import (
    OutputHead,
    SequenceModelOutput,
    check_finite_logits,
    checked_batch,
    checked_labels,
    classification_loss,
    pool,
    read_features,
    read_positions,
)

PAPER_ORTHOGONAL_GAIN = 1.41  # the original code's `orth_gain` for the input layer

# from_pretrained keyword arguments that locate files (forwarded to the Hub / cache).
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")


class FPTPreTrainedModel(PreTrainedModel):
    config_class = FPTConfig
    base_model_prefix = "fpt"
    main_input_name = "inputs"
    supports_gradient_checkpointing = True
    # forward takes no loss kwargs: Trainer must scale the loss for gradient accumulation / DDP itself.
    accepts_loss_kwargs = False


class FPTModel(FPTPreTrainedModel):
    r"""A Frozen Pretrained Transformer (Lu et al., 2021) around any HF transformer backbone.

    `FPTModel.from_pretrained("gpt2", input_dim=16, num_labels=10)` wraps a pretrained LM;
    `FPTModel.from_pretrained("my-fpt-checkpoint")` loads trained heads and re-attaches the backbone
    named in their config. Only the groups of `config.trainable_groups` train and are saved.
    """

    def __init__(self, config: FPTConfig, backbone: PreTrainedModel | None = None):
        super().__init__(config)
        if backbone is None:
            backbone = load_backbone(
                config.backbone,
                config=config.backbone_config,
                random_init_seed=config.random_backbone_seed if config.random_backbone else None,
                num_layers=config.num_backbone_layers,
                dtype=_storage_dtype(config),
            )
        if config.backbone_attn_implementation:
            backbone.set_attn_implementation(config.backbone_attn_implementation)
        hidden = backbone.config.hidden_size
        if config.is_discrete:
            self.input_layer = nn.Embedding(config.vocab_size, hidden)
        elif config.input_dim is not None:
            self.input_layer = nn.Linear(config.input_dim, hidden)
        else:
            raise ValueError("FPTConfig needs input_dim (continuous tokens) or vocab_size (token ids).")
        self.position_table = nn.Embedding(config.learned_positions, hidden) if config.learned_positions else None
        self.sink_embeddings = nn.Embedding(config.sink_tokens, hidden) if config.sink_tokens else None
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.head = OutputHead(config, hidden)
        # Whether something non-zero is added to every projected token before the first norm (see _init_weights).
        self._input_offset = config.learned_positions is not None or "positions" in classify_parameters(backbone).values()
        self.post_init()  # initialises the new layers only: the backbone is attached afterwards
        self.backbone = backbone
        config.backbone_config = backbone.config
        self._backbone_takes_position_ids = "position_ids" in inspect.signature(backbone.forward).parameters
        self._final_block_at = supports_final_block_at(backbone)
        self.apply_policy()
        if not config.keep_token_embeddings:
            self.release_token_embeddings()

    # ------------------------------------------------------------------ weights and freezing
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        paper = self.config.input_init == "paper"
        if module is self.input_layer and isinstance(module, nn.Linear):
            nn.init.orthogonal_(module.weight, gain=PAPER_ORTHOGONAL_GAIN if paper else 1.0)
            if paper and self._input_offset:
                nn.init.zeros_(module.bias)  # the original code's zero bias: positions keep a 0 token off the zero vector
            else:
                # A non-zero bias: an all-zero token (a 0 bit) would otherwise enter the backbone as the zero
                # vector, and RMSNorm's gradient at 0 (1/sqrt(eps) per layer) overflows through deep stacks.
                nn.init.normal_(module.bias, std=std)
        elif module is self.input_layer and paper:
            nn.init.normal_(module.weight, std=1.0)  # nn.Embedding's own default, which the original code kept
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            nn.init.zeros_(module.bias)

    def parameter_groups(self) -> dict[str, str]:
        """Every parameter name -> its group (`input`, `output`, `positions`, `norms`, `attention`, ...)."""
        groups = {name: "input" for name, _ in self.named_parameters() if name.startswith(("input_layer.", "position_table.", "sink_embeddings."))}
        groups.update({name: "output" for name, _ in self.head.named_parameters(prefix="head")})
        groups.update({f"backbone.{n}": g for n, g in classify_parameters(self.backbone).items()})
        return groups

    def apply_policy(self) -> None:
        """Set `requires_grad` from `config.trainable_groups` and make checkpoints hold only trainable tensors."""
        groups = self.parameter_groups()
        trainable = set(self.config.trainable_groups)
        for name, param in self.named_parameters():
            param.requires_grad_(groups[name] in trainable)
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()  # trainable tensors keep fp32 master weights
        # the fingerprint covers the frozen weights the heads depend on (not the unused token table)
        frozen = [(n, p) for n, p in self.backbone.named_parameters() if not p.requires_grad and groups[f"backbone.{n}"] != "token_embeddings"]
        self._frozen_names = [n for n, _ in frozen]
        self.config.backbone_fingerprint = fingerprint(frozen)
        dtype = self.compute_dtype
        if dtype is not None:  # frozen weights never update: keep them in the compute dtype only
            for name, param in frozen:
                if groups[f"backbone.{name}"] != "norms":  # autocast runs norms in fp32, with fp32 weights
                    param.data = param.data.to(dtype)
                elif param.dtype != torch.float32:
                    param.data = param.data.float()
        # saved: everything trained, plus FPT's own layers even when frozen (output_only's random input
        # layer cannot be rebuilt from the backbone reference)
        saved = {n for n, p in self.named_parameters() if p.requires_grad or not n.startswith("backbone.")}
        ignored = {key for key in self.state_dict() if key not in saved}
        self._keys_to_ignore_on_save = ignored
        self._keys_to_ignore_on_load_missing = {re.escape(key) + "$" for key in ignored}

    def frozen_fingerprint(self, legacy: bool = False) -> str:
        """The fingerprint of the frozen backbone weights the heads depend on (see `backbones.fingerprint`)."""
        params = dict(self.backbone.named_parameters())
        return fingerprint([(n, params[n]) for n in self._frozen_names], legacy=legacy)

    def release_token_embeddings(self) -> None:
        """Free the LM's token table: FPT feeds `inputs_embeds`, so it is never read (GPT-2: 38.6M parameters)."""
        table = self.backbone.get_input_embeddings()
        table.weight = nn.Parameter(table.weight.new_empty(0, table.weight.shape[1]), requires_grad=False)

    def heads_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint holds: everything trainable plus FPT's own (possibly frozen) layers."""
        return {k: v for k, v in self.state_dict().items() if k not in self._keys_to_ignore_on_save}

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, sum(p.numel() for p in self.parameters())

    def print_trainable_parameters(self) -> None:
        """Print trainable vs all parameters, like peft's `PeftModel.print_trainable_parameters`."""
        trainable, total = self.get_nb_trainable_parameters()
        print(f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}")

    @property
    def compute_dtype(self) -> torch.dtype | None:
        name = self.config.compute_dtype
        return None if name in (None, "float32") else getattr(torch, name)

    @property
    def max_length(self) -> int | None:
        """The longest input: the backbone's (and position table's) positions, less the sink tokens."""
        limits = [max_positions(self.backbone.config)]
        if self.position_table is not None:
            limits.append(self.position_table.num_embeddings)
        limits = [x for x in limits if x is not None]
        return min(limits) - self.config.sink_tokens if limits else None

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        inputs: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        features: torch.Tensor | None = None,
    ) -> SequenceModelOutput:
        r"""
        Args:
            inputs: `(batch, seq_len, input_dim)` floats, or `(batch, seq_len)` token ids for `vocab_size` models.
            attention_mask: `(batch, seq_len)`, 1 for real tokens and 0 for padding.
            labels: `(batch,)` class ids, or `(batch, num_output_tokens * predictions_per_token)` in tokens mode.
            features: instead of `inputs`, the head's inputs cached by `fpt_hf.reservoir.extract_features`
                (`policy="output_only"` only: nothing before the head trains, so they never change).
        """
        if features is not None:
            return self._forward_cached(features, inputs, labels)
        if inputs is None:
            raise ValueError("FPTModel needs `inputs` (or cached `features` for output_only models).")
        if self.config.validate_inputs:
            inputs, attention_mask, labels = checked_batch(self.config, inputs, attention_mask, labels, self.max_length)
        if output_hidden_states:
            hidden = self.backbone_outputs(inputs, attention_mask).last_hidden_state
            hidden = hidden[:, self.config.sink_tokens:]  # the head (and the caller) see the input tokens only
            features = pool(self.config, hidden.float(), attention_mask)
        else:
            features, hidden = self.head_features(inputs, attention_mask), None
        logits = self.head(features)
        if self.config.validate_inputs:
            check_finite_logits(logits, inputs, training=self.training)
        loss = classification_loss(logits, labels) if labels is not None else None
        return SequenceModelOutput(loss=loss, logits=logits, last_hidden_state=hidden if output_hidden_states else None)

    def head_features(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """What the head reads (fp32): `(batch, hidden)`, or `(batch, k, hidden)` in `"tokens"` mode. With
        `config.prune_final_block`, the final block runs only at the read positions where it can (`fpt_hf.final_block`)."""
        positions = read_positions(self.config, attention_mask, inputs.shape[0], inputs.shape[1], inputs.device)
        sinks = self.config.sink_tokens
        if positions is None or not (self.config.prune_final_block and self._final_block_at):
            hidden = self.backbone_outputs(inputs, attention_mask).last_hidden_state[:, sinks:]
            return pool(self.config, hidden.float(), attention_mask)
        key_mask = attention_mask
        if key_mask is not None and sinks:
            key_mask = torch.cat([key_mask.new_ones(key_mask.shape[0], sinks), key_mask], dim=1)
        positions = positions + sinks
        with final_block_at(self.backbone, positions, key_mask):
            hidden = self.backbone_outputs(inputs, attention_mask).last_hidden_state  # meaningful at `positions` only
        rows = torch.arange(hidden.shape[0], device=hidden.device).unsqueeze(-1)
        return read_features(self.config, hidden[rows, positions].float())

    def backbone_outputs(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None, **backbone_kwargs):
        """The backbone's output for `inputs` (in the compute dtype), sink positions included: what the head's
        features come from. `backbone_kwargs` go to the backbone, e.g. `output_attentions=True` to inspect it."""
        backbone_inputs = self.backbone_inputs(inputs, attention_mask)  # fp32 input layer, outside autocast
        dtype = self.compute_dtype
        with torch.autocast(device_type=inputs.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return self.backbone(**backbone_inputs, **backbone_kwargs)

    def backbone_inputs(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The backbone's keyword arguments for `inputs`: `inputs_embeds` (sink tokens first, then the projected
        tokens plus any learned positions), and `attention_mask` / `position_ids` when a mask is given."""
        embeds = self.input_layer(inputs)
        sinks = self.config.sink_tokens
        if sinks:
            embeds = torch.cat([self.sink_embeddings.weight.expand(embeds.shape[0], -1, -1), embeds], dim=1)
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], sinks), attention_mask], dim=1)
        kwargs = {}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
            if self._backbone_takes_position_ids:  # positions count real tokens only, so left padding works too
                kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if self.position_table is not None:
            positions = kwargs.get("position_ids", torch.arange(embeds.shape[1], device=inputs.device))
            embeds = embeds + self.position_table(positions)
        embeds = self.input_dropout(embeds)
        if self.compute_dtype is not None:
            embeds = embeds.to(self.compute_dtype)  # the residual stream in the compute dtype too: ~10% less activation memory
        return {"inputs_embeds": embeds, **kwargs}

    def check_features_cacheable(self) -> None:
        """Raise unless only the head trains: then the features it reads never change and can be cached."""
        if set(self.config.trainable_groups) != {"output"}:
            raise ValueError(
                "Cached features are exact only for output_only models, i.e. only when nothing before the head trains; "
                f"this model trains {sorted(self.config.trainable_groups)}."
            )

    def _forward_cached(self, features, inputs, labels) -> SequenceModelOutput:
        if inputs is not None:
            raise ValueError("Pass either `inputs` or cached `features`, not both.")
        self.check_features_cacheable()
        expected = (self.backbone.config.hidden_size,) if self.config.output_mode != "tokens" else (self.config.num_output_tokens, self.backbone.config.hidden_size)
        if tuple(features.shape[1:]) != expected:
            raise ValueError(f"Cached features must have shape (batch, {', '.join(map(str, expected))}), got {tuple(features.shape)}.")
        if not bool(torch.isfinite(features).all()):
            raise ValueError("Cached features contain NaN or inf values: re-extract them (fpt_hf.reservoir.extract_features).")
        if labels is not None and self.config.validate_inputs:
            labels = checked_labels(self.config, labels, features.shape[0])
        logits = self.head(features.float())
        loss = classification_loss(logits, labels) if labels is not None else None
        return SequenceModelOutput(loss=loss, logits=logits)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, backbone=None, **kwargs):
        """Wrap a backbone (`"gpt2"`, a folder, `"smollm2-135m"`) with FPT heads, or load a saved FPT model.

        For a backbone, keyword arguments go to `FPTConfig` (`input_dim=`, `vocab_size=`, `num_labels=`,
        `policy=`, ...). For an FPT checkpoint, `backbone=` re-attaches the heads to another copy of
        the backbone (e.g. a local folder); it must match the stored fingerprint.
        """
        if model_args:
            raise TypeError(f"FPTModel.from_pretrained takes keyword arguments only, got positional {model_args}.")
        reference = str(pretrained_model_name_or_path)
        hub_kwargs = {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}
        for ignored in ("trust_remote_code", "_from_auto", "adapter_kwargs", "_commit_hash", "return_unused_kwargs"):
            kwargs.pop(ignored, None)
        if config is None and is_fpt_checkpoint(reference, hub_kwargs):
            config = FPTConfig.from_pretrained(reference, **hub_kwargs)
        if isinstance(config, FPTConfig):
            if kwargs:
                raise TypeError(f"Unexpected arguments when loading an FPT checkpoint: {sorted(kwargs)}.")
            return cls._from_checkpoint(reference, config, backbone, hub_kwargs)
        if backbone is not None:
            raise TypeError("backbone= is for loading FPT checkpoints; to wrap a backbone pass it as the first argument.")
        backbone_config = load_backbone_config(reference, **hub_kwargs)
        if getattr(backbone_config, "model_type", None) == "fpt-lstm":
            raise ValueError(f"{reference!r} holds an LSTM baseline checkpoint, not a backbone or an FPT checkpoint: load it with "
                             "LSTMBaseline.from_pretrained (or AutoModel.from_pretrained after `import fpt_hf`).")
        fpt_config = FPTConfig(backbone=reference, backbone_config=backbone_config, **kwargs)
        model_backbone = None
        if not fpt_config.random_backbone:
            model_backbone = load_backbone(
                reference, num_layers=fpt_config.num_backbone_layers, dtype=_storage_dtype(fpt_config), **hub_kwargs
            )
        return cls(fpt_config, backbone=model_backbone)

    @classmethod
    def _from_checkpoint(cls, reference: str, config: FPTConfig, backbone: str | None, hub_kwargs: dict) -> FPTModel:
        stored_fingerprint = config.backbone_fingerprint
        stored_backbone = config.backbone_config
        if backbone is not None:
            config.backbone = backbone
        if not stored_fingerprint:
            raise ValueError(f"Checkpoint {reference!r} has no backbone_fingerprint in its config.json: fpt-hf cannot verify that "
                             "the backbone it re-attaches is the one the heads were trained on. Save it again with fpt-hf.")
        model = cls(config)
        check_same_architecture(stored_backbone, model.backbone.config)
        state = load_safetensors(reference, hub_kwargs)
        expected = model.heads_state_dict()
        missing = sorted(set(expected) - set(state))
        frozen = sorted(set(state) & set(model.state_dict()) - set(expected))
        unexpected = sorted(set(state) - set(model.state_dict()))
        if frozen:  # loading them would silently replace the backbone the fingerprint vouches for
            raise ValueError(f"Checkpoint {reference!r} holds frozen backbone tensors ({frozen[:3]}{' ...' if len(frozen) > 3 else ''}); "
                             "an FPT checkpoint holds only the trained tensors, and the backbone comes from its reference.")
        if missing or unexpected:
            raise ValueError(
                f"Checkpoint {reference!r} does not match this FPT model: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}. Was it saved by fpt-hf with the same config?"
            )
        for key, tensor in state.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"Checkpoint {reference!r} tensor {key} holds NaN or inf values: the run that saved it diverged.")
        own = model.state_dict()
        for key, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[key].shape):
                raise ValueError(
                    f"Checkpoint tensor {key} has shape {tuple(tensor.shape)}, this backbone expects "
                    f"{tuple(own[key].shape)}: the heads were trained on a different backbone."
                )
        legacy = not stored_fingerprint.startswith(f"{FINGERPRINT_VERSION}:")
        actual = model.frozen_fingerprint(legacy=True) if legacy else model.config.backbone_fingerprint
        if stored_fingerprint != actual:
            raise ValueError(
                f"The backbone {config.backbone!r} does not have the weights these heads were trained on "
                f"(fingerprint {actual}, checkpoint expects {stored_fingerprint})."
            )
        model.load_state_dict(state, strict=False)
        model.eval()
        return model


def _storage_dtype(config: FPTConfig) -> torch.dtype:
    """Load pretrained weights directly in the compute dtype: no transient fp32 copy of the backbone."""
    name = config.compute_dtype
    return torch.float32 if name in (None, "float32") else getattr(torch, name)


def register_auto_classes() -> None:
    """Make `AutoConfig` / `AutoModel` load FPT (and LSTM baseline) checkpoints without `trust_remote_code`."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    from .baselines import LSTMBaseline, LSTMConfig

    for config_class, model_class in ((FPTConfig, FPTModel), (LSTMConfig, LSTMBaseline)):
        try:
            AutoConfig.register(config_class.model_type, config_class)
        except ValueError:
            pass  # already registered
        for auto in (AutoModel, AutoModelForSequenceClassification):
            try:
                auto.register(config_class, model_class)
            except ValueError:
                pass
