"""FPT configuration: the backbone reference, the input and output spec, and the freezing policy."""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig

# Parameter groups every FPT model knows. `input`/`output` are FPT's own layers; the rest live in the
# backbone and are found by module type and role (see `backbones.classify_parameters`).
PARAMETER_GROUPS = (
    "input",  # new input layer (Linear or Embedding), the optional learned position table and sink tokens
    "output",  # new output layer
    "positions",  # the backbone's learned position embeddings (GPT-2 `wpe`, BERT `position_embeddings`)
    "norms",  # every LayerNorm / RMSNorm in the backbone
    "attention",  # self-attention weights
    "mlp",  # feed-forward weights
    "other",  # anything else the backbone uses (e.g. BERT token-type embeddings, pooler)
    "token_embeddings",  # the LM's token table: unused by FPT, never trained or saved
)

# Named freezing policies: which groups train, and whether the backbone keeps its pretrained weights.
POLICIES = {
    "fpt": {"groups": ("input", "output", "positions", "norms"), "random_backbone": False},
    "full": {
        "groups": ("input", "output", "positions", "norms", "attention", "mlp", "other"),
        "random_backbone": False,
    },
    "frozen_random": {"groups": ("input", "output", "positions", "norms"), "random_backbone": True},
    "output_only": {"groups": ("output",), "random_backbone": False},
}

OUTPUT_MODES = ("last", "first", "mean", "tokens")
# How the new input layer starts: "default" (fpt-hf's, measured better; see docs/protocol.md) or "paper"
# (the original code: orthogonal gain 1.41 and zero bias for continuous tokens, N(0, 1) token embeddings).
INPUT_INITS = ("default", "paper")
COMPUTE_DTYPES = (None, "float32", "bfloat16", "float16")


# Keyword arguments every HF config accepts or writes to config.json (PretrainedConfig's own fields and bookkeeping).
_GENERIC_CONFIG_KEYS = frozenset({
    "transformers_version", "architectures", "output_hidden_states", "output_attentions", "return_dict", "dtype", "torch_dtype",
    "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id", "problem_type", "model_type", "_name_or_path",
    "name_or_path", "_commit_hash", "_attn_implementation", "attn_implementation", "auto_map", "use_cache", "num_labels",
    "_experts_implementation", "tie_word_embeddings", "pad_token_id", "bos_token_id", "eos_token_id",
})


