"""Batching task rows for FPT models: stack fixed-length tokens, right-pad variable-length ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class FPTDataCollator:
    """Turn a list of rows `{"inputs", "labels"}` into `inputs` / `attention_mask` / `labels` tensors.

    Token-id rows (1-D) of different lengths are right-padded with `pad_id` and get an `attention_mask`;
    continuous rows (2-D) are stacked as float32. Works with `Trainer(data_collator=...)` and DataLoaders.
    """

    pad_id: int = 0
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("Cannot collate an empty batch.")
        missing = {"inputs", "labels"} - set(rows[0])
        if missing:
            raise ValueError(f"Rows must have 'inputs' and 'labels', missing {sorted(missing)} (got keys {sorted(rows[0])}).")
        inputs = [torch.as_tensor(np.asarray(row["inputs"])) for row in rows]
        labels = torch.stack([torch.as_tensor(np.asarray(row["labels"])) for row in rows]).long()
        if inputs[0].is_floating_point() or inputs[0].dim() == 2:
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) > 1:
                raise ValueError(f"Continuous rows must share one (tokens, features) shape to be stacked; this batch has {sorted(shapes)}.")
            return {"inputs": torch.stack(inputs).float(), "labels": labels}
        lengths = torch.tensor([len(x) for x in inputs])
        longest = int(lengths.max())
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = torch.full((len(inputs), longest), self.pad_id, dtype=torch.long)
        for i, x in enumerate(inputs):
            batch[i, : len(x)] = x
        mask = (torch.arange(longest)[None, :] < lengths[:, None]).long()
        return {"inputs": batch, "attention_mask": mask, "labels": labels}
