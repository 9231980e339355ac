"""Selective activation checkpointing: same gradients as no checkpointing, less memory held for backward."""

import pytest
import torch
from transformers import AutoModel, LlamaConfig

from fpt_hf import FPTModel
from fpt_hf.checkpointing import SAVED_OPS, selective_checkpointing_kwargs
from fpt_hf.probes import HeldActivations


def _model(path, checkpointing, attn="eager", dtype="bfloat16", policy="fpt"):
    torch.manual_seed(0)
    model = FPTModel.from_pretrained(path, input_dim=8, num_labels=3, compute_dtype=dtype, backbone_attn_implementation=attn, policy=policy).train()
    if checkpointing == "selective":
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
    elif checkpointing == "full":
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 32, 8, generator=g), torch.randint(0, 3, (8,), generator=g)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_selective_checkpointing_with_a_fully_trained_backbone(family, tiny_backbone_dirs):
    plain_loss, plain = _grads(_model(tiny_backbone_dirs[family], None, dtype="float32", policy="full"))
    loss, grads = _grads(_model(tiny_backbone_dirs[family], "selective", dtype="float32", policy="full"))
    assert torch.equal(loss, plain_loss) and any("mlp" in name for name in grads)
    for name, value in plain.items():
        torch.testing.assert_close(grads[name], value, rtol=0, atol=0, msg=name)


def _grads(model):
    x, y = _batch()
    loss = model(inputs=x, labels=y).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family", ["gpt2", "llama", "gpt_neox", "gemma", "bert"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_selective_checkpointing_gives_the_same_gradients(family, dtype, tiny_backbone_dirs):
    plain_loss, plain = _grads(_model(tiny_backbone_dirs[family], None, dtype=dtype))
    loss, grads = _grads(_model(tiny_backbone_dirs[family], "selective", dtype=dtype))
    assert torch.equal(loss, plain_loss)
    assert grads.keys() == plain.keys() and len(grads) > 0
    for name, value in plain.items():  # the recomputed element-wise ops are bit-identical on CPU
        torch.testing.assert_close(grads[name], value, rtol=0, atol=0, msg=name)


@pytest.fixture(scope="module")
def smollm2_shaped(tmp_path_factory):
    """A 2-layer Llama with SmolLM2-135M's proportions (MLP 2.7x wide, 3 query heads per KV head), scaled down."""
    path = tmp_path_factory.mktemp("smollm2_shaped")
    config = LlamaConfig(num_hidden_layers=2, hidden_size=96, intermediate_size=256, num_attention_heads=6, num_key_value_heads=2,
                         max_position_embeddings=128, vocab_size=11)
    AutoModel.from_config(config).save_pretrained(path)
    return path


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_selective_checkpointing_holds_less_for_backward(smollm2_shaped, attn):
    held = {}
    for mode in (None, "selective", "full"):
        model = _model(smollm2_shaped, mode, attn=attn)
        x, y = torch.randn(16, 64, 8), torch.randint(0, 3, (16,))
        with HeldActivations() as tracker:
            loss = model(inputs=x, labels=y).loss
        held[mode] = tracker.bytes()  # what the forward left alive for the backward
        loss.backward()
    # eager keeps fp32 softmax probabilities that selective checkpointing recomputes; SDPA keeps none
    assert held["full"] < held["selective"] < {"eager": 0.65, "sdpa": 0.8}[attn] * held[None], held


def test_held_activations_counts_what_autograd_keeps():
    w = torch.randn(64, 64, requires_grad=True)
    x = torch.randn(32, 64)
    with HeldActivations() as held:
        y = torch.tanh(x @ w)  # tanh keeps its output (32 x 64 fp32); mm keeps x (an input, not created here)
        loss = y.sum()
    assert held.bytes() == 32 * 64 * 4 + 4  # tanh's output + the scalar loss
    del y, loss
    assert held.bytes() == 0


def test_saved_ops_exist_in_this_torch():
    names = {op.name() for op in SAVED_OPS}
    assert {"aten::mm", "aten::addmm", "aten::bmm"} <= names
    assert any("scaled_dot_product" in n for n in names)
