"""FPTModel over every architecture family: freezing, trainable sets, padding, save/load, errors."""

import os

import pytest
import torch
from tiny_backbones import TINY_FAMILIES, save_tiny_backbone
from torch import nn
from transformers import AutoModel, GPT2Config, GPT2Model

from fpt_hf import FPTConfig, FPTModel

FAMILIES = sorted(TINY_FAMILIES)


def _expected_fpt_trainable(model, family):
    """Count the FPT trainable set independently: norm modules by their class name, the named position
    table, the new input layer and head."""
    _, norm_class, norm_count, position_name = TINY_FAMILIES[family]
    norms = [m for m in model.backbone.modules() if type(m).__name__ == norm_class]
    assert len(norms) == norm_count
    count = sum(p.numel() for m in norms for p in m.parameters())
    if position_name:
        count += sum(p.numel() for n, m in model.backbone.named_modules() if n.endswith(position_name) for p in m.parameters())
    count += sum(p.numel() for p in model.input_layer.parameters()) + sum(p.numel() for p in model.head.parameters())
    return count


@pytest.mark.parametrize("family", FAMILIES)
def test_optimizer_step_moves_only_trainable(family, tiny_backbone_dirs):
    model = FPTModel.from_pretrained(tiny_backbone_dirs[family], input_dim=5, num_labels=3)
    trainable, total = model.get_nb_trainable_parameters()
    assert trainable == _expected_fpt_trainable(model, family)
    groups = model.parameter_groups()
    assert {"attention", "mlp"} <= set(groups.values())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = torch.randn(4, 7, 5), torch.tensor([0, 1, 2, 0])
    model(inputs=x, labels=y).loss.backward()
    optimizer.step()
    for name, param in model.named_parameters():
        if groups[name] in ("attention", "mlp", "token_embeddings", "other"):
            assert not param.requires_grad and torch.equal(param, before[name]), name
        else:
            assert param.requires_grad and not torch.equal(param, before[name]), f"{name} ({groups[name]}) did not move"


@pytest.mark.parametrize("family", FAMILIES)
def test_padding_does_not_change_logits(family, tiny_backbone_dirs):
    model = FPTModel.from_pretrained(tiny_backbone_dirs[family], input_dim=5, num_labels=3).eval()
    x = torch.randn(2, 6, 5)
    padded = torch.cat([x, torch.randn(2, 3, 5)], dim=1)
    mask = torch.cat([torch.ones(2, 6), torch.zeros(2, 3)], dim=1).long()
    with torch.no_grad():
        plain = model(inputs=x).logits
        masked = model(inputs=padded, attention_mask=mask).logits
        full_mask = model(inputs=x, attention_mask=torch.ones(2, 6, dtype=torch.long)).logits
    torch.testing.assert_close(masked, plain, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(full_mask, plain, atol=1e-5, rtol=1e-4)


def test_variable_length_batch_matches_single_examples(gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3, output_mode="mean").eval()
    a, b = torch.randn(1, 5, 4), torch.randn(1, 3, 4)
    batch = torch.zeros(2, 5, 4)
    batch[0], batch[1, :3] = a[0], b[0]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        together = model(inputs=batch, attention_mask=mask).logits
        torch.testing.assert_close(together[0], model(inputs=a).logits[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(together[1], model(inputs=b).logits[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "policy,groups",
    [
        ("fpt", {"input", "output", "positions", "norms"}),
        ("full", {"input", "output", "positions", "norms", "attention", "mlp"}),
        ("frozen_random", {"input", "output", "positions", "norms"}),
        ("output_only", {"output"}),
    ],
)
def test_policies_train_their_groups(policy, groups, gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy=policy)
    by_group = model.parameter_groups()
    trained = {by_group[n] for n, p in model.named_parameters() if p.requires_grad}
    assert trained == groups
    assert not model.backbone.get_input_embeddings().weight.requires_grad


def test_frozen_random_backbone_is_random_and_reproducible(gpt2_dir):
    pretrained = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2)
    random_a = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy="frozen_random")
    random_b = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy="frozen_random")
    w = "h.0.attn.c_attn.weight"
    assert not torch.equal(pretrained.backbone.state_dict()[w], random_a.backbone.state_dict()[w])
    assert torch.equal(random_a.backbone.state_dict()[w], random_b.backbone.state_dict()[w])
    other_seed = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy="frozen_random", random_backbone_seed=1)
    assert not torch.equal(random_a.backbone.state_dict()[w], other_seed.backbone.state_dict()[w])


