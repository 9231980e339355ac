"""Command-line arguments of `fpt-hf train`: fpt-hf's own flags (`FPTArguments`), the `cpu` / `paper` presets and
the parser that lets explicit flags override a preset."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser, TrainingArguments

from .tasks import Task, get_task, list_tasks
from .tasks.user_data import DatasetTask

METHODS = ("fpt", "full", "frozen_random", "output_only", "lstm")


@dataclass
class FPTArguments:
    """What to train; every `TrainingArguments` flag is accepted beside these."""

    task: str | None = field(default=None, metadata={"help": f"one of {list_tasks()} (or --dataset)"})
    dataset: str | None = field(
        default=None, metadata={"help": "your own data instead of --task: a Parquet or save_to_disk folder, or a Hub dataset id, "
                                        "with train and test splits"}
    )
    input_column: str = field(default="inputs", metadata={"help": "--dataset: column of (tokens, features) floats or token ids"})
    label_column: str = field(default="labels", metadata={"help": "--dataset: column of integer class ids"})
    backbone: str = field(default="smollm2-135m", metadata={"help": "Hub id, local folder or embedded name"})
    method: str = field(default="fpt", metadata={"help": f"one of {list(METHODS)}"})
    data_dir: str | None = field(default=None, metadata={"help": "local Parquet folder (default: the Hub / $FPT_HF_DATA_DIR)"})
    preset: str | None = field(default=None, metadata={"help": "'paper' or 'cpu'; explicit flags override it"})
    num_backbone_layers: int | None = field(default=None, metadata={"help": "use only the first N blocks"})
    learned_positions: int | None = field(default=None, metadata={"help": "extra learned position table (RoPE backbones)"})
    sink_tokens: int = field(
        default=0, metadata={"help": "learned tokens before every input, to take the backbone's attention sink (see FPTConfig)"}
    )
    lstm_hidden_size: int = field(default=768, metadata={"help": "hidden size of the LSTM baseline"})
    attn_implementation: str = field(
        default="auto", metadata={"help": "'auto' (eager on CPU for tasks of <= 256 tokens, where it is faster; else sdpa), 'sdpa', 'eager'"}
    )
    compute_dtype: str = field(
        default="auto",
        metadata={"help": "backbone compute dtype: 'auto' (bfloat16 where the hardware has it), 'bfloat16', 'float32' (the paper)"},
    )
    selective_checkpointing: bool = field(
        default=True,
        metadata={"help": "recompute element-wise ops (norms, softmax, activations) in backward and keep matmul outputs: "
                          "less activation memory for a Python cost per op (1.02-1.04x a long fp32 CPU step, 1.07-1.12x a "
                          "bf16 step of <= 121 tokens, up to ~4x a tiny one; benchmarks/checkpointing_overhead.py); the "
                          "presets turn it on above 256 tokens only; full --activation_checkpointing takes precedence"},
    )
    prune_final_block: bool = field(
        default=True,
        metadata={"help": "compute the final block only at the positions the head reads (same numbers, less work; "
                          "Llama-style and GPT-2 blocks; see FPTConfig)"},
    )
    flush_denormal: bool = field(
        default=True,
        metadata={"help": "on CPU, flush subnormal floats to zero (`torch.set_flush_denormal`, process-wide): an MNIST LSTM whose "
                          "gates saturated ran 10x slower per step without it (benchmarks/denormal_steps.py)"},
    )
    cache_features: bool = field(
        default=False,
        metadata={"help": "output_only: compute the frozen features once and train the head on the cache (reservoir mode)"},
    )
    train_size: int | None = field(default=None, metadata={"help": "generated tasks: number of training examples"})
    streaming_train: bool = field(
        default=False, metadata={"help": "bit tasks: fresh training examples every batch, drawn by --seed (the paper's protocol)"}
    )
    input_init: str = field(
        default="default", metadata={"help": "'default' or 'paper' (orthogonal gain 1.41, zero bias, N(0, 1) token embeddings; see FPTConfig)"}
    )
    input_dropout: float = field(default=0.0, metadata={"help": "dropout on the projected input tokens (the paper preset: 0.1 on continuous inputs)"})
    data_protocol: str = field(
        default="default", metadata={"help": "'default' or 'paper': the original code's data preprocessing where it differs (docs/protocol.md)"}
    )
    augment: bool | None = field(default=None, metadata={"help": "image tasks: training augmentation on/off (default: the task's choice)"})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "replace a finished run in --output_dir (refused otherwise, so no trained model is lost)"}
    )
    continue_trial: str | None = field(
        default=None,
        metadata={"help": "a sweep trial's record (trials/lr<rate>-seed<seed>.json of `fpt-hf sweep --trial_checkpoints`): start "
                          "from that trial's final checkpoint, the first steps of this run at the same rate and seed"},
    )
    task_seed: int = field(default=0, metadata={"help": "seed of the task data (generation, held-out splits); --seed seeds training"})
    time_limit_minutes: float | None = field(
        default=None,
        metadata={"help": "end training once this many minutes have passed since this process started the run (data preparation "
                          "included), then evaluate and write the results as usual, for the steps done; the learning-rate schedule "
                          "is still the one of --max_steps, so a decaying one ends part-way (default: no limit)"},
    )
    results_dir: str = field(
        default="outputs/results",
        metadata={"help": "where the results JSON goes (default outputs/results, untracked; the docs' curated table reads results/, "
                          "written only when asked with --results_dir results)"},
    )

    def __post_init__(self):
        if (self.task is None) == (self.dataset is None):
            raise ValueError(f"Give --task (one of {list_tasks()}) or --dataset (your own data), exactly one; "
                             f"got task={self.task!r}, dataset={self.dataset!r}.")
        task = self.resolve_task()  # unknown task, or unusable data -> clear error
        if self.time_limit_minutes is not None and not self.time_limit_minutes > 0:
            raise ValueError(f"--time_limit_minutes must be a positive number of minutes, got {self.time_limit_minutes}.")
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}: expected one of {list(METHODS)}.")
        task.check_protocol(self.data_protocol)
        if self.method == "lstm" and self.sink_tokens:
            raise ValueError(f"--sink_tokens applies to transformer backbones; the lstm method has none (got {self.sink_tokens}).")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"Unknown preset {self.preset!r}: expected one of {sorted(PRESETS)}.")
        if self.cache_features and self.method != "output_only":
            raise ValueError(f"--cache_features needs --method output_only (nothing before the head trains), got {self.method!r}.")
        if self.streaming_train:
            if self.cache_features:
                raise ValueError("--cache_features needs a fixed training set; it cannot cache a --streaming_train stream.")
            task.load_options(streaming_train=True, train_size=self.train_size)  # raises for other tasks
        if self.cache_features and task.augmented(self.data_protocol, self.augment):
            raise ValueError(f"--cache_features would freeze one random augmentation of each {self.task} training image; "
                             "train without it for augmented tasks.")

    def resolve_task(self) -> Task:
        """The built-in task named by --task, or the user's --dataset as a task."""
        return get_task(self.task) if self.dataset is None else _dataset_task(self.dataset, self.input_column, self.label_column)


