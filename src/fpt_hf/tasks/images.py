"""MNIST, CIFAR-10 and CIFAR-10 LRA as patch sequences; CIFAR augmentation on the fly (torch only)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Array2D, ClassLabel, DatasetDict, Features, Value

from .base import PaperRecipe, Task
from .local_data import load_parquet_splits

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """`(N, H, W, C)` -> `(N, (H/patch) * (W/patch), patch * patch * C)`; patches in row-major order,
    each flattened as (row, col, channel)."""
    n, h, w, c = images.shape
    if h % patch or w % patch:
        raise ValueError(f"Image size {(h, w)} is not divisible by the patch size {patch}.")
    x = images.reshape(n, h // patch, patch, w // patch, patch, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, (h // patch) * (w // patch), patch * patch * c)


def augmentation_draws(n: int, generator: torch.Generator, pad: int = 4) -> tuple[torch.Tensor, ...]:
    """The random numbers `augment` uses for a batch of `n` images, in the order it draws them: crop offsets `dy`, `dx`,
    flip uniforms, angle uniforms. `ImageTransform.restart` replays them to skip batches without images."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    return dy, dx, torch.rand(n, generator=generator), torch.rand(n, generator=generator)


def augment(
    images: torch.Tensor, generator: torch.Generator, pad: int = 4, max_degrees: float = 20.0, interpolation: str = "bilinear"
) -> torch.Tensor:
    """The paper's CIFAR augmentation on a batch `(N, H, W, C)` in [0, 1]: random crop after zero-padding by
    `pad`, horizontal flip with p=0.5, rotation by a uniform angle in [-max_degrees, max_degrees] resampled with
    `interpolation` ("bilinear", or "nearest" as torchvision's RandomRotation in the original code)."""
    n, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2)  # N C H W
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx, flip_u, angle_u = augmentation_draws(n, generator, pad)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # N 1 H 1
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # N 1 1 W
    x = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    flip = flip_u < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    angle = (angle_u * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return x.permute(0, 2, 3, 1)


class ImageTransform:
    """Batched `set_transform` function: raw pixel bytes -> normalised patch tokens (`inputs`) + `labels`."""

    def __init__(self, shape, patch, mean, std, pad_to=None, luma=None, augment=False, seed=0, interpolation="bilinear"):
        """`luma`: RGB weights that turn the image grayscale (None keeps its channels)."""
        self.shape, self.patch, self.pad_to, self.augment, self.interpolation = tuple(shape), patch, pad_to, augment, interpolation
        self.luma = None if luma is None else torch.tensor(luma)
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)
        self.seed, self.generator = seed, torch.Generator().manual_seed(seed)

    def restart(self, skipped_batches: list[int] = ()) -> None:
        """Restart the augmentation stream from its seed, then draw what `skipped_batches` (their sizes, in order) would
        have drawn: a run resumed after those batches, which the Trainer skips without transforming them, goes on with
        the draws an uninterrupted run makes (`callbacks.RestartAugmentation` calls this as training begins)."""
        self.generator.manual_seed(self.seed)
        if self.augment:
            for n in skipped_batches:
                augmentation_draws(n, self.generator)

    def __call__(self, batch: dict) -> dict:
        pixels = np.frombuffer(b"".join(batch["pixels"]), dtype=np.uint8).reshape(-1, *self.shape)
        x = torch.from_numpy(pixels.copy()).float().div_(255.0)
        if self.pad_to is not None:
            extra = self.pad_to - x.shape[1]
            x = F.pad(x, (0, 0, extra // 2, extra - extra // 2, extra // 2, extra - extra // 2))
        if self.augment:
            x = augment(x, self.generator, interpolation=self.interpolation)
        if self.luma is not None:
            x = (x * self.luma).sum(-1, keepdim=True)
        x = (x - self.mean) / self.std
        return {"inputs": patchify(x, self.patch), "labels": torch.as_tensor(batch["label"])}


class _ImageTask(Task):
    materializable = True
    protocols = ("default", "paper")
    hub_id: str
    folder: str
    image_column: str
    class_names: list[str]
    shape: tuple[int, int, int]  # stored H, W, C
    source_splits = {"train": "train", "test": "test"}
    recipe = PaperRecipe(learning_rate=1e-3, batch_size=16)

    def transform_kwargs(self, protocol: str = "default", **options) -> dict:
        raise NotImplementedError

    def load(
        self, data_dir=None, validation_size: int = 5000, seed: int = 0, augment: bool | None = None, materialize: bool = False,
        augment_seed: int | None = None, protocol: str = "default", **options,
    ) -> DatasetDict:
        """Images decoded once to raw pixels (cached by datasets), patched on access with `set_transform`.

        `validation_size` training images (seeded) are held out for model selection; the paper's
        number is on `test`. `augment` defaults to the task's choice (`recipe.augmentation`; under
        `protocol="paper"` the original code's, which also augments CIFAR-10 LRA); it applies to `train` only, drawn
        from `augment_seed` (default: `seed`; training scripts pass the training seed, so seeds differ in augmentation
        too). `protocol="paper"` takes the original code's preprocessing (see `transform_kwargs`).
        `materialize=True` stores the (unaugmented) patch tokens as an `inputs` column instead.
        """
        self.check_protocol(protocol)
        raw = load_parquet_splits(self.hub_id, data_dir, self.folder, self.source_splits, {self.image_column, "label"})
        features = Features({"pixels": Value("binary"), "label": ClassLabel(names=self.class_names)})
        decoded = raw.map(
            self._decode, batched=True, batch_size=1000, remove_columns=raw["train"].column_names, features=features,
            desc=f"decoding {self.name} images",
        )
        if validation_size:
            parts = decoded["train"].train_test_split(test_size=validation_size, seed=seed, stratify_by_column="label")
            decoded = DatasetDict({"train": parts["train"], "validation": parts["test"], "test": decoded["test"]})
        augment = self.augmented(protocol, augment)
        kwargs = self.transform_kwargs(protocol=protocol, **options)
        if materialize:
            transform = ImageTransform(self.shape, **kwargs)
            tokens = transform({"pixels": [decoded["test"][0]["pixels"]], "label": [0]})["inputs"].shape[1:]
            features = Features({"inputs": Array2D(tuple(tokens), "float32"), "labels": ClassLabel(names=self.class_names)})
            return decoded.map(
                lambda b: {k: v.numpy() for k, v in transform(b).items()}, batched=True, remove_columns=["pixels", "label"],
                features=features, desc=f"patching {self.name}",
            ).with_format("numpy")
        for split, ds in decoded.items():
            ds.set_transform(ImageTransform(self.shape, augment=augment and split == "train", seed=seed if augment_seed is None else augment_seed, **kwargs))
        return decoded

    def augmented(self, protocol: str = "default", augment: bool | None = None) -> bool:
        if augment is not None:
            return augment
        return self.paper_augmentation if protocol == "paper" else self.recipe.augmentation

    def _decode(self, batch):
        arrays = [np.asarray(image.convert("RGB" if self.shape[2] == 3 else "L")) for image in batch[self.image_column]]
        for a in arrays:
            if a.shape[:2] != self.shape[:2]:
                raise ValueError(f"{self.name} images must be {self.shape[0]}x{self.shape[1]}, got {a.shape[1]}x{a.shape[0]}.")
        return {"pixels": [a.tobytes() for a in arrays], "label": batch["label"]}


class MNIST(_ImageTask):
    max_tokens = 64
    name = "mnist"
    description = "MNIST digits as a sequence of 4x4 patches (image zero-padded to 32x32 as in the paper)."
    token_layout = "64 tokens x 16 (4x4 patches of the 32x32-padded image); 49 x 16 with pad_to_32=False or protocol='paper'"
    num_labels = 10
    data_source = "ylecun/mnist"
    hub_id, folder, image_column = "ylecun/mnist", "mnist", "image"
    class_names = [str(i) for i in range(10)]
    shape = (28, 28, 1)
    license = "MIT (per the Hub dataset card)"
    citation = "LeCun et al., Gradient-based learning applied to document recognition, 1998"
    normalization = "pixels / 255, then (x - 0.1307) / 0.3081 (protocol 'paper': 28x28 -> 49 tokens, pixels / 255 only)"
    paper_augmentation = False

    def transform_kwargs(self, protocol: str = "default", pad_to_32: bool | None = None):
        if protocol == "paper":  # the original code: 28x28 -> 7x7 patches, values in [0, 1]
            return {"patch": 4, "mean": [0.0], "std": [1.0], "pad_to": 32 if pad_to_32 else None}
        return {"patch": 4, "mean": [0.1307], "std": [0.3081], "pad_to": None if pad_to_32 is False else 32}

    def model_kwargs(self, **options):
        return {"input_dim": 16, "num_labels": 10, **self.label_kwargs()}


class CIFAR10(_ImageTask):
    max_tokens = 64
    name = "cifar10"
    description = "CIFAR-10 as a sequence of 4x4x3 patches; paper augmentation on the training split."
    token_layout = "64 tokens x 48 (4x4 RGB patches)"
    num_labels = 10
    data_source = "uoft-cs/cifar10"
    hub_id, folder, image_column = "uoft-cs/cifar10", "cifar10", "img"
    class_names = CIFAR10_CLASSES
    shape = (32, 32, 3)
    recipe = PaperRecipe(learning_rate=1e-3, batch_size=16, augmentation=True)
    license = "MIT-style (Krizhevsky 2009; see the Hub dataset card)"
    citation = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009"
    normalization = ("pixels / 255, then per channel (x - (0.4914, 0.4822, 0.4465)) / (0.2470, 0.2435, 0.2616), the measured "
                     "std (protocol 'paper': the original code's widely copied (0.2023, 0.1994, 0.2010))")
    paper_augmentation = True

    def transform_kwargs(self, protocol: str = "default"):
        if protocol == "paper":
            return {"patch": 4, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010], "interpolation": "nearest"}
        return {"patch": 4, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}

    def model_kwargs(self, **options):
        return {"input_dim": 48, "num_labels": 10, **self.label_kwargs()}


class CIFAR10LRA(CIFAR10):
    max_tokens = 1024
    name = "cifar10_lra"
    description = ("CIFAR-10 as in Long Range Arena: grayscale, one pixel per token (1024 tokens); no augmentation by default "
                   "(LRA's setting), the original FPT code's crop/flip/rotate with augment=True or protocol='paper'.")
    token_layout = "1024 tokens x 1 (grayscale pixels)"
    recipe = PaperRecipe(learning_rate=1e-3, batch_size=16, augmentation=False)
    paper_augmentation = True  # the original FPT code augments this task too (its data_aug=True default)
    normalization = ("luma 0.299R + 0.587G + 0.114B of pixels / 255, then (x - 0.4808) / 0.2388 (protocol 'paper': "
                     "luma 0.2989R + 0.587G + 0.114B, then (x - 0.5) / 0.5, as torchvision's Grayscale + Normalize)")

    def transform_kwargs(self, protocol: str = "default"):
        if protocol == "paper":
            return {"patch": 1, "mean": [0.5], "std": [0.5], "luma": (0.2989, 0.587, 0.114), "interpolation": "nearest"}
        return {"patch": 1, "mean": [0.4808], "std": [0.2388], "luma": (0.299, 0.587, 0.114)}

    def model_kwargs(self, **options):
        return {"input_dim": 1, "num_labels": 10, **self.label_kwargs()}