def test_custom_groups(gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, trainable_groups=["input", "output", "attention"])
    assert model.config.policy == "custom"
    by_group = model.parameter_groups()
    assert {by_group[n] for n, p in model.named_parameters() if p.requires_grad} == {"input", "output", "attention"}


def test_bert_attention_classified_by_role(tiny_backbone_dirs):
    """The original code's `'attn' in name` test put BERT's `attention` weights in the wrong group."""
    model = FPTModel.from_pretrained(tiny_backbone_dirs["bert"], input_dim=4, num_labels=2)
    groups = model.parameter_groups()
    assert groups["backbone.encoder.layer.0.attention.self.query.weight"] == "attention"
    assert groups["backbone.encoder.layer.0.attention.output.LayerNorm.weight"] == "norms"
    assert groups["backbone.encoder.layer.0.intermediate.dense.weight"] == "mlp"
    assert groups["backbone.embeddings.token_type_embeddings.weight"] == "other"


def test_discrete_inputs_and_token_outputs(gpt2_dir):
    model = FPTModel.from_pretrained(
        gpt2_dir, vocab_size=20, num_labels=2, output_mode="tokens", num_output_tokens=3, predictions_per_token=4
    )
    assert isinstance(model.input_layer, nn.Embedding)
    out = model(inputs=torch.randint(0, 20, (2, 9)), labels=torch.randint(0, 2, (2, 12)))
    assert out.logits.shape == (2, 12, 2)
    # tokens mode reads only the last 3 tokens: changing earlier tokens of a causal model's input... changes
    # their features, but the head must ignore the features of all but the last 3 positions
    hidden = torch.randn(2, 9, model.config.backbone_config.hidden_size)
    from fpt_hf.heads import pool

    torch.testing.assert_close(pool(model.config, hidden, None), hidden[:, -3:])


def test_learned_position_table_and_layer_truncation(tiny_backbone_dirs):
    model = FPTModel.from_pretrained(
        tiny_backbone_dirs["llama"], input_dim=4, num_labels=2, learned_positions=16, num_backbone_layers=1
    )
    assert len(model.backbone.layers) == 1 and model.backbone.config.num_hidden_layers == 1
    assert model.position_table.weight.requires_grad
    assert model.max_length == 16
    model(inputs=torch.randn(2, 16, 4)).logits.sum().backward()
    assert model.position_table.weight.grad is not None


def _bare_backbone_forward(model, x, prefix):
    """What a sink-token model computes, written out: [prefix, input_layer(x)] through the backbone,
    the prefix positions dropped, the head on the last `num_output_tokens` positions."""
    embeds = torch.cat([prefix.expand(len(x), -1, -1), model.input_layer(x)], dim=1)
    hidden = model.backbone(inputs_embeds=embeds).last_hidden_state[:, prefix.shape[0]:]
    return model.head(hidden[:, -model.config.num_output_tokens:])


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_sink_tokens_prepend_a_trained_prefix_the_head_never_reads(family, tiny_backbone_dirs, tmp_path):
    kwargs = dict(input_dim=4, num_labels=3, output_mode="tokens", num_output_tokens=2, predictions_per_token=1)
    model = FPTModel.from_pretrained(tiny_backbone_dirs[family], sink_tokens=2, **kwargs).eval()
    assert model.sink_embeddings.weight.shape == (2, model.backbone.config.hidden_size)
    assert model.parameter_groups()["sink_embeddings.weight"] == "input" and model.sink_embeddings.weight.requires_grad
    plain = FPTModel.from_pretrained(tiny_backbone_dirs[family], **kwargs)
    assert model.max_length == plain.max_length - 2
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        out = model(inputs=x, output_hidden_states=True)
        torch.testing.assert_close(out.logits, _bare_backbone_forward(model, x, model.sink_embeddings.weight), atol=1e-5, rtol=1e-4)
        assert out.last_hidden_state.shape[1] == 5  # the caller sees one state per input token
        # right padding with a mask: same logits for the real tokens
        padded = torch.cat([x, torch.randn(3, 2, 4)], dim=1)
        mask = torch.cat([torch.ones(3, 5), torch.zeros(3, 2)], dim=1).long()
        torch.testing.assert_close(model(inputs=padded, attention_mask=mask).logits, out.logits, atol=1e-5, rtol=1e-4)
        # the prefix matters: a different sink gives different logits
        assert not torch.allclose(_bare_backbone_forward(model, x, torch.zeros_like(model.sink_embeddings.weight)), out.logits)
    model.train()
    model(inputs=x, labels=torch.randint(0, 3, (3, 2))).loss.backward()
    assert model.sink_embeddings.weight.grad.abs().sum() > 0
    model.eval().save_pretrained(tmp_path / "ckpt")
    loaded = FPTModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.sink_tokens == 2
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs=x).logits, model(inputs=x).logits, rtol=0, atol=0)
    with pytest.raises(ValueError, match=rf"exceeds the backbone's {model.max_length} positions \(its {plain.max_length} positions less 2 sink tokens\)"):
        model(inputs=torch.randn(1, plain.max_length, 4))


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_sink_tokens_must_be_a_count(bad, gpt2_dir):
    with pytest.raises(ValueError, match="sink_tokens must be a non-negative int"):
        FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3, sink_tokens=bad)


