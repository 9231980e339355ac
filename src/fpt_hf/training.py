"""Trainer glue: models per method, metrics, presets, and the train/evaluate entry points used by
`examples/run_fpt.py` and the `fpt-hf` CLI."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from transformers import (
    HfArgumentParser,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from .baselines import LSTMBaseline, LSTMConfig
from .checkpointing import selective_checkpointing_kwargs
from .collator import FPTDataCollator
from .modeling_fpt import FPTModel
from .reservoir import cache_features
from .tasks import get_task, list_tasks

logger = logging.getLogger("fpt_hf")
METHODS = ("fpt", "full", "frozen_random", "output_only", "lstm")
METRIC_PATH = str(Path(__file__).parent / "metrics" / "accuracy")


@dataclass
class FPTArguments:
    """What to train; every `TrainingArguments` flag is accepted beside these."""

    task: str = field(metadata={"help": f"one of {list_tasks()}"})
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
                          "less activation memory at about the same speed; full --activation_checkpointing takes precedence"},
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
    task_seed: int = field(default=0, metadata={"help": "seed of the task data (generation, held-out splits); --seed seeds training"})
    results_dir: str = field(
        default="outputs/results",
        metadata={"help": "where the results JSON goes (default outputs/results, untracked; the docs' curated table reads results/, "
                          "written only when asked with --results_dir results)"},
    )

    def __post_init__(self):
        get_task(self.task)  # unknown task -> clear error
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}: expected one of {list(METHODS)}.")
        get_task(self.task).check_protocol(self.data_protocol)
        if self.method == "lstm" and self.sink_tokens:
            raise ValueError(f"--sink_tokens applies to transformer backbones; the lstm method has none (got {self.sink_tokens}).")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"Unknown preset {self.preset!r}: expected one of {sorted(PRESETS)}.")
        if self.cache_features and self.method != "output_only":
            raise ValueError(f"--cache_features needs --method output_only (nothing before the head trains), got {self.method!r}.")
        if self.streaming_train:
            if self.cache_features:
                raise ValueError("--cache_features needs a fixed training set; it cannot cache a --streaming_train stream.")
            get_task(self.task).load_options(streaming_train=True, train_size=self.train_size)  # raises for other tasks
        if self.cache_features and get_task(self.task).augmented(self.data_protocol, self.augment):
            raise ValueError(f"--cache_features would freeze one random augmentation of each {self.task} training image; "
                             "train without it for augmented tasks.")


# Optimisation presets per task. `paper`: the original code's recipe (Adam, constant lr, clip 1.0, batch 4, fp32,
# its input-layer init and input dropout, CIFAR-10 LRA augmented) with long runs, and fresh examples every batch for
# the bit tasks; `cpu`: short runs that finish on a laptop-class CPU. Values are flags of TrainingArguments or FPTArguments.
_PAPER_STEPS = {"bit_memory": 20000, "bit_xor": 2000, "listops": 20000, "mnist": 50000, "cifar10": 100000, "cifar10_lra": 100000, "remote_homology": 50000}
_CPU_STEPS = {"bit_memory": 1500, "bit_xor": 500, "listops": 500, "mnist": 1500, "cifar10": 1500, "cifar10_lra": 300, "remote_homology": 500}


PAPER_BATCH_SIZE = 4  # the original code's run.py default


def _preset(name: str, task_name: str) -> dict:
    task = get_task(task_name)
    recipe = task.recipe
    steps = (_PAPER_STEPS if name == "paper" else _CPU_STEPS)[task_name]
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
            paper["augment"] = task.paper_augmentation  # the original code augments CIFAR-10 LRA as well
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
        # Selective checkpointing (the default) for every length: full recomputation cost CIFAR-10 LRA 1.35x in step time
        # (docs/performance.md) and selective checkpointing's activations fit easily at these batch sizes.
        "activation_checkpointing": False,
        **_batching(task, group_by_length=name != "paper"),
    }


def _batching(task, group_by_length: bool) -> dict:
    """Variable-length tasks: batches of similar lengths (Trainer's length-grouped sampler over the `length` column), so
    little compute goes to padding (not in the `paper` preset: the original drew random batches); long tasks: small
    evaluation batches (64 ListOps rows of ~1000 tokens took 1.42x longer as one batch than as 8 batches of 8)."""
    options = {"per_device_eval_batch_size": 64 if task.max_tokens <= 256 else 8}
    if task.variable_length and group_by_length:
        options.update(train_sampling_strategy="group_by_length", length_column_name="length")
    return options


PRESETS = {"paper": _preset, "cpu": _preset}
# Always set for FPT datasets: image rows are patched on access (set_transform needs the raw columns).
FIXED_TRAINING_ARGS = {"remove_unused_columns": False, "label_names": ["labels"], "logging_nan_inf_filter": False}


def parse_args(argv: list[str] | None = None) -> tuple[FPTArguments, TrainingArguments]:
    """Parse `FPTArguments` + `TrainingArguments`; a `--preset` supplies defaults that explicit flags override."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((FPTArguments, TrainingArguments))
    probe, _ = parser.parse_known_args(argv)
    defaults = {"output_dir": f"outputs/{probe.task}-{probe.method}-seed{probe.seed}"}
    if probe.preset:
        defaults.update(PRESETS[probe.preset](probe.preset, probe.task))
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


def resolve_compute_dtype(name: str, use_cpu: bool = False) -> str | None:
    """'auto' -> 'bfloat16' where this machine computes in bf16 natively (recent GPUs; CPUs with AVX512-BF16/AMX)."""
    if name not in ("auto", "bfloat16", "float16", "float32"):
        raise ValueError(f"compute_dtype must be 'auto', 'bfloat16', 'float16' or 'float32', got {name!r}.")
    if name != "auto":
        return None if name == "float32" else name
    if torch.cuda.is_available() and not use_cpu:
        return "bfloat16" if torch.cuda.is_bf16_supported() else None
    return "bfloat16" if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def resolve_attn_implementation(name: str, max_tokens: int, use_cpu: bool = False) -> str:
    """'auto': measured on a 2-core AVX512-BF16 CPU (fpt-hf bench), eager attention in bf16 runs SmolLM2
    training steps at 64 tokens ~20% faster than SDPA; SDPA avoids storing T x T attention for long inputs."""
    if name != "auto":
        return name
    on_cpu = use_cpu or not torch.cuda.is_available()
    return "eager" if on_cpu and max_tokens <= 256 else "sdpa"


def build_model(task, args: FPTArguments, use_cpu: bool = False) -> PreTrainedModel:
    """The model for `args.method`: an `FPTModel` with that policy, or the LSTM baseline."""
    spec = task.model_kwargs(protocol=args.data_protocol)
    if args.method == "lstm":
        return LSTMBaseline(LSTMConfig(hidden_size=args.lstm_hidden_size, **spec))
    return FPTModel.from_pretrained(
        args.backbone, policy=args.method, num_backbone_layers=args.num_backbone_layers, learned_positions=args.learned_positions,
        sink_tokens=args.sink_tokens, input_init=args.input_init, input_dropout=args.input_dropout, compute_dtype=resolve_compute_dtype(args.compute_dtype, use_cpu),
        backbone_attn_implementation=resolve_attn_implementation(args.attn_implementation, task.max_tokens, use_cpu), **spec,
    )


def load_task_data(task, args: FPTArguments, seed: int, max_length: int | None, training_seed: int | None = None):
    """The task's DatasetDict for a run: seeded, sized and (explicitly) truncated where the task allows.
    `seed` fixes the data (held-out splits); `training_seed` draws the training augmentation."""
    options = task.load_options(seed=seed, train_size=args.train_size, max_length=max_length, streaming_train=args.streaming_train,
                                stream_seed=training_seed, protocol=args.data_protocol, augment=args.augment)
    if "max_length" in options:
        logger.warning("%s sequences are truncated to %d tokens (the model's limit).", task.name, max_length)
    if training_seed is not None and task.materializable:
        options["augment_seed"] = training_seed
    return task.load(args.data_dir, **options)


SELECTION_FRACTION = 0.05  # of train, held out for checkpoint selection when the validation split is a reported one


def with_selection_split(task, data, seed: int):
    """`(data, name)`: the split the Trainer evaluates on while training (learning curve, best checkpoint). It is
    `validation` unless the task reports that split (remote homology reports TAPE's `valid`, as the paper did); then a
    seeded `selection` slice of train is held out instead, so no checkpoint is ever chosen on a reported split."""
    if "validation" in data and "validation" not in task.reported_splits:
        return data, "validation"
    train = data["train"]
    if not hasattr(train, "train_test_split"):
        raise ValueError(f"{task.name} reports its validation split and has no fixed training set to hold a selection split out of.")
    parts = train.train_test_split(test_size=max(1, round(SELECTION_FRACTION * len(train))), seed=seed)
    return DatasetDict({**data, "train": parts["train"], "selection": parts["test"]}), "selection"


def _accuracy_metric():
    import evaluate

    return evaluate.load(METRIC_PATH)


def preprocess_logits_for_metrics(logits, labels):
    logits = logits[0] if isinstance(logits, tuple) else logits
    return logits.argmax(-1)


def make_compute_metrics():
    metric = _accuracy_metric()

    def compute_metrics(eval_pred):
        predictions, references = eval_pred.predictions, eval_pred.label_ids
        return metric.compute(predictions=np.asarray(predictions).reshape(len(references), -1), references=np.asarray(references).reshape(len(references), -1))

    return compute_metrics


class StopOnNonFiniteLoss(TrainerCallback):
    """Fail loudly when the training loss turns NaN/inf, instead of logging zeros for the rest of the run."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not np.isfinite(value):
                raise FloatingPointError(
                    f"Training diverged at step {state.global_step}: {key} = {value}. "
                    "Lower --learning_rate, or check the inputs for extreme values."
                )


def hardware() -> dict:
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def build_trainer(args: FPTArguments, training_args: TrainingArguments, callbacks: list | None = None):
    """`(trainer, data, selection)`: the model for `args.method`, the task's data and a `Trainer` that evaluates on the
    `selection` split while training (see `with_selection_split`), as `run_training` uses them."""
    task = get_task(args.task)
    set_seed(training_args.seed)
    model = build_model(task, args, use_cpu=training_args.use_cpu)
    if training_args.activation_checkpointing and not model.supports_gradient_checkpointing:
        logger.warning("%s does not support activation checkpointing; training without it.", type(model).__name__)
        training_args.activation_checkpointing = False
    elif (args.selective_checkpointing and not training_args.activation_checkpointing and model.supports_gradient_checkpointing
          and set(model.config.trainable_groups) != {"output"}):  # only the head trains: no backward runs through the backbone
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
    max_length = getattr(model, "max_length", None)
    data = load_task_data(task, args, args.task_seed, max_length, training_seed=training_args.seed)
    collator = FPTDataCollator()
    if args.cache_features:
        started = time.time()
        data = cache_features(model, data, batch_size=training_args.per_device_eval_batch_size)
        collator = default_data_collator
        logger.info("cached output_only features of %s in %.1f s", {k: len(v) for k, v in data.items()}, time.time() - started)
    data, selection = with_selection_split(task, data, args.task_seed)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data[selection],
        data_collator=collator,
        compute_metrics=make_compute_metrics(),
        preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        callbacks=[StopOnNonFiniteLoss(), *(callbacks or [])],
    )
    return trainer, data, selection


def run_training(args: FPTArguments, training_args: TrainingArguments, callbacks: list | None = None) -> dict:
    """Train `args.method` on `args.task`, evaluate on the task's full held-out split, write the results JSON."""
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)
    task = get_task(args.task)
    if args.preset == "paper" and args.method != "lstm":
        logger.warning("--preset paper: the original recipe, run on backbone %r (the paper's was GPT-2).", args.backbone)
    start = time.time()
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # we push once at the end, with our model card
    trainer, data, selection = build_trainer(args, training_args, callbacks)
    model = trainer.model
    train_output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics = {}
    for split in task.reported_splits:
        if split in data:
            metrics.update(trainer.evaluate(eval_dataset=data[split], metric_key_prefix=split))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    results = {
        "task": task.name,
        "backbone": None if args.method == "lstm" else args.backbone,
        "method": args.method,
        "seed": training_args.seed,
        "eval_split": task.eval_split,
        "accuracy": metrics.get(f"{task.eval_split}_accuracy"),
        "accuracy_by_split": {split: metrics[f"{split}_accuracy"] for split in task.reported_splits if f"{split}_accuracy" in metrics},
        "selection_split": selection,
        "metrics": metrics,
        "steps": trainer.state.global_step,
        "train_loss": train_output.training_loss,
        "trainable_parameters": trainable,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "num_backbone_layers": args.num_backbone_layers,
        "sink_tokens": args.sink_tokens,
        "compute_dtype": getattr(model.config, "compute_dtype", None),
        "attn_implementation": getattr(model.config, "backbone_attn_implementation", None),
        "wall_time_s": round(time.time() - start, 1),
        "world_size": training_args.world_size,
        "hardware": hardware(),
        "training_args": {k: v for k, v in training_args.to_dict().items() if k in _RECORDED_ARGS},
        "fpt_args": asdict(args),
    }
    if trainer.is_world_process_zero():
        trainer.save_model(training_args.output_dir)  # the best model (heads only for frozen policies)
        path = results_path(args.results_dir, results_filename(task.name, args, results["steps"], training_args.seed), results)
        results["files"] = {"model": str(training_args.output_dir), "results": str(path)}
        _write_json(Path(training_args.output_dir) / "results.json", results)
        _write_json(path, results)
        if push:
            from .hub import push_checkpoint

            push_checkpoint(training_args.output_dir, training_args.hub_model_id, results, token=training_args.hub_token)
    return results


