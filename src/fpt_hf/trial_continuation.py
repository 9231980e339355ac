"""Continue a run from a sweep trial's final checkpoint instead of training its first steps again.

Under a constant learning-rate schedule, a sweep trial of S steps at rate r and seed s is, step for step, the first S
steps of `fpt-hf train` at r and s: the same model initialisation, data order, optimizer and schedule (the sweep's
trials are `Trainer.hyperparameter_search` trials of the same `fpt-hf train` run). `fpt-hf sweep --trial_checkpoints DIR`
keeps each trial's final Trainer checkpoint and names it in the trial's record; `fpt-hf train --continue_trial
RECORD.json` copies that checkpoint into its `--output_dir` and resumes from it with the Trainer's own
`resume_from_checkpoint` (weights, optimizer, RNG state, data position). The run's curve then starts with the trial's
evaluation, its wall time includes the trial's, and its results JSON names the trial (`continued_from_trial`).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from transformers import TrainingArguments

# Schedules whose learning rate at step t does not depend on the run's length (max_steps): only under these is a short
# trial the beginning of a longer run.
LENGTH_FREE_SCHEDULES = ("constant", "constant_with_warmup")
PROVENANCE_FILE = "continued_from_trial.json"
logger = logging.getLogger("fpt_hf")
# Settings a run may set apart from its sweep's: they decide how long it runs and what it evaluates, saves and logs, not
# what its first steps compute. Any other difference from the sweep's recorded settings is refused.
MAY_DIFFER = {f"training.{name}" for name in (
    "max_steps", "num_train_epochs", "eval_strategy", "eval_steps", "eval_delay", "per_device_eval_batch_size", "eval_accumulation_steps",
    "load_best_model_at_end", "metric_for_best_model", "greater_is_better", "resume_from_checkpoint", "logging_strategy",
    "logging_steps", "logging_first_step", "report_to", "disable_tqdm", "push_to_hub", "hub_model_id", "hub_strategy", "hub_private_repo",
)} | {"fpt.continue_trial", "fpt.preset", "fpt.prune_final_block", "fpt.selective_checkpointing"}  # the last two: same numbers


def _value(setting):
    return getattr(setting, "value", setting)  # an Enum (lr_scheduler_type) or a plain value


def schedule_depends_on_length(training_args: TrainingArguments) -> str | None:
    """Why a trial of these settings would not be the beginning of a longer run (its learning-rate schedule depends on
    `--max_steps`), or None when it would."""
    schedule, warmup = _value(training_args.lr_scheduler_type), training_args.warmup_steps
    warmup_is_a_ratio = getattr(training_args, "warmup_ratio", 0) or 0 < warmup < 1  # transformers 5: warmup_steps < 1 is a ratio
    if schedule in LENGTH_FREE_SCHEDULES and not warmup_is_a_ratio:
        return None
    return (f"a learning-rate schedule that does not depend on --max_steps ({', '.join(LENGTH_FREE_SCHEDULES)}, warmup in whole "
            f"steps; the presets' is constant), got {schedule!r} with warmup {warmup}")


def _changed_from_sweep(record_path: Path, fpt_args, training_args) -> list[str]:
    """The settings (`section.name`) in which this run differs from the sweep the trial belongs to, as its
    `sweep_settings.json` (beside the `trials/` folder) recorded them, other than `MAY_DIFFER`; [] without that file."""
    from .sweep import comparable_settings, settings_differences

    settings_path = record_path.parent.parent / "sweep_settings.json"
    if not settings_path.is_file():
        logger.warning("--continue_trial %s: no sweep_settings.json beside its trials/ folder, so only the rate, seed, schedule, "
                       "model and resume settings are checked against the trial, not the data or the other training settings.", record_path)
        return []
    stored = json.loads(settings_path.read_text())
    return [name for name in settings_differences(stored, comparable_settings(fpt_args, training_args), fpt_args, training_args) if name not in MAY_DIFFER]


def checked_trial_record(record_path: str | Path, fpt_args, training_args: TrainingArguments) -> dict:
    """The sweep trial's record in `record_path` (its `checkpoint`: the trial's kept final checkpoint), checked to be the beginning of
    the run `fpt_args` and `training_args` describe (same rate, seed and other settings as the trial's sweep, a schedule
    independent of the run's length, not past its end, an empty `--output_dir`). Raises `ValueError` saying what differs."""
    path = Path(record_path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"--continue_trial {record_path}: not a readable sweep trial record ({err}).") from err
    if not isinstance(record, dict) or "learning_rate" not in record or "steps" not in record:
        raise ValueError(f"--continue_trial {record_path}: not a sweep trial record (expected a trials/lr<rate>-seed<seed>.json "
                         "of `fpt-hf sweep`, with learning_rate, seed, steps and checkpoint).")
    if record.get("diverged"):
        raise ValueError(f"--continue_trial {record_path}: that trial diverged ({record['diverged']}); there is nothing to continue.")
    checkpoint = record.get("checkpoint")
    if not checkpoint:
        raise ValueError(f"--continue_trial {record_path}: the sweep kept no checkpoint of this trial; run the sweep with "
                         "--trial_checkpoints DIR to keep them.")
    if not Path(checkpoint, "trainer_state.json").is_file():
        raise ValueError(f"--continue_trial {record_path}: its checkpoint {checkpoint} is gone (no trainer_state.json there).")
    differences = []
    if record["learning_rate"] != training_args.learning_rate:
        differences.append(f"learning_rate {record['learning_rate']!r} there, {training_args.learning_rate!r} here")
    if record.get("seed") != training_args.seed:
        differences.append(f"seed {record.get('seed')!r} there, {training_args.seed!r} here")
    if differences:
        raise ValueError(f"--continue_trial {record_path}: the trial is not the start of this run ({'; '.join(differences)}).")
    unfit = schedule_depends_on_length(training_args)
    if unfit:
        raise ValueError(f"--continue_trial needs {unfit}: the trial's {record['steps']} steps followed another schedule than "
                         f"this run's first {record['steps']}.")
    if training_args.max_steps > 0 and record["steps"] > training_args.max_steps:
        raise ValueError(f"--continue_trial {record_path}: the trial ran {record['steps']} steps, past this run's --max_steps {training_args.max_steps}.")
    changed = _changed_from_sweep(path, fpt_args, training_args)
    if changed:
        raise ValueError(f"--continue_trial {record_path}: the trial is not the start of this run: its sweep "
                         f"({path.parent.parent / 'sweep_settings.json'}) ran with other {', '.join(changed[:8])}. Give the sweep's settings, "
                         "or train from scratch.")
    output_dir = Path(training_args.output_dir)
    held = sorted(p.name for p in output_dir.glob("checkpoint-*")) if output_dir.is_dir() else []
    if held:
        raise ValueError(f"--continue_trial: --output_dir {output_dir} already holds {', '.join(held[:3])}; continue that run with "
                         "--resume_from_checkpoint true instead, or pass another --output_dir.")
    return record


def continue_from_trial(record_path: str | Path, record: dict, training_args: TrainingArguments) -> str:
    """Copy the trial's checkpoint (`record["checkpoint"]`, see `checked_trial_record`) into `--output_dir` as the run's first checkpoint and return it (for
    `Trainer.train(resume_from_checkpoint=...)`). Its trainer state takes the run's evaluation, saving and logging
    intervals (the Trainer's resumed state keeps the checkpoint's), and `--output_dir` gets `continued_from_trial.json`."""
    checkpoint = record["checkpoint"]
    target = Path(training_args.output_dir) / f"checkpoint-{record['steps']}"
    shutil.copytree(checkpoint, target)
    state_path = target / "trainer_state.json"
    state = json.loads(state_path.read_text())
    for name in ("eval_steps", "save_steps", "logging_steps"):
        state[name] = getattr(training_args, name)
    if state.get("best_model_checkpoint"):
        state["best_model_checkpoint"] = str(target)  # the trial's only checkpoint, now the run's
    state.update(is_hyper_param_search=False, trial_name=None, trial_params=None)
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    provenance = {"trial_record": str(record_path), "checkpoint": str(checkpoint), "steps": record["steps"],
                  "learning_rate": record["learning_rate"], "seed": record.get("seed"), "split": record.get("split"),
                  "accuracy": record.get("accuracy"), "wall_time_s": record.get("wall_time_s")}
    (Path(training_args.output_dir) / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    return str(target)


def provenance(output_dir: str | Path) -> dict | None:
    """The trial a run in `output_dir` continued, as `continue_from_trial` recorded it (None for a run from scratch)."""
    path = Path(output_dir) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else None