def test_save_load_round_trip_heads_only(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)  # "trained" heads differ from any fresh init
    model.eval()
    model.save_pretrained(tmp_path / "ckpt")
    files = sorted(os.listdir(tmp_path / "ckpt"))
    assert files == ["config.json", "model.safetensors"]
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "ckpt" / "model.safetensors")
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}
    x = torch.randn(3, 5, 4)
    loaded = FPTModel.from_pretrained(tmp_path / "ckpt")
    via_auto = AutoModel.from_pretrained(tmp_path / "ckpt")
    assert type(via_auto) is FPTModel
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs=x).logits, model(inputs=x).logits, rtol=0, atol=0)
        torch.testing.assert_close(via_auto(inputs=x).logits, model(inputs=x).logits, rtol=0, atol=0)
    # the policy survives loading
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == set(saved)


def test_heads_only_checkpoint_is_small_for_gpt2_small(tmp_path):
    backbone = GPT2Model(GPT2Config(bos_token_id=0, eos_token_id=0))  # GPT-2 small sized (124M), random
    config = FPTConfig(backbone="gpt2", backbone_config=backbone.config, input_dim=16, num_labels=10)
    model = FPTModel(config, backbone=backbone)
    model.save_pretrained(tmp_path / "ckpt")
    heads_bytes = os.path.getsize(tmp_path / "ckpt" / "model.safetensors")
    full_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert heads_bytes < 0.01 * full_bytes, (heads_bytes, full_bytes)
    trainable, total = model.get_nb_trainable_parameters()
    assert trainable / total < 0.01


def test_full_policy_saves_backbone(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy="full")
    with torch.no_grad():
        model.backbone.h[0].attn.c_attn.weight.add_(1.0)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = FPTModel.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(loaded.backbone.h[0].attn.c_attn.weight, model.backbone.h[0].attn.c_attn.weight)


def test_output_only_checkpoint_keeps_its_frozen_input_layer(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy="output_only").eval()
    assert not model.input_layer.weight.requires_grad
    model.save_pretrained(tmp_path / "ckpt")
    loaded = FPTModel.from_pretrained(tmp_path / "ckpt")
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        assert torch.equal(loaded(inputs=x).logits, model(inputs=x).logits)


def test_frozen_random_checkpoint_round_trip(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy="frozen_random").eval()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = FPTModel.from_pretrained(tmp_path / "ckpt")
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        assert torch.equal(loaded(inputs=x).logits, model(inputs=x).logits)


def test_mismatched_backbones_raise(tiny_backbone_dirs, tmp_path):
    model = FPTModel.from_pretrained(tiny_backbone_dirs["gpt2"], input_dim=4, num_labels=2)
    model.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="model_type='gpt2'.*model_type='llama'"):
        FPTModel.from_pretrained(tmp_path / "ckpt", backbone=tiny_backbone_dirs["llama"])
    wider = GPT2Model(GPT2Config(n_layer=2, n_embd=48, n_head=2, n_positions=64, vocab_size=101, bos_token_id=0, eos_token_id=0))
    wider.save_pretrained(tmp_path / "wider")
    with pytest.raises(ValueError, match="hidden_size=32.*hidden_size=48"):
        FPTModel.from_pretrained(tmp_path / "ckpt", backbone=str(tmp_path / "wider"))
    other_weights = save_tiny_backbone("gpt2", tmp_path / "other", seed=1)
    with pytest.raises(ValueError, match="does not have the weights these heads were trained on"):
        FPTModel.from_pretrained(tmp_path / "ckpt", backbone=other_weights)