_RECORDED_ARGS = {
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "max_grad_norm",
    "lr_scheduler_type", "weight_decay", "optim", "bf16", "seed", "eval_steps",
}


def results_filename(task: str, args: FPTArguments, steps: int, seed: int) -> str:
    """`mnist-fpt-smollm2-135m-L6-1500steps-seed0.json` (`-L6-sink1-pos121-paperinit-drop0.1-paperdata-aug-stream-` with a
    sink token, a learned position table, the original input init, input dropout, the original preprocessing, explicit
    augmentation and streamed training data): runs of other lengths, seeds, model shapes or data protocols do not
    overwrite it."""
    return f"{task}-{args.method}-{_short(args.backbone, args)}-{steps}steps-seed{seed}.json"


def _short(backbone: str, args: FPTArguments) -> str:
    if args.method == "lstm":
        name = "lstm"
    else:
        name = Path(backbone).name or backbone
        name += f"-L{args.num_backbone_layers}" if args.num_backbone_layers else ""
        name += f"-sink{args.sink_tokens}" if args.sink_tokens else ""
        name += f"-pos{args.learned_positions}" if args.learned_positions else ""
        name += "-paperinit" if args.input_init == "paper" else ""
        name += f"-drop{args.input_dropout:g}" if args.input_dropout else ""
    name += "-paperdata" if args.data_protocol == "paper" else ""
    name += {True: "-aug", False: "-noaug", None: ""}[args.augment]
    return name + ("-stream" if args.streaming_train else "")


