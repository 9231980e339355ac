"""Batching task rows for FPT models: stack fixed-length tokens, right-pad variable-length ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _integers(values: torch.Tensor, what: str) -> torch.Tensor:
    """`values` as int64 when that loses nothing (integers, bools, whole finite floats); a `ValueError` otherwise."""
    if values.is_complex():
        raise ValueError(f"{what} must be integers, got a {values.dtype} tensor.")
    if values.is_floating_point():
        lossy = values[~torch.isfinite(values) | (values != values.round())]
        if lossy.numel():
            raise ValueError(f"{what} must be integers, got {values.dtype} values such as {lossy[:3].tolist()}; "
                             "casting them to int64 would change them.")
    return values.long()


@dataclass
class FPTDataCollator:
    """Turn a list of rows `{"inputs", "labels"}` into `inputs` / `attention_mask` / `labels` tensors.

    Token-id rows (1-D integers) of different lengths are right-padded with `pad_id` and get an `attention_mask`;
    continuous rows (2-D, `(tokens, features)`) are stacked as float32. Only lossless casts: a float label or token id
    with a fraction raises `ValueError` instead of being truncated. Works with `Trainer(data_collator=...)` and DataLoaders.
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
        labels = [torch.as_tensor(np.asarray(row["labels"])) for row in rows]
        if len({tuple(y.shape) for y in labels}) > 1:
            raise ValueError(f"Every row's labels must have one shape to be stacked; this batch has {sorted({tuple(y.shape) for y in labels})}.")
        labels = _integers(torch.stack(labels), "labels (class indices)")
        if any(x.dim() == 2 for x in inputs):
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) > 1:
                raise ValueError(f"Continuous rows must share one (tokens, features) shape to be stacked; this batch has {sorted(shapes)}.")
            return {"inputs": torch.stack(inputs).float(), "labels": labels}
        if any(x.dim() != 1 for x in inputs):
            raise ValueError(f"Rows' inputs must be 1-D token ids or 2-D (tokens, features); got shapes {sorted({tuple(x.shape) for x in inputs})}.")
        inputs = [_integers(x, "token-id inputs (1-D rows)") for x in inputs]
        lengths = torch.tensor([len(x) for x in inputs])
        longest = int(lengths.max())
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = torch.full((len(inputs), longest), self.pad_id, dtype=torch.long)
        for i, x in enumerate(inputs):
            batch[i, : len(x)] = x
        mask = (torch.arange(longest)[None, :] < lengths[:, None]).long()
        return {"inputs": batch, "attention_mask": mask, "labels": labels}
