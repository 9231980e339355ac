"""What every task knows: its data, its token layout, the model spec it needs, and the paper's recipe."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from datasets import DatasetDict


@dataclass(frozen=True)
class PaperRecipe:
    """Training hyperparameters of the FPT paper for one task (Adam, no schedule, clip 1.0)."""

    learning_rate: float = 1e-3
    batch_size: int = 16
    max_grad_norm: float = 1.0
    augmentation: bool = False


class Task:
    """Base class of the seven FPT tasks. Subclasses set the class attributes and implement `load`."""

    name: str
    description: str
    token_layout: str  # e.g. "64 tokens x 16 (4x4 patches of the 32x32-padded image)"
    num_labels: int
    data_source: str
    license: str = ""
    citation: str = ""
    recipe: PaperRecipe = PaperRecipe()
    splits: tuple[str, ...] = ("train", "validation", "test")
    eval_split: str = "test"  # the held-out split results are reported on (the headline number)
    reported_splits: tuple[str, ...] = ("test",)  # every split results report; never used to select a checkpoint
    metric: str = "accuracy"
    max_tokens: int = 0  # longest sequence the task produces
    variable_length: bool = False  # rows differ in length (token ids, right-padded per batch; a `length` column)
    seeded: bool = True  # load() takes seed=
    generated: bool = False  # load() takes sizes= (the data is generated)
    streamable: bool = False  # load() takes streaming_train= and stream_seed= (an endless training stream)
    truncatable: bool = False  # load() takes max_length= (sequences may be cut)
    too_long: str = "truncate"  # what load(max_length=) does with longer sequences: "truncate" them or "drop" the rows
    materializable: bool = False  # load() takes materialize= (tokens made on access; stored when True)
    # Data preprocessing choices load() and model_kwargs() take as protocol=: "default" is fpt-hf's, "paper" the
    # original code's where they differ (docs/protocol.md lists each difference).
    protocols: tuple[str, ...] = ("default",)
    class_names: list[str] | tuple[str, ...] | None = None  # the models' id2label (None: classes are only numbered)

    def augmented(self, protocol: str = "default", augment: bool | None = None) -> bool:
        """Whether training rows are augmented under these options (image tasks override)."""
        return False

    def check_protocol(self, protocol: str) -> None:
        if protocol not in self.protocols:
            raise ValueError(f"{self.name} has data protocols {list(self.protocols)}, got {protocol!r}.")

    def load_options(
        self, seed: int | None = None, train_size: int | None = None, max_length: int | None = None,
        streaming_train: bool = False, stream_seed: int | None = None, protocol: str = "default", augment: bool | None = None,
    ) -> dict:
        """Keyword arguments for `load` from the generic knobs, checked against what this task supports.
        `streaming_train`: fresh training examples every batch (the paper's bit tasks), drawn by `stream_seed`.
        `protocol`: the data preprocessing (`"default"` or, where it differs, the original code's `"paper"`).
        `augment`: turn the training augmentation on or off (image tasks; None = the task's choice)."""
        self.check_protocol(protocol)
        options = {"seed": seed} if seed is not None and self.seeded else {}
        if protocol != "default":
            options["protocol"] = protocol
        if augment is not None:
            if not self.materializable:
                raise ValueError(f"augment applies to the image tasks (mnist, cifar10, cifar10_lra); {self.name} has no augmentation.")
            options["augment"] = augment
        if streaming_train:
            if not self.streamable:
                raise ValueError(f"streaming_train applies to tasks generated without end (bit_memory, bit_xor); {self.name} is not.")
            if train_size is not None:
                raise ValueError(f"Give train_size or streaming_train, not both: a stream has no size (got train_size={train_size}).")
            options.update(streaming_train=True, stream_seed=stream_seed)
        if train_size is not None:
            if not self.generated:
                raise ValueError(f"train_size applies to generated tasks; {self.name} has a fixed training set.")
            options["sizes"] = {"train": train_size}
        if max_length is not None and self.max_tokens > max_length:
            if not self.truncatable:
                raise ValueError(f"{self.name} needs {self.max_tokens} tokens but the model takes at most {max_length}.")
            options["max_length"] = max_length
        return options

    def load(self, data_dir: str | None = None, **options) -> DatasetDict:
        """The task's data as a `DatasetDict` whose rows hold `inputs` and `labels` (model-ready)."""
        raise NotImplementedError

    def model_kwargs(self, **options) -> dict:
        """Keyword arguments for `FPTModel.from_pretrained(backbone, **task.model_kwargs())`."""
        raise NotImplementedError

    def label_kwargs(self) -> dict:
        """`id2label` from `class_names` (so checkpoints and the Hub name the classes), or nothing."""
        return {"id2label": dict(enumerate(self.class_names))} if self.class_names else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, tokens={self.token_layout!r}, classes={self.num_labels})"


def split_seeds(seed: int, n: int) -> list[int]:
    """Independent, reproducible seeds for the splits of a generated task."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


@dataclass
class TaskRegistry:
    tasks: dict[str, Task] = field(default_factory=dict)

    def register(self, task: Task) -> Task:
        self.tasks[task.name] = task
        return task

    def get(self, name: str) -> Task:
        if name not in self.tasks:
            raise ValueError(f"Unknown task {name!r}: expected one of {sorted(self.tasks)}.")
        return self.tasks[name]
