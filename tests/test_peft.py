"""The FPT trainable set through peft: same parameters, same logits after an adapter round trip."""

import pytest
import torch
from peft import PeftModel, get_peft_model

from fpt_hf import FPTModel, fpt_peft_config


def _strip(name):
    # peft wraps targets: `...ln_1.weight` -> `...ln_1.ln_tuning_layers.default.weight`,
    # modules_to_save -> `...head.modules_to_save.default.proj.weight`
    name = name.replace("base_model.model.", "")
    for wrapper in (".ln_tuning_layers.default", ".modules_to_save.default"):
        name = name.replace(wrapper, "")
    return name


@pytest.mark.parametrize("sink_tokens", [0, 1])
def test_peft_adapter_matches_fpt_policy(sink_tokens, gpt2_dir, tmp_path):
    kwargs = dict(input_dim=4, num_labels=3, sink_tokens=sink_tokens)
    reference = FPTModel.from_pretrained(gpt2_dir, **kwargs)
    fpt_trainable = {n: p.numel() for n, p in reference.named_parameters() if p.requires_grad}

    base = FPTModel.from_pretrained(gpt2_dir, **kwargs)
    peft_model = get_peft_model(base, fpt_peft_config(base))
    peft_trainable = {_strip(n): p.numel() for n, p in peft_model.named_parameters() if p.requires_grad}
    assert peft_trainable == fpt_trainable

    # train one step, save the adapter, load it onto a fresh backbone copy
    optimizer = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    x, y = torch.randn(4, 6, 4), torch.tensor([0, 1, 2, 1])
    peft_model(inputs=x, labels=y).loss.backward()
    optimizer.step()
    if sink_tokens:  # forward reads the adapter's trained copy of the sink, not the frozen original
        wrapper = peft_model.base_model.model.sink_embeddings
        assert wrapper.weight.requires_grad and not torch.equal(wrapper.weight, wrapper.original_module.weight)
    peft_model.eval()
    peft_model.save_pretrained(tmp_path / "adapter")
    fresh = FPTModel.from_pretrained(gpt2_dir, **kwargs)
    loaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        expected = peft_model(inputs=x).logits
        torch.testing.assert_close(loaded(inputs=x).logits, expected, rtol=0, atol=0)
        # and the step really changed the model
        assert not torch.allclose(FPTModel.from_pretrained(gpt2_dir, **kwargs).eval()(inputs=x).logits, expected)