_UNRECORDED = {"results_dir", "data_dir"}  # where files were, not how the run went


def results_path(results_dir: str | Path, filename: str, results: dict) -> Path:
    """`results_dir / filename`, unless that file holds a run with other settings (e.g. another learning rate,
    which the name does not show): then the first free `<name>-2.json`, `-3`, ... so no result is lost. The
    same command run again replaces its own file."""
    def settings(result: dict) -> tuple:
        fpt_args = {k: v for k, v in (result.get("fpt_args") or {}).items() if k not in _UNRECORDED}
        return json.dumps(result.get("training_args"), sort_keys=True, default=str), json.dumps(fpt_args, sort_keys=True, default=str)

    ours = settings(results)
    first = Path(results_dir) / filename
    path, n = first, 1
    while path.exists():
        try:
            if settings(json.loads(path.read_text())) == ours:
                return path
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass  # not a results file we wrote: keep it
        n += 1
        path = first.with_name(f"{first.stem}-{n}{first.suffix}")
    if path != first:
        logger.warning(f"{first} holds a run with other settings; writing this run's results to {path}.")
    return path


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> dict:
    return run_training(*parse_args(argv))


def load_checkpoint(path: str) -> PreTrainedModel:
    """An FPT or LSTM checkpoint folder (or Hub id) -> model, with a clear error for anything else."""
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path!r} is not a readable checkpoint: no usable config.json ({err}).") from err
    if config.model_type not in ("fpt", "fpt-lstm"):
        raise ValueError(f"{path!r} holds a {config.model_type!r} model, not an fpt-hf checkpoint (model_type 'fpt' or 'fpt-lstm').")
    return AutoModel.from_pretrained(path)


