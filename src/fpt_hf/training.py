"""Trainer glue: the model per method, the task data, metrics, and the training entry point used by
`examples/run_fpt.py` and the `fpt-hf` CLI (arguments and presets: `arguments.py`; results files: `results.py`; evaluating a
saved checkpoint: `evaluation.py`)."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from transformers import (
    PreTrainedModel,
    Trainer,
    TrainerState,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from .arguments import FPTArguments, parse_args
from .baselines import LSTMBaseline, LSTMConfig
from .callbacks import RestartAugmentation, RunSettings, StopAtTimeLimit, StopOnNonFiniteLoss, WallClock
from .checkpointing import selective_checkpointing_kwargs
from .collator import FPTDataCollator
from .modeling_fpt import FPTModel
from .reservoir import cache_features
from .results import curve_point, results_filename, results_path, write_json
from .trial_continuation import checked_trial_record, continue_from_trial, provenance

logger = logging.getLogger("fpt_hf")
METRIC_PATH = str(Path(__file__).parent / "metrics" / "accuracy")


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


def fast_model_kwargs(max_tokens: int, use_cpu: bool = False) -> dict:
    """The training scripts' fast path as `FPTModel.from_pretrained` keyword arguments: bf16 compute with bf16 frozen
    weights where the hardware has it, and the attention kernel that measured faster for sequences of `max_tokens`.
    The rest of the fast path: `model.activation_checkpointing_enable(activation_checkpointing_kwargs=
    selective_checkpointing_kwargs())` and `TrainingArguments(optim="adamw_torch_fused")`."""
    return {"compute_dtype": resolve_compute_dtype("auto", use_cpu),
            "backbone_attn_implementation": resolve_attn_implementation("auto", max_tokens, use_cpu)}


def build_model(task, args: FPTArguments, use_cpu: bool = False) -> PreTrainedModel:
    """The model for `args.method`: an `FPTModel` with that policy, or the LSTM baseline."""
    spec = task.model_kwargs(protocol=args.data_protocol)
    if args.method == "lstm":
        return LSTMBaseline(LSTMConfig(hidden_size=args.lstm_hidden_size, **spec))
    return FPTModel.from_pretrained(
        args.backbone, policy=args.method, num_backbone_layers=args.num_backbone_layers, learned_positions=args.learned_positions,
        sink_tokens=args.sink_tokens, input_init=args.input_init, input_dropout=args.input_dropout, compute_dtype=resolve_compute_dtype(args.compute_dtype, use_cpu),
        backbone_attn_implementation=resolve_attn_implementation(args.attn_implementation, task.max_tokens, use_cpu),
        prune_final_block=args.prune_final_block, **spec,
    )


def load_task_data(task, args: FPTArguments, seed: int, max_length: int | None, training_seed: int | None = None):
    """The task's DatasetDict for a run: seeded, sized and (explicitly) truncated where the task allows.
    `seed` fixes the data (held-out splits); `training_seed` draws the training augmentation."""
    options = task.load_options(seed=seed, train_size=args.train_size, max_length=max_length, streaming_train=args.streaming_train,
                                stream_seed=training_seed, protocol=args.data_protocol, augment=args.augment)
    if "max_length" in options and task.too_long == "truncate":
        logger.warning("%s sequences are truncated to %d tokens (the model's limit).", task.name, max_length)
    if training_seed is not None and task.materializable:
        options["augment_seed"] = training_seed
    return task.load(args.data_dir, **options)


def longest_first(data: DatasetDict) -> DatasetDict:
    """The held-out splits that have a `length` column, their longest rows first, so an evaluation batch pads to about
    its own rows' length (ListOps' validation rows in random batches of 8 pad to 1.82x their tokens). Accuracy does not
    depend on the order of the rows; `train` is left as it is (the Trainer's sampler orders it)."""
    ordered = type(data)(data)  # a DatasetDict, or a plain dict when the training split streams
    for name, split in data.items():
        if name != "train" and "length" in (getattr(split, "column_names", None) or ()):
            ordered[name] = split.sort("length", reverse=True)
    return ordered


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


def most_common_class_share(split) -> float | None:
    """The share of a split's most common label (multi-output rows count each label; -100 is ignored): the accuracy of
    answering that class for every row, the floor a learning curve is read against. None for a split without labels."""
    columns = getattr(split, "column_names", None) or ()
    # image tasks store the raw `label` and make `labels` on access (set_transform): read the stored column, untransformed
    name = next((c for c in ("labels", "label") if c in columns), None)
    if name is None:
        return None
    stored = split.with_format(None) if hasattr(split, "with_format") else split
    labels = np.concatenate([np.atleast_1d(np.asarray(row)).ravel() for row in stored[name]])
    labels = labels[labels != -100]
    return float(np.unique(labels, return_counts=True)[1].max() / labels.size) if labels.size else None


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


# The CPU features that set a run's speed and its bf16 numerics (AMX tiles, AVX-512 BF16 or neither). Two development
# machines of one kind ran the same MNIST steps 1.7x apart in time and 0.5 point apart at the first evaluation, and the
# results recorded neither machine's features, so the cause could not be told afterwards.
CPU_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")


def cpu_model_and_flags(cpuinfo_path: str = "/proc/cpuinfo") -> tuple[str, list[str] | None]:
    """The CPU's model name and which of `CPU_FLAGS` it has (None where the cpuinfo file cannot be read)."""
    try:
        cpuinfo = Path(cpuinfo_path).read_text()
    except OSError:
        return platform.processor(), None
    fields = {key.strip(): value for key, value in (line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)}  # the last CPU's
    flags = set(fields.get("flags", "").split())
    return fields.get("model name", platform.processor()).strip(), [f for f in CPU_FLAGS if f in flags]


def hardware() -> dict:
    cpu, flags = cpu_model_and_flags()
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": cpu, "cpu_flags": flags, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def build_training_model(task, args: FPTArguments, training_args: TrainingArguments) -> PreTrainedModel:
    """`build_model` plus the run's memory setting: selective activation checkpointing unless full checkpointing is on."""
    model = build_model(task, args, use_cpu=training_args.use_cpu)
    if training_args.activation_checkpointing and not model.supports_gradient_checkpointing:
        logger.warning("%s does not support activation checkpointing; training without it.", type(model).__name__)
        training_args.activation_checkpointing = False
    elif (args.selective_checkpointing and not training_args.activation_checkpointing and model.supports_gradient_checkpointing
          and set(model.config.trainable_groups) != {"output"}):  # only the head trains: no backward runs through the backbone
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
    return model


def build_trainer(args: FPTArguments, training_args: TrainingArguments, callbacks: list | None = None, model_init: bool = False,
                  trainer_class: type[Trainer] = Trainer):
    """`(trainer, data, selection)`: the model for `args.method`, the task's data and a `Trainer` that evaluates on the
    `selection` split while training (see `with_selection_split`), as `run_training` uses them. `model_init=True`
    gives the Trainer a `model_init` (a fresh, seeded model per `train()`), as `Trainer.hyperparameter_search` needs.
    Sets the process's flushing of subnormal floats to `args.flush_denormal`."""
    task = args.resolve_task()
    set_seed(training_args.seed)
    torch.set_flush_denormal(args.flush_denormal)  # x86 CPUs; a no-op returning False elsewhere
    model = build_training_model(task, args, training_args)
    max_length = getattr(model, "max_length", None)
    data = load_task_data(task, args, args.task_seed, max_length, training_seed=training_args.seed)
    collator = FPTDataCollator()
    if args.cache_features:
        started = time.time()
        data = cache_features(model, data, batch_size=training_args.per_device_eval_batch_size)
        collator = default_data_collator
        logger.info("cached output_only features of %s in %.1f s", {k: len(v) for k, v in data.items()}, time.time() - started)
    data, selection = with_selection_split(task, data, args.task_seed)
    data = longest_first(data)
    callbacks = [StopOnNonFiniteLoss(), *(callbacks or [])]
    transform = ((getattr(data["train"], "format", None) or {}).get("format_kwargs") or {}).get("transform")
    if hasattr(transform, "restart"):  # on-the-fly augmentation (CIFAR-10): in step with the run across resumes and trials
        callbacks.append(RestartAugmentation(transform, len(data["train"])))
    first = [model]  # model_init: the Trainer's own first call takes the model built above; train() builds fresh ones

    def fresh_model():
        return first.pop() if first else build_training_model(task, args, training_args)

    trainer = trainer_class(
        model=None if model_init else model,
        model_init=fresh_model if model_init else None,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data[selection],
        data_collator=collator,
        compute_metrics=make_compute_metrics(),
        preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        callbacks=callbacks,
    )
    return trainer, data, selection


def check_output_dir_free(output_dir: str) -> None:
    """Refuse to train into a folder that already holds a run (a model, results or checkpoints): it would be replaced."""
    folder = Path(output_dir)
    found = [p.name for p in (folder.iterdir() if folder.is_dir() else [])
             if p.name in ("config.json", "model.safetensors", "results.json") or p.name.startswith("checkpoint-")]
    if found:
        raise ValueError(f"--output_dir {output_dir} already holds a run ({', '.join(sorted(found)[:4])}). Pass another --output_dir, "
                         "--resume_from_checkpoint to continue it, or --overwrite_output_dir true to replace it.")


_NO_RESUME = (None, False, "", "false", "False")


def resolve_resume_checkpoint(training_args: TrainingArguments) -> str | None:
    """`--resume_from_checkpoint`: a folder, or true/True for the latest `checkpoint-*` in `--output_dir`."""
    from transformers.trainer_utils import get_last_checkpoint

    value = training_args.resume_from_checkpoint
    if value in _NO_RESUME:
        return None
    if value in (True, "true", "True"):
        last = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
        if last is None:
            raise ValueError(f"--resume_from_checkpoint true: no checkpoint-* folder in --output_dir {training_args.output_dir!r}.")
        return last
    if not os.path.isdir(value):
        raise ValueError(f"--resume_from_checkpoint {value!r} is not a checkpoint folder.")
    return value


def check_resumable(checkpoint: str, model: PreTrainedModel, max_steps: int, settings: RunSettings | None = None) -> None:
    """Refuse to resume a Trainer checkpoint of another model (backbone weights, method, task head), past its end, or
    with training settings the Trainer would override from the checkpoint (`settings`: this run's)."""
    try:
        saved = json.loads(Path(checkpoint, "config.json").read_text())
        state = json.loads(Path(checkpoint, "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{checkpoint} is not a readable Trainer checkpoint: {err}.") from err
    ours = model.config.to_dict()
    for key in ("model_type", "policy", "trainable_groups", "backbone_fingerprint", "input_dim", "vocab_size", "num_labels",
                "num_backbone_layers", "sink_tokens", "learned_positions", "hidden_size", "num_layers"):
        if key in ours and saved.get(key, ours[key]) != ours[key]:
            raise ValueError(f"Cannot resume from {checkpoint}: it was trained with {key}={saved.get(key)!r}, this run has "
                             f"{key}={ours[key]!r}. Resume with the same backbone, method and task, or start a new --output_dir.")
    changed = settings.changed_on_resume(checkpoint) if settings is not None else {}
    if changed:
        said = ", ".join(f"{name}={before!r} there, {now!r} here" for name, (before, now) in changed.items())
        raise ValueError(f"Cannot resume from {checkpoint} with other training settings ({said}): the Trainer restores the "
                         "checkpoint's optimizer, schedule and batch count, so the run would go on with the old ones while its "
                         "results recorded the new. Resume with the same settings, or start a new --output_dir.")
    if max_steps > 0 and state.get("global_step", 0) > max_steps:
        raise ValueError(f"Cannot resume from {checkpoint} at step {state['global_step']} with --max_steps {max_steps}: it is already "
                         "past the end. Raise --max_steps or start a new --output_dir.")


def train_or_finish(trainer: Trainer, resume: str | None) -> float | None:
    """`trainer.train(resume_from_checkpoint=resume)`, returning its training loss. A checkpoint that already holds all
    `--max_steps` (a run killed before its held-out evaluation) is restored instead, with its best model as `train()`
    ends with one, and None is returned (no loss computed): `Trainer.train` would train one step past the end there,
    since its loop checks for the end only after a step."""
    state = TrainerState.load_from_json(os.path.join(resume, "trainer_state.json")) if resume is not None else None
    if state is None or state.global_step != trainer.args.max_steps:
        return trainer.train(resume_from_checkpoint=resume).training_loss
    trainer.state = state
    trainer._load_from_checkpoint(resume)
    if trainer.args.load_best_model_at_end and state.best_model_checkpoint is not None:
        trainer._load_best_model()
    return None


def run_training(args: FPTArguments, training_args: TrainingArguments, callbacks: list | None = None) -> dict:
    """Train `args.method` on `args.task`, evaluate on the task's full held-out split, write the results JSON."""
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING)
    task = args.resolve_task()
    if args.preset == "paper" and args.method != "lstm":
        logger.warning("--preset paper: the original recipe, run on backbone %r (the paper's was GPT-2).", args.backbone)
    start = time.time()
    push = training_args.push_to_hub
    training_args.push_to_hub = False  # we push once at the end, with our model card
    if training_args.max_steps == 0:
        raise ValueError("--max_steps 0 would train nothing (the Trainer would fall back to epochs); give a positive number of steps.")
    if args.continue_trial is not None and training_args.resume_from_checkpoint not in _NO_RESUME:
        raise ValueError("Give --continue_trial (start from a sweep trial) or --resume_from_checkpoint (continue this run), not both.")
    resume = resolve_resume_checkpoint(training_args)
    trial = checked_trial_record(args.continue_trial, args, training_args) if args.continue_trial is not None else None
    if resume is None and not args.overwrite_output_dir:
        check_output_dir_free(training_args.output_dir)
    start_from = resume or (trial["checkpoint"] if trial else None)
    clock, settings = WallClock.from_checkpoint(start_from, started=start), RunSettings.of(training_args)
    limit = StopAtTimeLimit(start + 60 * args.time_limit_minutes) if args.time_limit_minutes is not None else None
    trainer, data, selection = build_trainer(args, training_args, [clock, settings, *([limit] if limit else []), *(callbacks or [])])
    model = trainer.model
    if start_from is not None:
        check_resumable(start_from, model, training_args.max_steps, settings)
    if trial is not None:
        resume = continue_from_trial(args.continue_trial, trial, training_args)
    train_loss = train_or_finish(trainer, resume)
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
        "num_labels": task.num_labels,
        "accuracy": metrics.get(f"{task.eval_split}_accuracy"),
        "accuracy_by_split": {split: metrics[f"{split}_accuracy"] for split in task.reported_splits if f"{split}_accuracy" in metrics},
        "selection_split": selection,
        # what answering one class for every row would score on the splits above (the floor to read them against)
        "most_common_class_share": {split: most_common_class_share(data[split]) for split in dict.fromkeys([selection, *task.reported_splits])
                                    if split in data},
        # the learning curve: accuracy on the selection split at each evaluation while training
        # (and the share of its most frequent predicted class: 1.0 = one class for every row, a constant predictor)
        "curve": [curve_point(e["step"], e) for e in trainer.state.log_history if "eval_accuracy" in e],
        "dropped_rows_over_max_length": getattr(task, "dropped_rows", None) or None,
        "metrics": metrics,
        "steps": trainer.state.global_step,
        "stopped_by_time_limit": limit is not None and limit.stopped_at_step is not None,  # --time_limit_minutes ended it early
        "train_loss": train_loss,
        "trainable_parameters": trainable,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "num_backbone_layers": args.num_backbone_layers,
        "sink_tokens": args.sink_tokens,
        "compute_dtype": getattr(model.config, "compute_dtype", None),
        "attn_implementation": getattr(model.config, "backbone_attn_implementation", None),
        "continued_from_trial": provenance(training_args.output_dir),  # the sweep trial whose steps began this run, if any
        "wall_time_s": round(clock.elapsed(), 1),  # summed over resumed processes (WallClock)
        "wall_time_this_process_s": round(time.time() - start, 1),
        "world_size": training_args.world_size,
        "hardware": hardware(),
        "training_args": {k: v for k, v in training_args.to_dict().items() if k in _RECORDED_ARGS},
        "fpt_args": asdict(args),
    }
    if trainer.is_world_process_zero():
        trainer.save_model(training_args.output_dir)  # the best model (heads only for frozen policies)
        path = results_path(args.results_dir, results_filename(task.name, args, results["steps"], training_args.seed), results)
        results["files"] = {"model": str(training_args.output_dir), "results": str(path)}
        write_json(Path(training_args.output_dir) / "results.json", results)
        write_json(path, results)
        if push:
            from .hub import push_checkpoint

            push_checkpoint(training_args.output_dir, training_args.hub_model_id, results, token=training_args.hub_token)
    return results


_RECORDED_ARGS = {
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "max_grad_norm",
    "lr_scheduler_type", "weight_decay", "optim", "bf16", "seed", "eval_steps",
}


def main(argv: list[str] | None = None) -> dict:
    return run_training(*parse_args(argv))
