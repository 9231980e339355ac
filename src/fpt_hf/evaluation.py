"""Evaluating a saved checkpoint: load it (FPT or LSTM, with a clear error for anything else), check that it fits the
task and the data protocol it was trained with, and score a full held-out split (`fpt-hf evaluate`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from transformers import PreTrainedModel, Trainer, TrainingArguments

from .arguments import FIXED_TRAINING_ARGS, FPTArguments
from .collator import FPTDataCollator
from .training import load_task_data, longest_first, make_compute_metrics, preprocess_logits_for_metrics


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


def recorded_fpt_args(path: str) -> dict:
    """The `fpt_args` a checkpoint's training run recorded: results.json in a local checkpoint folder, or in a Hub
    repository `fpt-hf push` wrote (when the Hub is reachable); {} if there is none."""
    record = Path(path) / "results.json"
    if not record.is_file() and not Path(path).exists():
        try:
            from huggingface_hub import hf_hub_download

            record = Path(hf_hub_download(str(path), "results.json"))
        except Exception:  # not a Hub repository, no results.json in it, or offline: nothing recorded to go by
            return {}
    if not record.is_file():
        return {}
    try:
        return json.loads(record.read_text()).get("fpt_args", {})
    except (json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"{record} is not a results JSON fpt-hf wrote ({err}); move it away, or it decides nothing.") from err


def checked_data_protocol(path: str, data_protocol: str | None, recorded: dict | None = None) -> str:
    """The data protocol to evaluate a checkpoint with: the one its training run recorded (results.json in a local
    checkpoint folder), unless none is recorded ("default" then). Same shapes, other preprocessing (MNIST's 49 raw vs
    64 normalised patches, CIFAR's std) would give a quietly lower accuracy, so a different one is refused.
    `recorded`: the checkpoint's `recorded_fpt_args`, where the caller has read them already."""
    trained = (recorded_fpt_args(path) if recorded is None else recorded).get("data_protocol")
    if data_protocol is None:
        return trained or "default"
    if trained is not None and data_protocol != trained:
        raise ValueError(f"{path!r} was trained with data protocol {trained!r} (its results.json); evaluating it with "
                         f"{data_protocol!r} would feed it differently preprocessed inputs. Leave --data_protocol out to use {trained!r}.")
    return data_protocol


def evaluate_checkpoint(
    path: str, task_name: str | None = None, data_dir: str | None = None, batch_size: int = 64, split: str | None = None, task_seed: int | None = None,
    data_protocol: str | None = None, dataset: str | None = None, input_column: str = "inputs", label_column: str = "labels",
) -> dict:
    """Accuracy of a saved model on a task's full held-out split (default: the split the paper reports), or on a user
    dataset's (`dataset=`, read as `fpt-hf train --dataset` reads it). `data_protocol`: the preprocessing; by default
    the one the checkpoint was trained with (its folder's results.json), and another one is refused. `task_seed` (the
    generated tasks' data, the image tasks' validation hold-out): by default the recorded one, else 0."""
    recorded = recorded_fpt_args(path)  # read once: for a Hub id it is a download
    data_protocol = checked_data_protocol(path, data_protocol, recorded)
    if task_seed is None:
        task_seed = recorded.get("task_seed", 0)
    args = FPTArguments(task=task_name, dataset=dataset, input_column=input_column, label_column=label_column, data_dir=data_dir,
                        task_seed=task_seed, data_protocol=data_protocol)
    task = args.resolve_task()
    model = load_checkpoint(path)
    expected = {k: v for k, v in task.model_kwargs(protocol=data_protocol).items() if k in ("input_dim", "vocab_size", "num_labels")}
    actual = {k: getattr(model.config, k, None) for k in expected}
    if actual != expected:
        raise ValueError(f"The checkpoint does not fit task {task.name!r}: it has {actual}, the task needs {expected}.")
    data = longest_first(load_task_data(task, args, seed=task_seed, max_length=getattr(model, "max_length", None)))
    split = split or task.eval_split
    if split not in data:
        raise ValueError(f"{task.name} has no split {split!r}: its splits are {sorted(data)} (default: {task.eval_split!r}).")
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(output_dir=tmp, per_device_eval_batch_size=batch_size, report_to="none",
                                          use_cpu=not torch.accelerator.is_available(), **FIXED_TRAINING_ARGS)  # transformers then pins no memory
        trainer = Trainer(
            model=model, args=training_args, data_collator=FPTDataCollator(), compute_metrics=make_compute_metrics(),
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        metrics = trainer.evaluate(eval_dataset=data[split], metric_key_prefix=split)
    return {"checkpoint": str(path), "task": task.name, "split": split, "accuracy": metrics[f"{split}_accuracy"],
            "data_protocol": data_protocol, "metrics": {**metrics, f"{split}_samples": len(data[split])}}