def evaluate_checkpoint(
    path: str, task_name: str, data_dir: str | None = None, batch_size: int = 64, split: str | None = None, task_seed: int = 0,
    data_protocol: str = "default",
) -> dict:
    """Accuracy of a saved model on a task's full held-out split (default: the split the paper reports)."""
    task = get_task(task_name)
    model = load_checkpoint(path)
    expected = {k: v for k, v in task.model_kwargs(protocol=data_protocol).items() if k in ("input_dim", "vocab_size", "num_labels")}
    actual = {k: getattr(model.config, k, None) for k in expected}
    if actual != expected:
        raise ValueError(f"The checkpoint does not fit task {task.name!r}: it has {actual}, the task needs {expected}.")
    args = FPTArguments(task=task_name, data_dir=data_dir, task_seed=task_seed, data_protocol=data_protocol)
    data = load_task_data(task, args, seed=task_seed, max_length=getattr(model, "max_length", None))
    split = split or task.eval_split
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(output_dir=tmp, per_device_eval_batch_size=batch_size, report_to="none", **FIXED_TRAINING_ARGS)
        trainer = Trainer(
            model=model, args=training_args, data_collator=FPTDataCollator(), compute_metrics=make_compute_metrics(),
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        metrics = trainer.evaluate(eval_dataset=data[split], metric_key_prefix=split)
    return {"checkpoint": str(path), "task": task_name, "split": split, "accuracy": metrics[f"{split}_accuracy"], "metrics": metrics}