def test_pickle_and_corrupt_checkpoints_refused(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2)
    model.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").rename(tmp_path / "ckpt" / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pytorch_model.bin, which fpt-hf does not load"):
        FPTModel.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        FPTModel.from_pretrained(tmp_path / "ckpt")


# ---------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def continuous_model(tmp_path_factory):
    path = save_tiny_backbone("gpt2", tmp_path_factory.mktemp("b") / "gpt2")
    return FPTModel.from_pretrained(path, input_dim=4, num_labels=3)


@pytest.fixture(scope="module")
def discrete_model(tmp_path_factory):
    path = save_tiny_backbone("gpt2", tmp_path_factory.mktemp("b") / "gpt2")
    return FPTModel.from_pretrained(path, vocab_size=10, num_labels=3)


def test_wrong_feature_size(continuous_model):
    with pytest.raises(ValueError, match=r"shape \(batch, seq_len, 4\), got \(2, 5, 7\)"):
        continuous_model(inputs=torch.randn(2, 5, 7))


def test_floats_to_token_model(discrete_model):
    with pytest.raises(ValueError, match="takes integer token ids.*torch.float32"):
        discrete_model(inputs=torch.randn(2, 5))


def test_ids_out_of_range(discrete_model):
    with pytest.raises(ValueError, match=r"Token ids must be in \[0, 10\), got values in \[0, 12\]"):
        discrete_model(inputs=torch.tensor([[0, 12]]))


