"""Trainer callbacks of every `fpt-hf train` run: fail on a diverged loss, keep a run's wall time across resumes,
record the settings a resume must not change, keep on-the-fly augmentation in step with the run, and end training at a
time limit."""

from __future__ import annotations

import json
import logging
import time
from enum import Enum
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

logger = logging.getLogger("fpt_hf")


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


class StopAtTimeLimit(TrainerCallback):
    """End training at the first optimizer step that finishes past `deadline` (a `time.time()` value), so a run with a
    fixed amount of wall time (a lent GPU, a session) still evaluates and writes its results, for the steps it did,
    instead of being cut off with nothing. `stopped_at_step` says where it cut the run short (None: it did not)."""

    def __init__(self, deadline: float):
        self.deadline, self.stopped_at_step = deadline, None

    def past_deadline(self, args) -> bool:
        """Whether the deadline has passed, by the main process's clock on every process: processes that stopped at
        different steps would wait forever on each other's gradients."""
        past = time.time() >= self.deadline
        if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([float(past)], device=args.device)
            torch.distributed.broadcast(flag, src=0)
            past = bool(flag.item())
        return past

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step < state.max_steps and not control.should_training_stop and self.past_deadline(args):
            control.should_training_stop = True
            self.stopped_at_step = state.global_step
            logger.warning("Time limit reached: training stops at step %d of %d, then evaluates.", state.global_step, state.max_steps)


class CheckpointedState(TrainerCallback, ExportableState):
    """A callback whose `state()` the Trainer saves in each checkpoint's trainer_state.json (`stateful_callbacks`), read
    back with `stored`. A checkpoint written before such a callback existed holds no entry for it, and the Trainer's
    save indexes `state.stateful_callbacks[name]` (KeyError at a resumed run's first save), so one is given at the
    start of training."""

    @classmethod
    def stored(cls, checkpoint: str | None) -> dict:
        """What this callback saved in `checkpoint` ({} without one, for an older checkpoint or an unreadable folder)."""
        try:
            state = json.loads(Path(checkpoint, "trainer_state.json").read_text()) if checkpoint else {}
        except (OSError, json.JSONDecodeError):
            return {}
        stored = state.get("stateful_callbacks", {}).get(cls.__name__, {})
        stored = stored[-1] if isinstance(stored, list) and stored else stored
        return stored if isinstance(stored, dict) else {}

    def on_train_begin(self, args, state, control, **kwargs):
        state.stateful_callbacks.setdefault(type(self).__name__, self.state())


class WallClock(CheckpointedState):
    """A run's wall time summed over the processes that trained it: each checkpoint's `trainer_state.json` records the
    seconds spent up to it (the Trainer saves an `ExportableState` callback's `state()` there), and a run resumed from
    that checkpoint starts its clock from them (`from_checkpoint`). Time after the last checkpoint of a process that was
    cut off is not counted: its work was lost too."""

    def __init__(self, elapsed_before_s: float = 0.0, started: float | None = None):
        """`started`: when this process's share began (`time.time()`; default now)."""
        self.elapsed_before_s = float(elapsed_before_s)
        self.started = time.time() if started is None else started

    def elapsed(self) -> float:
        return self.elapsed_before_s + time.time() - self.started

    def state(self) -> dict:
        return {"args": {}, "attributes": {"elapsed_before_s": round(self.elapsed(), 1)}}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_hyper_param_search:  # a sweep trains one trial after another: each trial's clock starts at 0
            self.elapsed_before_s, self.started = 0.0, time.time()
        super().on_train_begin(args, state, control, **kwargs)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | None, started: float | None = None) -> WallClock:
        """A clock that starts from the seconds recorded in `checkpoint`: 0 without one, for a checkpoint of an older run,
        or for a folder that is not a readable checkpoint (the resume refuses that one with its own error)."""
        before = cls.stored(checkpoint).get("attributes", {}).get("elapsed_before_s", 0.0)
        return cls(before, started)


# A resumed Trainer restores the checkpoint's optimizer (its learning rate and weight decay), schedule, and batches
# seen; these settings of a resumed run would be silently overridden or would change what the restored state means.
RESUME_SETTINGS = ("learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "weight_decay", "optim", "adam_beta1",
                   "adam_beta2", "adam_epsilon", "per_device_train_batch_size", "gradient_accumulation_steps", "seed")


class RunSettings(CheckpointedState):
    """The run's `RESUME_SETTINGS`, saved in every checkpoint's trainer_state.json, so a resume can be checked against
    them (`changed_on_resume`) instead of training on at the checkpoint's learning rate while recording another one."""

    def __init__(self, settings: dict):
        self.settings = dict(settings)

    @classmethod
    def of(cls, training_args) -> RunSettings:
        values = {name: getattr(training_args, name, None) for name in RESUME_SETTINGS}
        return cls({name: value.value if isinstance(value, Enum) else value for name, value in values.items()})

    def state(self) -> dict:
        return {"args": {"settings": self.settings}, "attributes": {}}

    def on_train_begin(self, args, state, control, **kwargs):
        self.settings = RunSettings.of(args).settings  # a sweep sets each trial's learning rate on `args` itself
        super().on_train_begin(args, state, control, **kwargs)

    def changed_on_resume(self, checkpoint: str) -> dict:
        """`{setting: (the checkpoint's, this run's)}` for each recorded setting this run changes ({} for a checkpoint
        that recorded none, e.g. one written before this callback)."""
        stored = self.stored(checkpoint).get("args", {}).get("settings", {})
        return {name: (stored[name], value) for name, value in self.settings.items() if name in stored and stored[name] != value}


class RestartAugmentation(TrainerCallback):
    """Make a training split's on-the-fly augmentation a function of the run's position, not of the process: as training
    begins, `transform.restart(sizes)` restarts its stream from the seed and replays the draws of the batches already
    trained (a resumed run: the Trainer skips them without transforming them). So a resumed run, or one continued from a
    sweep trial, augments each batch as the uninterrupted run does, and each trial of a sweep starts the stream afresh."""

    def __init__(self, transform, num_rows: int):
        self.transform, self.num_rows = transform, num_rows

    def trained_batch_sizes(self, args, state, batches_per_epoch: int) -> list[int]:
        """The sizes of the batches the first `state.global_step` optimizer steps consumed, in order (one process: the
        Trainer's epochs of `batches_per_epoch` batches, each full but an epoch's last)."""
        accumulation = args.gradient_accumulation_steps
        steps_per_epoch = -(-batches_per_epoch // accumulation)  # the Trainer's update steps per epoch (the last may be short)
        epochs, steps = divmod(state.global_step, steps_per_epoch)
        batch = args.per_device_train_batch_size
        last = batch if args.dataloader_drop_last else self.num_rows - (batches_per_epoch - 1) * batch
        epoch = [batch] * (batches_per_epoch - 1) + [last]
        return epoch * epochs + epoch[: steps * accumulation]

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        if state.global_step == 0 or train_dataloader is None:
            self.transform.restart()
        elif args.world_size > 1:  # each process draws for its shard; the shards' sizes are not replayed here
            logger.warning("Resumed on %d processes: the training augmentation restarts from its seed (not replayed).", args.world_size)
            self.transform.restart()
        else:
            self.transform.restart(self.trained_batch_sizes(args, state, len(train_dataloader)))
