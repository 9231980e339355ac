"""Bit memory and bit XOR (generated), exactly as in the FPT paper."""

from __future__ import annotations

import numpy as np
from datasets import Array2D, ClassLabel, Dataset, DatasetDict, Features, IterableDataset, Sequence

from .base import PaperRecipe, Task, split_seeds


def generate_bit_xor(n: int, seed: int, n_bits: int = 5) -> dict[str, np.ndarray]:
    """Two random `n_bits` strings fed one bit per token; targets are their XOR.

    Returns `inputs` `(n, 2 * n_bits, 1)` int8 in {0, 1} and `labels` `(n, n_bits)` int8.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, size=(n, n_bits), dtype=np.int8)
    b = rng.integers(0, 2, size=(n, n_bits), dtype=np.int8)
    return {"inputs": np.concatenate([a, b], axis=1)[..., None], "labels": a ^ b}


def generate_bit_memory(
    n: int, seed: int, n_patterns: int = 5, n_bits: int = 1000, patch: int = 50, mask_p: float = 0.5
) -> dict[str, np.ndarray]:
    """`n_patterns` random +-1 bitstrings, then a query: one of them with each bit zeroed with p=`mask_p`.

    The sequence (patterns then query) is cut into patches of `patch` bits: `inputs` is
    `(n, (n_patterns + 1) * n_bits / patch, patch)` int8; `labels` `(n, n_bits)` are the queried
    pattern's bits as classes {0, 1} (0 for -1), predicted from the last `n_bits / patch` tokens.
    """
    rng = np.random.default_rng(seed)
    patterns = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, n_patterns, n_bits))
    which = rng.integers(0, n_patterns, size=n)
    target = patterns[np.arange(n), which]
    query = np.where(rng.random((n, n_bits)) < mask_p, 0, target).astype(np.int8)
    sequence = np.concatenate([patterns.reshape(n, -1), query], axis=1)
    return {"inputs": sequence.reshape(n, -1, patch), "labels": ((target + 1) // 2).astype(np.int8)}


class _BitTask(Task):
    generated = True
    streamable = True
    sizes = {"train": 20_000, "validation": 1_000, "test": 1_000}
    chunk = 1_000  # rows per generated chunk of the endless stream

    def _generate(self, n: int, seed: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def features(self) -> Features:
        shape = self._generate(1, 0)["inputs"].shape[1:]
        return Features(
            {
                "inputs": Array2D(shape, "int8"),
                "labels": Sequence(ClassLabel(names=["0", "1"]), length=self.n_targets),
            }
        )

    def load(
        self, data_dir=None, seed: int = 0, sizes: dict | None = None, streaming_train: bool = False, stream_seed: int | None = None
    ) -> DatasetDict:
        """Generate the splits. Same seed -> identical data. `streaming_train=True` makes `train` an endless
        `IterableDataset` of fresh examples (the paper samples new bits every batch); `stream_seed` (e.g. the
        training seed) draws another stream over the same held-out splits."""
        sizes = {**self.sizes, **(sizes or {})}
        seeds = dict(zip(("train", "validation", "test"), split_seeds(seed, 3)))
        features = self.features()
        out = {}
        for split, n in sizes.items():
            if split == "train" and streaming_train:
                stream = seeds[split] if stream_seed is None else int(np.random.SeedSequence([seeds[split], stream_seed]).generate_state(1)[0])
                out[split] = IterableDataset.from_generator(self._stream, features=features, gen_kwargs={"seed": stream})
            else:
                out[split] = Dataset.from_dict(self._generate(n, seeds[split]), features=features).with_format("numpy")
        return DatasetDict(out)

    def _stream(self, seed: int):
        for chunk_seed in split_seeds_forever(seed):
            data = self._generate(self.chunk, chunk_seed)
            for inputs, labels in zip(data["inputs"], data["labels"]):
                yield {"inputs": inputs, "labels": labels}


def split_seeds_forever(seed: int):
    sequence = np.random.SeedSequence(seed)
    while True:
        yield int(sequence.spawn(1)[0].generate_state(1)[0])


class BitXOR(_BitTask):
    max_tokens = 10
    name = "bit_xor"
    description = "Two 5-bit strings, one bit per token; predict their elementwise XOR from the last 5 tokens."
    token_layout = "10 tokens x 1 (bits in {0, 1}); 5 output bits read from the last 5 tokens"
    num_labels = 2
    n_targets = 5
    data_source = "generated"
    sizes = {"train": 10_000, "validation": 1_000, "test": 1_000}

    def _generate(self, n, seed):
        return generate_bit_xor(n, seed)

    def model_kwargs(self, **options):
        return {"input_dim": 1, "num_labels": 2, "output_mode": "tokens", "num_output_tokens": 5, "predictions_per_token": 1}


class BitMemory(_BitTask):
    max_tokens = 120
    name = "bit_memory"
    description = (
        "Five 1000-bit +-1 patterns, then a query (one pattern with each bit zeroed with p=0.5); "
        "recall the queried pattern. Patches of 50 bits."
    )
    token_layout = "120 tokens x 50 (6 bitstrings x 20 patches); 1000 output bits read from the last 20 tokens"
    num_labels = 2
    n_targets = 1000
    data_source = "generated"
    sizes = {"train": 20_000, "validation": 1_000, "test": 1_000}
    chunk = 200

    def _generate(self, n, seed):
        return generate_bit_memory(n, seed)

    def model_kwargs(self, **options):
        return {"input_dim": 50, "num_labels": 2, "output_mode": "tokens", "num_output_tokens": 20, "predictions_per_token": 50}


BitMemory.recipe = PaperRecipe(learning_rate=1e-3, batch_size=16)
BitXOR.recipe = PaperRecipe(learning_rate=1e-3, batch_size=16)
