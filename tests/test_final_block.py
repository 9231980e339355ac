"""The final block computed only at the read positions (fpt_hf.final_block): the same logits and gradients as the
block's own full forward, for every output mode, padding side and sink setting; other blocks run in full."""

import pytest
import torch

from fpt_hf import FPTModel
from fpt_hf.backbones import find_blocks
from fpt_hf.final_block import final_block_at, supports_final_block_at

MODES = [("last", {}), ("first", {}), ("tokens", {"num_output_tokens": 3})]


def _batch(padding: str):
    torch.manual_seed(1)
    inputs = torch.randn(4, 12, 5)
    mask = torch.ones(4, 12, dtype=torch.long)
    if padding == "right":
        mask[1, 9:] = 0
        mask[2, 6:] = 0
    elif padding == "left":
        mask[1, :3] = 0
        mask[3, :5] = 0
    return inputs, (None if padding == "none" else mask)


def _logits_and_grads(model, inputs, mask, labels, prune: bool):
    model.config.prune_final_block = prune
    model.zero_grad(set_to_none=True)
    out = model(inputs, attention_mask=mask, labels=labels)
    out.loss.backward()
    return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("mode,extra", MODES)
@pytest.mark.parametrize("sinks", [0, 1])
def test_pruned_final_block_gives_the_full_blocks_logits_and_gradients(tiny_backbone_dirs, family, mode, extra, sinks):
    torch.manual_seed(0)
    model = FPTModel.from_pretrained(tiny_backbone_dirs[family], input_dim=5, num_labels=3, output_mode=mode, sink_tokens=sinks, **extra)
    assert model._final_block_at
    mlp_tokens = []
    find_blocks(model.backbone)[1][-1].mlp.register_forward_hook(lambda module, args, out: mlp_tokens.append(args[0].shape[1]))
    for padding in (("none", "right") if mode == "tokens" else ("none", "right", "left")):
        inputs, mask = _batch(padding)
        labels = torch.randint(0, 3, (4, 3) if mode == "tokens" else (4,))
        pruned, pruned_grads = _logits_and_grads(model, inputs, mask, labels, prune=True)
        full, full_grads = _logits_and_grads(model, inputs, mask, labels, prune=False)
        assert mlp_tokens == [extra.get("num_output_tokens", 1), 12 + sinks]  # the pruned forward's MLP ran at the read positions only
        mlp_tokens.clear()
        torch.testing.assert_close(pruned, full, rtol=1e-5, atol=1e-6)
        assert pruned_grads.keys() == full_grads.keys() and len(pruned_grads) > 4  # input, head, norms, positions...
        for name in full_grads:
            torch.testing.assert_close(pruned_grads[name], full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_pruned_final_block_in_bfloat16_agrees_within_rounding(tiny_backbone_dirs):
    torch.manual_seed(0)
    model = FPTModel.from_pretrained(tiny_backbone_dirs["llama"], input_dim=5, num_labels=3, compute_dtype="bfloat16").eval()
    inputs, mask = _batch("right")
    with torch.no_grad():
        model.config.prune_final_block = True
        pruned = model(inputs, attention_mask=mask).logits
        model.config.prune_final_block = False
        full = model(inputs, attention_mask=mask).logits
    torch.testing.assert_close(pruned, full, rtol=2e-2, atol=2e-2)


def test_the_block_is_restored_and_unknown_blocks_run_in_full(tiny_backbone_dirs):
    torch.manual_seed(0)
    model = FPTModel.from_pretrained(tiny_backbone_dirs["llama"], input_dim=5, num_labels=3)
    _, blocks = find_blocks(model.backbone)
    final = blocks[-1]
    with pytest.raises(RuntimeError, match="boom"):
        with final_block_at(model.backbone, torch.zeros(2, 1, dtype=torch.long)):
            assert "forward" in vars(final)
            raise RuntimeError("boom")
    assert blocks[-1] is final and "forward" not in vars(final)  # the class's forward again
    with pytest.raises(ValueError, match=r"positions must be \(batch, k\) indices matching the key mask's batch, got \(2,\)"):
        with final_block_at(model.backbone, torch.zeros(2, dtype=torch.long)):
            pass
    with pytest.raises(ValueError, match="matching the key mask's batch"):
        with final_block_at(model.backbone, torch.zeros(2, 1, dtype=torch.long), torch.ones(3, 12)):
            pass
    assert "forward" not in vars(final)
    inputs, mask = _batch("right")
    hidden = model(inputs, attention_mask=mask, output_hidden_states=True).last_hidden_state  # the full path: every position
    assert hidden.shape == (4, 12, model.backbone.config.hidden_size)

    mistral = FPTModel.from_pretrained(tiny_backbone_dirs["mistral"], input_dim=5, num_labels=3)  # sliding window: not known
    assert not supports_final_block_at(mistral.backbone) and not mistral._final_block_at
    assert mistral(inputs, attention_mask=mask).logits.shape == (4, 3)
    with pytest.raises(ValueError, match="does not know MistralDecoderLayer"):
        with final_block_at(mistral.backbone, torch.zeros(4, 1, dtype=torch.long)):
            pass


def test_the_final_blocks_hooks_and_checkpointing_still_run(tiny_backbone_dirs):
    """Only the block's forward is replaced: hooks on the block (FSDP's gather works so) fire, and with activation
    checkpointing on (selective, the training default; transformers checkpoints the class's forward, so the pruned final
    block itself is not recomputed) the gradients are the full path's."""
    from fpt_hf.checkpointing import selective_checkpointing_kwargs

    torch.manual_seed(0)
    model = FPTModel.from_pretrained(tiny_backbone_dirs["llama"], input_dim=5, num_labels=3)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
    model.train()
    calls = []
    find_blocks(model.backbone)[1][-1].register_forward_pre_hook(lambda module, args: calls.append(args[0].shape))
    inputs, mask = _batch("right")
    labels = torch.tensor([0, 1, 2, 0])
    pruned, pruned_grads = _logits_and_grads(model, inputs, mask, labels, prune=True)
    full, full_grads = _logits_and_grads(model, inputs, mask, labels, prune=False)
    assert len(calls) == 2  # the hook fired in the pruned and in the full forward
    torch.testing.assert_close(pruned, full, rtol=1e-5, atol=1e-6)
    for name in full_grads:
        torch.testing.assert_close(pruned_grads[name], full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_prune_final_block_is_a_config_switch(tiny_backbone_dirs, tmp_path):
    from fpt_hf import FPTConfig

    with pytest.raises(ValueError, match="prune_final_block must be True or False"):
        FPTConfig(backbone="gpt2", input_dim=2, num_labels=2, prune_final_block="yes")
    torch.manual_seed(0)
    model = FPTModel.from_pretrained(tiny_backbone_dirs["gpt2"], input_dim=5, num_labels=3, prune_final_block=False)
    model.save_pretrained(tmp_path / "m")
    assert FPTModel.from_pretrained(tmp_path / "m").config.prune_final_block is False


def test_head_features_are_the_pooled_hidden_states(tiny_backbone_dirs):
    """`head_features` (pruned where it can; what reservoir.extract_features caches) equals pooling the full hidden states."""
    from fpt_hf.heads import pool
    from fpt_hf.reservoir import extract_features

    torch.manual_seed(0)
    model = FPTModel.from_pretrained(tiny_backbone_dirs["gpt2"], input_dim=5, num_labels=3, policy="output_only", sink_tokens=1).eval()
    inputs, mask = _batch("left")
    with torch.no_grad():
        full = pool(model.config, model(inputs, attention_mask=mask, output_hidden_states=True).last_hidden_state.float(), mask)
        torch.testing.assert_close(model.head_features(inputs, mask), full, rtol=1e-5, atol=1e-6)
    rows = [{"inputs": x.numpy(), "labels": i % 3} for i, x in enumerate(inputs)]
    cached, labels = extract_features(model, rows, batch_size=4)
    torch.testing.assert_close(cached, pool(model.config, model(inputs, output_hidden_states=True).last_hidden_state.float(), None),
                               rtol=1e-5, atol=1e-6)
    assert labels.tolist() == [0, 1, 2, 0]
