import pytest
import torch

from fpt_hf import FPTModel
from fpt_hf.reservoir import FeatureDataset, extract_features, train_head
from fpt_hf.tasks import get_task


def test_cached_head_training_equals_training_through_the_backbone(gpt2_dir):
    data = get_task("bit_xor").load(sizes={"train": 64, "validation": 8, "test": 8})["train"]
    cached = FPTModel.from_pretrained(gpt2_dir, policy="output_only", **get_task("bit_xor").model_kwargs())
    direct = FPTModel.from_pretrained(gpt2_dir, policy="output_only", **get_task("bit_xor").model_kwargs())
    direct.load_state_dict(cached.state_dict())
    features, labels = extract_features(cached, data, batch_size=16)
    assert features.shape == (64, 5, 32) and labels.shape == (64, 5)
    losses = train_head(cached, features, labels, epochs=2, batch_size=16, seed=3)

    # the same optimisation, but every step runs the full model forward/backward
    from fpt_hf.collator import FPTDataCollator

    batch = FPTDataCollator()([data[i] for i in range(64)])
    optimizer = torch.optim.Adam(direct.head.parameters(), lr=1e-3)
    direct.eval()
    generator = torch.Generator().manual_seed(3)
    direct_losses = []
    for _ in range(2):
        for index in torch.randperm(64, generator=generator).split(16):
            loss = direct(inputs=batch["inputs"][index], labels=batch["labels"][index]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(direct.head.parameters()), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            direct_losses.append(loss.item())
    assert losses == pytest.approx(direct_losses, rel=1e-5)
    for a, b in zip(cached.head.parameters(), direct.head.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_caching_refuses_models_that_train_before_the_head(gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=1, num_labels=2)
    with pytest.raises(ValueError, match="only when nothing before the head trains"):
        extract_features(model, [])


def test_forward_on_cached_features_matches_and_checks(gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, policy="output_only", input_dim=3, num_labels=4).eval()
    x = torch.randn(5, 7, 3)
    features, _ = extract_features(model, [{"inputs": row, "labels": 0} for row in x], batch_size=2)
    torch.testing.assert_close(model(features=features).logits, model(inputs=x).logits)
    with pytest.raises(ValueError, match="either `inputs` or cached `features`"):
        model(inputs=x, features=features)
    with pytest.raises(ValueError, match=r"shape \(batch, 32\), got \(5, 31\)"):
        model(features=features[:, :31])
    with pytest.raises(ValueError, match="needs `inputs`"):
        model()
    fpt = FPTModel.from_pretrained(gpt2_dir, input_dim=3, num_labels=4)
    with pytest.raises(ValueError, match="exact only for output_only models"):
        fpt(features=features)


def test_feature_dataset_rows_and_length_check():
    rows = FeatureDataset(torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 0]))
    assert len(rows) == 3 and torch.equal(rows[1]["features"], torch.tensor([2.0, 3.0])) and rows[1]["labels"] == 1
    with pytest.raises(ValueError, match="3 feature rows but 2 labels"):
        FeatureDataset(torch.zeros(3, 2), torch.zeros(2))