def check_known_kwargs(config_class: type, kwargs: dict) -> None:
    """Refuse keyword arguments the config does not know (a typo such as `num_label=3` would otherwise be stored and ignored)."""
    import difflib
    import inspect

    own = set(inspect.signature(config_class.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(kwargs) - own - _GENERIC_CONFIG_KEYS)
    if unknown:
        hints = {k: difflib.get_close_matches(k, sorted(own | {"num_labels"}), n=1) for k in unknown}
        said = ", ".join(f"{k!r}" + (f" (did you mean {hints[k][0]!r}?)" if hints[k] else "") for k in unknown)
        raise ValueError(f"Unknown {config_class.__name__} argument(s) {said}. Known: {sorted(own | {'num_labels'})}.")


def check_head_spec(num_labels, output_mode: str, num_output_tokens, predictions_per_token) -> None:
    """Validate the classification head: >= 2 classes (cross-entropy over 1 class is always 0), >= 1 output token."""
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
        raise ValueError(f"num_labels must be an int >= 2 (cross-entropy over one class is always 0), got {num_labels!r}.")
    for name, value in (("num_output_tokens", num_output_tokens), ("predictions_per_token", predictions_per_token)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")


def head_kwargs(kwargs: dict, num_labels, output_mode: str, num_output_tokens, predictions_per_token) -> dict:
    """`PretrainedConfig.__init__` kwargs with the head checked: `num_labels` and the class names (`id2label`) agree
    (transformers would keep `num_labels` and drop the names, with a warning), and `label2id` is filled in from them."""
    id2label = kwargs.get("id2label")
    if id2label is not None:
        if num_labels is not None and len(id2label) != num_labels:
            raise ValueError(f"num_labels={num_labels} but id2label names {len(id2label)} classes ({list(id2label.values())[:5]}...); "
                             "make them agree, or give only one.")
        if sorted(int(k) if str(k).isdigit() else -1 for k in id2label) != list(range(len(id2label))):
            raise ValueError(f"id2label must name the classes 0..{len(id2label) - 1}, got keys {sorted(id2label)}.")
        num_labels = len(id2label)
        if kwargs.get("label2id") is None:
            kwargs["label2id"] = {name: int(i) for i, name in id2label.items()}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    check_head_spec(kwargs.get("num_labels", 2), output_mode, num_output_tokens, predictions_per_token)
    return kwargs


def check_io_spec(input_dim: int | None, vocab_size: int | None, output_mode: str) -> None:
    """Validate the input/output fields FPT models and their baselines share."""
    if input_dim is not None and vocab_size is not None:
        raise ValueError(
            f"Give exactly one of input_dim (continuous tokens) and vocab_size (token ids); got "
            f"input_dim={input_dim} and vocab_size={vocab_size}."
        )
    for name, value in (("input_dim", input_dim), ("vocab_size", vocab_size)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"output_mode must be one of {list(OUTPUT_MODES)}, got {output_mode!r}.")


class FPTConfig(PretrainedConfig):
    r"""Configuration of a Frozen Pretrained Transformer.

    Args:
        backbone (`str`): Hub id, local folder or embedded name (`"smollm2-135m"`, `"minilm-l6"`) of the
            pretrained transformer. The backbone weights are *not* stored in FPT checkpoints; they are
            re-attached from this reference on load.
        backbone_config (`PretrainedConfig` or `dict`, *optional*): the backbone's config (filled in when
            the model is built; lets `frozen_random` models and architecture checks work without weights).
        input_dim (`int`, *optional*): feature size of continuous tokens -> `nn.Linear(input_dim, hidden)`.
        vocab_size (`int`, *optional*): number of discrete token ids -> `nn.Embedding(vocab_size, hidden)`.
            Exactly one of `input_dim` and `vocab_size` must be given.
        num_labels (`int`): classes per prediction.
        output_mode (`str`): `"last"` (last real token, mask aware), `"first"`, `"mean"` (masked mean pool)
            or `"tokens"` (one prediction group per token from the last `num_output_tokens` tokens).
        num_output_tokens (`int`): for `"tokens"`, how many trailing tokens predict.
        predictions_per_token (`int`): for `"tokens"`, predictions per output token (bit memory: 50).
        policy (`str`): `"fpt"`, `"full"`, `"frozen_random"`, `"output_only"` or `"custom"`.
        trainable_groups (`list[str]`, *optional*): explicit set of groups from `PARAMETER_GROUPS`;
            given without a policy it means `policy="custom"`.
        random_backbone (`bool`, *optional*): re-initialise the backbone randomly (seeded by
            `random_backbone_seed`); defaults to the policy's choice.
        num_backbone_layers (`int`, *optional*): keep only the first N transformer blocks.
        learned_positions (`int`, *optional*): size of an extra learned position table added to the input
            (for backbones with RoPE and no learned positions). Trains with the `input` group.
        sink_tokens (`int`): learned tokens put before every sequence (default 0, the paper's model).
            Pretrained LMs park most attention on the first position and blow its hidden state up (an
            "attention sink"; SmolLM2: norm ~2500 vs ~70 from block 3 on, ~90% of the attention by block 5),
            so whatever the first input token holds is lost to later tokens. One sink token takes that role
            and every input token stays readable. Trains with the `input` group; the head never reads it.
        input_dropout (`float`): dropout on the projected input tokens (the original code: 0.1 on continuous
            inputs, none on token ids; the `paper` training preset sets it so).
        input_init (`str`): `"default"`: orthogonal input layer (gain 1) with an N(0, `initializer_range`) bias,
            token embeddings N(0, `initializer_range`). `"paper"`: the original code's orthogonal gain 1.41 and zero
            bias, token embeddings N(0, 1) (`nn.Embedding`'s default). On a backbone that adds no learned positions
            (RoPE, e.g. Llama) and without `learned_positions`, the bias keeps its small random init even under
            `"paper"`: a zero bias would feed an all-zero token (a 0 bit) to RMSNorm as the zero vector, whose
            gradient overflows.
        validate_inputs (`bool`): check inputs/labels in `forward` and raise `ValueError` on bad values.
        compute_dtype (`str`, *optional*): `"bfloat16"` or `"float16"` runs the backbone under autocast with its
            frozen weights stored in that dtype (no fp32 copy: they never update); trainable tensors, the
            input layer and the head stay fp32. `None` (default) is the paper's fp32.
        keep_token_embeddings (`bool`): keep the backbone's token table in memory (default: freed, it is unused).
        backbone_attn_implementation (`str`, *optional*): `"sdpa"`, `"eager"`, ... for the backbone's attention
            (default: transformers' choice). On CPUs, eager bf16 attention beats SDPA for short sequences.
        prune_final_block (`bool`): compute the final block only at the positions the head reads (`"last"`,
            `"first"`, `"tokens"` modes; Llama-style and GPT-2 blocks): same numbers up to float rounding, a block's
            feed-forward and attention queries less per step (`fpt_hf.final_block`). `False` runs it in full.
    """

    model_type = "fpt"
    sub_configs = {"backbone_config": AutoConfig}

    def __init__(
        self,
        backbone: str | None = None,
        backbone_config: PretrainedConfig | dict | None = None,
        input_dim: int | None = None,
        vocab_size: int | None = None,
        num_labels: int | None = None,
        output_mode: str = "last",
        num_output_tokens: int = 1,
        predictions_per_token: int = 1,
        policy: str | None = None,
        trainable_groups: list[str] | None = None,
        random_backbone: bool | None = None,
        random_backbone_seed: int = 0,
        num_backbone_layers: int | None = None,
        learned_positions: int | None = None,
        sink_tokens: int = 0,
        input_dropout: float = 0.0,
        input_init: str = "default",
        initializer_range: float = 0.02,
        validate_inputs: bool = True,
        backbone_fingerprint: str | None = None,
        compute_dtype: str | None = None,
        backbone_attn_implementation: str | None = None,
        keep_token_embeddings: bool = False,
        prune_final_block: bool = True,
        **kwargs,
    ):
        check_known_kwargs(type(self), kwargs)
        if isinstance(backbone_config, dict):
            backbone_config = dict(backbone_config)
            model_type = backbone_config.pop("model_type", None)
            if model_type is None:
                raise ValueError("backbone_config dict needs a 'model_type' key.")
            backbone_config = AutoConfig.for_model(model_type, **backbone_config)
        check_io_spec(input_dim, vocab_size, output_mode)
        if policy is None:
            policy = "custom" if trainable_groups is not None else "fpt"
        if policy == "custom":
            if trainable_groups is None:
                raise ValueError("policy='custom' needs trainable_groups, e.g. ['input', 'output', 'norms'].")
        elif policy in POLICIES:
            if trainable_groups is not None and tuple(trainable_groups) != POLICIES[policy]["groups"]:
                raise ValueError(
                    f"policy={policy!r} fixes trainable_groups to {list(POLICIES[policy]['groups'])}; "
                    f"got {trainable_groups}. Pass trainable_groups without a policy for a custom set."
                )
            trainable_groups = list(POLICIES[policy]["groups"])
            if random_backbone is None:
                random_backbone = POLICIES[policy]["random_backbone"]
        else:
            raise ValueError(
                f"Unknown policy {policy!r}: expected one of {list(POLICIES) + ['custom']}."
            )
        unknown = [g for g in trainable_groups if g not in PARAMETER_GROUPS]
        if unknown:
            raise ValueError(f"Unknown parameter groups {unknown}: expected a subset of {list(PARAMETER_GROUPS)}.")
        if "token_embeddings" in trainable_groups:
            raise ValueError("'token_embeddings' is unused by FPT (inputs go through the new input layer) and cannot train.")

        if not isinstance(sink_tokens, int) or isinstance(sink_tokens, bool) or sink_tokens < 0:
            raise ValueError(f"sink_tokens must be a non-negative int, got {sink_tokens!r}.")
        for name, value in (("num_backbone_layers", num_backbone_layers), ("learned_positions", learned_positions)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int (or None), got {value!r}.")
        if input_init not in INPUT_INITS:
            raise ValueError(f"input_init must be one of {list(INPUT_INITS)}, got {input_init!r}.")
        if isinstance(input_dropout, bool) or not isinstance(input_dropout, (int, float)) or not 0 <= input_dropout < 1:
            raise ValueError(f"input_dropout must be a probability in [0, 1), got {input_dropout!r}.")
        if compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {compute_dtype!r}.")
        self.compute_dtype = compute_dtype
        self.backbone_attn_implementation = backbone_attn_implementation
        self.keep_token_embeddings = keep_token_embeddings
        if not isinstance(prune_final_block, bool):
            raise ValueError(f"prune_final_block must be True or False, got {prune_final_block!r}.")
        self.prune_final_block = prune_final_block
        self.backbone = backbone
        self.backbone_config = backbone_config
        self.input_dim = input_dim
        self.vocab_size = vocab_size
        self.output_mode = output_mode
        self.num_output_tokens = num_output_tokens
        self.predictions_per_token = predictions_per_token
        self.policy = policy
        self.trainable_groups = list(trainable_groups)
        self.random_backbone = bool(random_backbone)
        self.random_backbone_seed = random_backbone_seed
        self.num_backbone_layers = num_backbone_layers
        self.learned_positions = learned_positions
        self.sink_tokens = sink_tokens
        self.input_dropout = float(input_dropout)
        self.input_init = input_init
        self.initializer_range = initializer_range
        self.validate_inputs = validate_inputs
        self.backbone_fingerprint = backbone_fingerprint
        super().__init__(**head_kwargs(kwargs, num_labels, output_mode, num_output_tokens, predictions_per_token))

    @property
    def is_discrete(self) -> bool:
        return self.vocab_size is not None
