"""Reading FPT checkpoints safely: is a reference an FPT checkpoint, does its backbone match, and its tensors (safetensors
only, shards beside their index, never pickle)."""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file
from transformers import PretrainedConfig
from transformers.utils import cached_file

from .backbones import EMBEDDED_BACKBONES
from .configuration_fpt import FPTConfig


def is_fpt_checkpoint(reference: str, hub_kwargs: dict) -> bool:
    if reference in EMBEDDED_BACKBONES and not os.path.isdir(reference):
        return False  # an embedded backbone name: no Hub request
    try:
        config_file = cached_file(reference, "config.json", _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    except (OSError, ValueError):
        return False
    if config_file is None:
        return False
    try:
        with open(config_file) as f:
            return json.load(f).get("model_type") == FPTConfig.model_type
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise ValueError(f"{config_file} is not a valid config.json ({type(err).__name__}: {err}).") from err


def check_same_architecture(stored: PretrainedConfig | None, loaded: PretrainedConfig) -> None:
    if stored is None:
        return
    for attr in ("model_type", "hidden_size", "num_hidden_layers"):
        a, b = getattr(stored, attr, None), getattr(loaded, attr, None)
        if a != b:
            raise ValueError(
                f"Backbone mismatch: the checkpoint was trained on a backbone with {attr}={a!r}, "
                f"the backbone loaded now has {attr}={b!r}."
            )


def load_safetensors(reference: str, hub_kwargs: dict) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors; only safetensors are accepted (never pickle)."""
    single = cached_file(reference, "model.safetensors", _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    if single is not None:
        try:
            return load_file(single)
        except Exception as err:
            raise ValueError(f"Could not read {single}: not a valid safetensors file ({err}).") from err
    index = cached_file(reference, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    if index is not None:
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        outside = [shard for shard in shards if os.path.isabs(shard) or os.path.normpath(shard).startswith("..") or "/" in shard.replace("\\", "/")]
        if outside:
            raise ValueError(f"{index} names shards outside the checkpoint folder: {outside}. Shards must be files beside the index.")
        state = {}
        for shard in shards:
            path = cached_file(reference, shard, **hub_kwargs)
            try:
                state.update(load_file(path))
            except Exception as err:
                raise ValueError(f"Could not read {path}: not a valid safetensors file ({err}).") from err
        return state
    pickled = cached_file(reference, "pytorch_model.bin", _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    hint = " It holds pytorch_model.bin, which fpt-hf does not load (pickle can run code)." if pickled else ""
    raise ValueError(f"No model.safetensors found in {reference!r}.{hint}")
