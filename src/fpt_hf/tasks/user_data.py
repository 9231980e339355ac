"""A user's own data as an FPT task: a Parquet folder, a `save_to_disk` folder or a Hub dataset id whose rows hold a
sequence of continuous tokens (`(tokens, features)` floats) or token ids, and an integer class label."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from datasets import ClassLabel, DatasetDict, Value, load_dataset, load_from_disk

from .base import Task

VALIDATION_FRACTION = 0.1  # of train, held out for checkpoint selection when the data has no validation split


def _read(source: str) -> DatasetDict:
    path = Path(source)
    if path.is_dir():
        data = load_from_disk(str(path)) if (path / "dataset_dict.json").exists() else load_dataset(str(path))
    elif path.exists():
        raise ValueError(f"--dataset {source!r} is a file; expected a folder (Parquet files or datasets' save_to_disk) or a Hub id.")
    else:
        try:
            data = load_dataset(source)
        except Exception as err:  # not a folder, and the Hub does not know it or cannot be reached
            raise ValueError(f"--dataset {source!r} is neither a local folder nor a loadable Hub dataset ({type(err).__name__}: {err}).") from err
    if not isinstance(data, DatasetDict):
        raise ValueError(f"--dataset {source!r} holds a single split; save it as a DatasetDict with 'train' and 'test' splits.")
    return data


class DatasetTask(Task):
    """Classification of whole sequences from a user's dataset (splits `train`, `test` and optionally `validation`)."""

    seeded = True
    eval_split = "test"
    reported_splits = ("test",)

    def __init__(self, source: str, input_column: str = "inputs", label_column: str = "labels"):
        self.source, self.input_column, self.label_column = source, input_column, label_column
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source.rstrip("/")).name) or "dataset"
        self.description = f"user data from {source}"
        self.data_source = source
        raw = _read(source)
        missing = {"train", "test"} - set(raw)
        if missing:
            raise ValueError(f"--dataset {source!r} needs 'train' and 'test' splits (optionally 'validation'); it has {sorted(raw)}.")
        for split, ds in raw.items():
            absent = [c for c in (input_column, label_column) if c not in ds.column_names]
            if absent:
                raise ValueError(f"--dataset {source!r} split {split!r} has no column {absent[0]!r} (columns: {ds.column_names}); "
                                 "name yours with --input_column / --label_column.")
            label = ds.features[label_column]
            if not (isinstance(label, ClassLabel) or (isinstance(label, Value) and label.dtype.startswith(("int", "uint")))):
                raise ValueError(f"--dataset {source!r}: labels ({label_column!r}) must be integer class ids, got {label}.")
        self.raw = raw
        shapes = self._row_shapes(raw)
        self.continuous = shapes["ndim"] == 2
        self.max_tokens = shapes["max_tokens"]
        self.variable_length = shapes["min_tokens"] != shapes["max_tokens"] or not self.continuous
        labels = np.concatenate([np.asarray(ds[label_column]) for ds in raw.values()])
        if labels.min() < 0:
            raise ValueError(f"--dataset {source!r}: labels must be class ids >= 0, got {labels.min()}.")
        self.num_labels = max(int(labels.max()) + 1, 2)
        label = raw["train"].features[label_column]
        if isinstance(label, ClassLabel):  # its names, and its classes even where no row holds the last ones
            if labels.max() >= label.num_classes:
                raise ValueError(f"--dataset {source!r}: labels ({label_column!r}) are a ClassLabel of {label.num_classes} classes, "
                                 f"but a row holds class {labels.max()}.")
            self.num_labels, self.class_names = max(label.num_classes, 2), list(label.names) if label.num_classes >= 2 else None
        self.feature_size = shapes["features"]
        self.vocab = shapes["vocab"]
        self.token_layout = (f"<= {self.max_tokens} tokens x {self.feature_size} features" if self.continuous
                             else f"<= {self.max_tokens} token ids (vocab {self.vocab})")

    def _row_shapes(self, raw: DatasetDict) -> dict:
        """Scan every row once: continuous rows must be finite and share their feature size, token ids must be non-negative ints."""
        ndims, features, lengths, vocab = set(), set(), [], 0
        for split, ds in raw.items():
            for start in range(0, len(ds), 1000):
                for i, row in enumerate(ds[start:start + 1000][self.input_column], start=start):
                    array = np.asarray(row)
                    if array.dtype == object or array.ndim not in (1, 2):
                        raise ValueError(f"--dataset {self.source!r} split {split!r} row {i}: {self.input_column!r} must be a list of "
                                         "token ids or a (tokens, features) array of floats with one feature size; got a ragged "
                                         f"or {array.ndim}-d value.")
                    if array.shape[0] == 0:
                        raise ValueError(f"--dataset {self.source!r} split {split!r} row {i}: an empty sequence.")
                    ndims.add(array.ndim)
                    lengths.append(array.shape[0])
                    if array.ndim == 2:
                        features.add(array.shape[1])
                        if not np.isfinite(array).all():  # found now, not at the batch that holds it hours into training
                            token, feature = np.argwhere(~np.isfinite(array))[0]
                            raise ValueError(f"--dataset {self.source!r} split {split!r} row {i}: inputs must be finite, got "
                                             f"{array[token, feature]} at token {token}, feature {feature}.")
                    else:
                        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
                            raise ValueError(f"--dataset {self.source!r} split {split!r} row {i}: 1-d inputs are token ids and must "
                                             f"be non-negative integers, got {array.dtype} values from {array.min()}.")
                        vocab = max(vocab, int(array.max()) + 1)
                    if len(ndims) > 1 or len(features) > 1:
                        raise ValueError(f"--dataset {self.source!r} split {split!r} row {i}: every row must have the same kind and "
                                         f"feature size; seen {sorted(features)} features per token and {sorted(ndims)}-d rows.")
        return {"ndim": ndims.pop(), "features": features.pop() if features else None, "vocab": vocab,
                "max_tokens": max(lengths), "min_tokens": min(lengths)}

    def load(self, data_dir=None, seed: int = 0, **options) -> DatasetDict:
        """The rows as `inputs` / `labels` (+ `length`), with a seeded validation split held out of train if absent."""
        def rename(ds):
            ds = ds.select_columns([self.input_column, self.label_column])
            if self.input_column != "inputs":
                ds = ds.rename_column(self.input_column, "inputs")
            if self.label_column != "labels":
                ds = ds.rename_column(self.label_column, "labels")
            return ds.map(lambda b: {"length": [len(x) for x in b["inputs"]]}, batched=True)

        data = DatasetDict({split: rename(ds) for split, ds in self.raw.items() if split in ("train", "validation", "test")})
        if "validation" not in data:
            parts = data["train"].train_test_split(test_size=max(1, round(VALIDATION_FRACTION * len(data["train"]))), seed=seed)
            data = DatasetDict({"train": parts["train"], "validation": parts["test"], "test": data["test"]})
        return data.with_format("numpy")

    def model_kwargs(self, **options) -> dict:
        kind = {"input_dim": self.feature_size} if self.continuous else {"vocab_size": self.vocab}
        return {**kind, "num_labels": self.num_labels, **self.label_kwargs()}