@functools.lru_cache(maxsize=8)
def _dataset_task(source: str, input_column: str, label_column: str) -> DatasetTask:
    return DatasetTask(source, input_column, label_column)


# Optimisation presets per task. `paper`: the original code's recipe (Adam, constant lr, clip 1.0, batch 4, fp32,
# its input-layer init and input dropout, CIFAR-10 LRA augmented) with long runs, and fresh examples every batch for
# the bit tasks; `cpu`: short runs that finish on a laptop-class CPU. Values are flags of TrainingArguments or FPTArguments.
_PAPER_STEPS = {"bit_memory": 20000, "bit_xor": 2000, "listops": 20000, "mnist": 50000, "cifar10": 100000, "cifar10_lra": 100000, "remote_homology": 50000}
_CPU_STEPS = {"bit_memory": 1500, "bit_xor": 500, "listops": 500, "mnist": 1500, "cifar10": 1500, "cifar10_lra": 300, "remote_homology": 500}


PAPER_BATCH_SIZE = 4  # the original code's run.py default


def _preset(name: str, task: Task | str, method: str = "fpt") -> dict:
    task = get_task(task) if isinstance(task, str) else task
    recipe = task.recipe
    steps = (_PAPER_STEPS if name == "paper" else _CPU_STEPS).get(task.name, 20000 if name == "paper" else 500)
    every = max(steps // 10, 50)
    paper = {}
    if name == "paper":
        paper = {
            "input_init": "paper",
            "input_dropout": 0.0 if "vocab_size" in task.model_kwargs() else 0.1,  # the original drops out Linear inputs only
            "compute_dtype": "float32",
        }
        if task.streamable:
            paper["streaming_train"] = True
        if task.materializable:
            paper["augment"] = task.augmented("paper")  # the original code augments CIFAR-10 LRA as well
    return {
        **paper,
        "learning_rate": recipe.learning_rate,
        "per_device_train_batch_size": PAPER_BATCH_SIZE if name == "paper" else recipe.batch_size,
        "max_grad_norm": 1.0,
        "optim": "adamw_torch_fused",  # weight_decay 0: Adam, fused kernel
        "lr_scheduler_type": "constant",
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "max_steps": steps,
        "eval_strategy": "steps",
        "eval_steps": every,
        "save_strategy": "steps",
        "save_steps": every,
        "save_total_limit": 2,
        "logging_steps": max(every // 5, 10),
        "load_best_model_at_end": True,
        "metric_for_best_model": "accuracy",
        "report_to": "tensorboard",
        # Selective checkpointing (never full: recomputing everything cost CIFAR-10 LRA 1.35x in step time) only for long
        # inputs: up to 256 tokens a step's activations are small and the recompute's per-op cost is 7-12% of a bf16 CPU
        # step (SmolLM2, 6 blocks, 16 x 64 / 16 x 121; docs/performance.md). Gradients are the same either way.
        "activation_checkpointing": False,
        "selective_checkpointing": task.max_tokens > 256,
        **_batching(task, group_by_length=name != "paper", method=method),
    }


def _batching(task, group_by_length: bool, method: str = "fpt") -> dict:
    """Variable-length tasks: batches of similar lengths (Trainer's length-grouped sampler over the `length` column), so
    little compute goes to padding (not in the `paper` preset: the original drew random batches); long tasks: small
    evaluation batches (64 ListOps rows of ~1000 tokens took 1.42x longer as one batch than as 8 batches of 8; CIFAR-10
    LRA, fpt: 8 rows per batch 1.5x faster than 32), except for the LSTM on fixed-length rows, whose step-by-step
    recurrence runs 1.4x faster in batches of 32 than of 8 (CIFAR-10 LRA; benchmarks/eval_batch.py)."""
    long_eval_batch = 32 if method == "lstm" and not task.variable_length else 8
    options = {"per_device_eval_batch_size": 64 if task.max_tokens <= 256 else long_eval_batch}
    if task.variable_length and group_by_length:
        options.update(train_sampling_strategy="group_by_length", length_column_name="length")
    return options


PRESETS = {"paper": _preset, "cpu": _preset}
# Always set for FPT datasets: image rows are patched on access (set_transform needs the raw columns).
FIXED_TRAINING_ARGS = {"remove_unused_columns": False, "label_names": ["labels"], "logging_nan_inf_filter": False}


def parse_args(argv: list[str] | None = None) -> tuple[FPTArguments, TrainingArguments]:
    """Parse `FPTArguments` + `TrainingArguments`; a `--preset` supplies defaults that explicit flags override.
    On a machine without an accelerator `--use_cpu` defaults to true, so transformers pins no memory there."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((FPTArguments, TrainingArguments))
    probe, _ = parser.parse_known_args(argv)
    task = FPTArguments(**{k: getattr(probe, k) for k in ("task", "dataset", "input_column", "label_column")}).resolve_task()
    defaults = {"output_dir": f"outputs/{task.name}-{probe.method}-seed{probe.seed}"}
    if not torch.accelerator.is_available():
        defaults["use_cpu"] = True
    if probe.preset in PRESETS:  # an unknown preset is refused, by name, when the arguments are built below
        defaults.update(PRESETS[probe.preset](probe.preset, task, probe.method))
    if probe.train_size is not None and "--streaming_train" not in argv:
        defaults.pop("streaming_train", None)  # an explicit training-set size overrides the preset's stream
    prefix = []
    for key, value in defaults.items():
        prefix += [f"--{key}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    fpt_args, training_args = parser.parse_args_into_dataclasses(args=prefix + argv)
    for key, value in FIXED_TRAINING_ARGS.items():
        setattr(training_args, key, value)
    return fpt_args, training_args


def train_help(argv: list[str]) -> str:
    """`fpt-hf train --help`: fpt-hf's own flags, then the training flags the presets set (for `--task`, if given)."""
    from dataclasses import MISSING, fields

    lines = ["usage: fpt-hf train --task TASK [--preset cpu|paper] [flags]   (flags override the preset)", "", "fpt-hf flags:"]
    for f in fields(FPTArguments):
        default = "required" if f.default is MISSING else f"default {f.default!r}"
        lines.append(f"  --{f.name:<26} {f.metadata.get('help', '')}" + ("" if "default" in f.metadata.get("help", "") else f" ({default})"))
    task = argv[argv.index("--task") + 1] if "--task" in argv[:-1] else None
    if task in list_tasks():
        cpu, paper = _preset("cpu", task), _preset("paper", task)
        lines += ["", f"what the presets set for {task} (TrainingArguments and fpt-hf flags):", f"  {'flag':<30} {'cpu':<22} paper"]
        lines += [f"  --{key:<28} {str(cpu.get(key, '-')):<22} {paper.get(key, '-')}" for key in dict.fromkeys([*cpu, *paper])]
    else:
        lines += ["", f"fpt-hf train --task <task> --help also shows what the presets set; tasks: {', '.join(list_tasks())}."]
    lines += ["", "Every HF TrainingArguments flag is accepted too (--learning_rate, --max_steps, --bf16, --report_to, ...):",
              "fpt-hf train --help-all lists them all. Logging goes to TensorBoard under <output_dir>/runs with a preset "
              "(--report_to none turns it off)."]
    return "\n".join(lines)
