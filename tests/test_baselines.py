import torch
from torch import nn

from fpt_hf import LSTMBaseline, LSTMConfig


def test_lstm_matches_a_manual_stack_and_learns():
    config = LSTMConfig(input_dim=3, num_labels=2, hidden_size=16, num_layers=3)
    model = LSTMBaseline(config).eval()
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        h = model.input_layer(x)
        for lstm, norm in zip(model.lstms, model.norms):
            h = norm(lstm(h)[0])
        torch.testing.assert_close(model(inputs=x).logits, model.head.proj(h[:, -1]))
    assert sum(isinstance(m, nn.LSTM) for m in model.modules()) == 3
    assert sum(isinstance(m, nn.LayerNorm) for m in model.modules()) == 3


def test_lstm_padding_and_save_round_trip(tmp_path):
    model = LSTMBaseline(LSTMConfig(vocab_size=7, num_labels=3, hidden_size=8)).eval()
    ids = torch.randint(0, 7, (1, 4))
    padded = torch.cat([ids, torch.zeros(1, 2, dtype=torch.long)], 1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(model(inputs=padded, attention_mask=mask).logits, model(inputs=ids).logits)
    model.save_pretrained(tmp_path / "lstm")
    loaded = LSTMBaseline.from_pretrained(tmp_path / "lstm").eval()
    with torch.no_grad():
        assert torch.equal(loaded(inputs=ids).logits, model(inputs=ids).logits)


def test_lstm_bad_specs():
    import pytest

    with pytest.raises(ValueError, match="exactly one of input_dim"):
        LSTMConfig(input_dim=3, vocab_size=5)
    with pytest.raises(ValueError, match="needs input_dim"):
        LSTMBaseline(LSTMConfig(num_labels=2))
    model = LSTMBaseline(LSTMConfig(input_dim=3, num_labels=2, hidden_size=8))
    with pytest.raises(ValueError, match=r"shape \(batch, seq_len, 3\)"):
        model(inputs=torch.randn(1, 4, 5))
