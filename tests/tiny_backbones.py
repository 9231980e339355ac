"""Tiny random backbones of every architecture family FPT supports, saved as HF model folders."""

from pathlib import Path

import torch
from transformers import (
    AutoModel,
    BertConfig,
    GemmaConfig,
    GPT2Config,
    GPTNeoConfig,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    OPTConfig,
    PhiConfig,
    Qwen2Config,
)

L = 2  # layers
COMMON = dict(vocab_size=101, bos_token_id=0, eos_token_id=0, pad_token_id=0)
ROPE = dict(num_hidden_layers=L, hidden_size=32, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64, **COMMON)

# family -> (config, norm class name, number of norm modules, learned-position module name or None)
TINY_FAMILIES = {
    "gpt2": (GPT2Config(n_layer=L, n_embd=32, n_head=2, n_positions=64, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, **COMMON), "LayerNorm", 2 * L + 1, "wpe"),
    "gpt_neo": (GPTNeoConfig(num_layers=L, hidden_size=32, num_heads=2, attention_types=[[["global", "local"], 1]], window_size=8, max_position_embeddings=64, resid_dropout=0, embed_dropout=0, attention_dropout=0, **COMMON), "LayerNorm", 2 * L + 1, "wpe"),
    "gpt_neox": (GPTNeoXConfig(hidden_dropout=0, attention_dropout=0, **ROPE), "LayerNorm", 2 * L + 1, None),
    "opt": (OPTConfig(num_hidden_layers=L, hidden_size=32, num_attention_heads=2, ffn_dim=64, word_embed_proj_dim=32, max_position_embeddings=64, dropout=0, **COMMON), "LayerNorm", 2 * L + 1, "embed_positions"),
    "llama": (LlamaConfig(num_key_value_heads=1, **ROPE), "LlamaRMSNorm", 2 * L + 1, None),
    "qwen2": (Qwen2Config(num_key_value_heads=1, **ROPE), "Qwen2RMSNorm", 2 * L + 1, None),
    "mistral": (MistralConfig(num_key_value_heads=1, **ROPE), "MistralRMSNorm", 2 * L + 1, None),
    "gemma": (GemmaConfig(num_key_value_heads=1, head_dim=16, **ROPE), "GemmaRMSNorm", 2 * L + 1, None),
    "phi": (PhiConfig(resid_pdrop=0, embd_pdrop=0, attention_dropout=0, **ROPE), "LayerNorm", L + 1, None),
    "bert": (BertConfig(num_hidden_layers=L, hidden_size=32, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0, attention_probs_dropout_prob=0, vocab_size=101, pad_token_id=0), "LayerNorm", 2 * L + 1, "position_embeddings"),
}


def save_tiny_backbone(family: str, path: Path, seed: int = 1234) -> str:
    config = TINY_FAMILIES[family][0]
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(path)
    return str(path)