def test_sequence_too_long(continuous_model):
    with pytest.raises(ValueError, match="Sequence length 65 exceeds the backbone's 64 positions"):
        continuous_model(inputs=torch.randn(1, 65, 4))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs(continuous_model, bad):
    x = torch.randn(1, 3, 4)
    x[0, 1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        continuous_model(inputs=x)


def test_labels_out_of_range(continuous_model):
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*got values in \[0, 3\]"):
        continuous_model(inputs=torch.randn(2, 3, 4), labels=torch.tensor([0, 3]))


def test_mask_shape_mismatch(continuous_model):
    with pytest.raises(ValueError, match=r"attention_mask must have shape .* = \(2, 3\), got \(2, 4\)"):
        continuous_model(inputs=torch.randn(2, 3, 4), attention_mask=torch.ones(2, 4))


def test_hub_backbone_offline_says_what_to_do(tmp_path):
    """Tests run with HF_HUB_OFFLINE=1: a Hub id fails at once, naming the cause and the embedded backbones."""
    import time

    start = time.time()
    with pytest.raises(ValueError, match=r"Backbone 'gpt2' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 is set\. "
                                         r"Without the Hub, use an embedded backbone \('minilm-l6', 'smollm2-135m'"):
        FPTModel.from_pretrained("gpt2", input_dim=4, num_labels=2)
    assert time.time() - start < 10  # no retries
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is a folder but not a model folder: it has no usable config.json"):
        FPTModel.from_pretrained(str(tmp_path / "empty"), input_dim=4, num_labels=2)


def test_unreachable_hub_backbone_names_the_offline_switch_the_user_needs(monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    from fpt_hf.backbones import _backbone_error

    err = OSError("We couldn't connect to 'https://huggingface.co' to load the files")
    err.__cause__ = LocalEntryNotFoundError("no cached config.json")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    online = _backbone_error("gpt2", err)
    assert "the Hub could not be reached (no network?)" in online and online.endswith("HF_HUB_OFFLINE=1 fails at once instead of after the Hub's retries.")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = _backbone_error("gpt2", err)
    assert "HF_HUB_OFFLINE=1 is set" in offline and offline.endswith("unset HF_HUB_OFFLINE and it downloads once into the cache.")


def test_unknown_backbone_name():
    from fpt_hf.backbones import _backbone_error

    message = _backbone_error("no-such-backbone-xyz", OSError("no-such-backbone-xyz is not a local folder and is not a valid model identifier"))
    assert message.startswith("Unknown backbone 'no-such-backbone-xyz'") and "embedded names 'minilm-l6', 'smollm2-135m'" in message


def test_unknown_policy(gpt2_dir):
    with pytest.raises(ValueError, match="Unknown policy 'frozen'.*'fpt'"):
        FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, policy="frozen")


def test_both_or_neither_input_kind(gpt2_dir):
    with pytest.raises(ValueError, match="exactly one of input_dim"):
        FPTConfig(input_dim=4, vocab_size=10)
    with pytest.raises(ValueError, match="needs input_dim"):
        FPTModel.from_pretrained(gpt2_dir, num_labels=2)


def test_zero_tokens_give_finite_gradients_on_rmsnorm_backbones(tiny_backbone_dirs):
    """A 0-bit token must not become the zero vector: RMSNorm's gradient there blows up to inf/NaN."""
    model = FPTModel.from_pretrained(tiny_backbone_dirs["llama"], input_dim=1, num_labels=2)
    out = model(inputs=torch.zeros(2, 10, 1), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.input_layer.bias.abs().sum() > 0


def test_bf16_compute_keeps_frozen_weights_in_bf16_and_matches_fp32(gpt2_dir, tmp_path):
    fp32 = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3).eval()
    bf16 = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3, compute_dtype="bfloat16").eval()
    bf16.load_state_dict(fp32.heads_state_dict(), strict=False)
    for name, param in bf16.named_parameters():
        assert param.dtype == (torch.float32 if param.requires_grad else torch.bfloat16), name
    assert bf16.config.backbone_fingerprint == fp32.config.backbone_fingerprint
    x = torch.randn(3, 6, 4)
    with torch.no_grad():
        torch.testing.assert_close(bf16(inputs=x).logits, fp32(inputs=x).logits, atol=0.05, rtol=0.05)
    out = bf16(inputs=x, labels=torch.tensor([0, 1, 2]))
    out.loss.backward()
    assert out.logits.dtype == torch.float32 and bf16.input_layer.weight.grad.dtype == torch.float32
    bf16.save_pretrained(tmp_path / "ckpt")
    reloaded = FPTModel.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        assert torch.equal(reloaded(inputs=x).logits, bf16(inputs=x).logits)
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        FPTConfig(input_dim=4, compute_dtype="int8")


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert"])
def test_bf16_compute_with_frozen_norms(family, tiny_backbone_dirs):
    model = FPTModel.from_pretrained(tiny_backbone_dirs[family], input_dim=4, num_labels=2, policy="output_only", compute_dtype="bfloat16")
    out = model(inputs=torch.randn(2, 5, 4), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert torch.isfinite(out.logits).all() and model.head.proj.weight.grad is not None


def test_backbone_attention_implementation_is_configurable(gpt2_dir, tmp_path):
    eager = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, backbone_attn_implementation="eager").eval()
    sdpa = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, backbone_attn_implementation="sdpa").eval()
    sdpa.load_state_dict(eager.heads_state_dict(), strict=False)
    assert eager.backbone.config._attn_implementation == "eager" and sdpa.backbone.config._attn_implementation == "sdpa"
    x = torch.randn(2, 6, 4)
    with torch.no_grad():
        torch.testing.assert_close(eager(inputs=x).logits, sdpa(inputs=x).logits, atol=1e-5, rtol=1e-4)
    eager.save_pretrained(tmp_path / "ckpt")
    assert FPTModel.from_pretrained(tmp_path / "ckpt").backbone.config._attn_implementation == "eager"


def test_unused_token_table_is_freed_unless_kept(gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2)
    kept = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, keep_token_embeddings=True)
    assert model.backbone.wte.weight.numel() == 0 and kept.backbone.wte.weight.shape == (101, 32)
    assert model.config.backbone_fingerprint == kept.config.backbone_fingerprint
    kept.load_state_dict(model.heads_state_dict(), strict=False)
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        assert torch.equal(model.eval()(inputs=x).logits, kept.eval()(inputs=x).logits)


def test_embedded_backbone_names_never_ask_the_hub(monkeypatch):
    from fpt_hf import checkpoint_files

    def no_network(*args, **kwargs):
        raise AssertionError(f"Hub lookup for {args[0]!r}")

    monkeypatch.setattr(checkpoint_files, "cached_file", no_network)
    assert not checkpoint_files.is_fpt_checkpoint("smollm2-135m", {})
    assert not checkpoint_files.is_fpt_checkpoint("minilm-l6", {})
