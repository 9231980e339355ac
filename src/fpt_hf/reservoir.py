"""Output-only FPT as reservoir computing: when only the output layer trains, the frozen features never
change, so compute them once and train the head on the cache (exact, and orders of magnitude faster)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from .collator import FPTDataCollator
from .heads import checked_batch, classification_loss
from .modeling_fpt import FPTModel


@torch.no_grad()
def extract_features(model: FPTModel, dataset, batch_size: int = 64, collator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's inputs for every row of `dataset` (eval mode): `(N, H)` or `(N, k, H)`, and the labels."""
    model.check_features_cacheable()
    was_training = model.training
    model.eval()
    features, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator or FPTDataCollator()):
        inputs, mask = batch["inputs"], batch.get("attention_mask")
        if model.config.validate_inputs:
            inputs, mask, _ = checked_batch(model.config, inputs, mask, None, model.max_length)
        features.append(model.head_features(inputs, mask))
        labels.append(batch["labels"])
    model.train(was_training)
    return torch.cat(features), torch.cat(labels)


class FeatureDataset(torch.utils.data.Dataset):
    """Cached head inputs as rows `{"features", "labels"}`: a `Trainer` trains an output_only `FPTModel` on them
    (`model(features=...)`), so checkpoints, metrics and evaluation stay the usual ones."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor):
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows but {len(labels)} labels.")
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[index], "labels": self.labels[index]}


def cache_features(model: FPTModel, splits: dict, batch_size: int = 64) -> dict[str, FeatureDataset]:
    """`extract_features` for every split of a `DatasetDict` (or dict of datasets)."""
    return {name: FeatureDataset(*extract_features(model, data, batch_size=batch_size)) for name, data in splits.items()}


def train_head(model: FPTModel, features: torch.Tensor, labels: torch.Tensor, epochs: int = 1, batch_size: int = 32,
               learning_rate: float = 1e-3, max_grad_norm: float | None = 1.0, seed: int = 0, optimizer=None) -> list[float]:
    """Train `model.head` in place on cached features (Adam, shuffled mini-batches); returns the batch losses."""
    model.check_features_cacheable()
    params = list(model.head.parameters())
    optimizer = optimizer or torch.optim.Adam(params, lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        for index in torch.randperm(len(features), generator=generator).split(batch_size):
            loss = classification_loss(model.head(features[index]), labels[index])
            loss.backward()
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    return losses
