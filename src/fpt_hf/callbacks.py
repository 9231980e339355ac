"""Trainer callbacks of every `fpt-hf train` run: fail on a diverged loss, and keep a run's wall time across resumes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState


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


class WallClock(TrainerCallback, ExportableState):
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

    @classmethod
    def from_checkpoint(cls, checkpoint: str | None, started: float | None = None) -> WallClock:
        """A clock that starts from the seconds recorded in `checkpoint`: 0 without one, for a checkpoint of an older run,
        or for a folder that is not a readable checkpoint (the resume refuses that one with its own error)."""
        try:
            state = json.loads(Path(checkpoint, "trainer_state.json").read_text()) if checkpoint else {}
        except (OSError, json.JSONDecodeError):
            state = {}
        stored = state.get("stateful_callbacks", {}).get(cls.__name__, {})
        stored = stored[-1] if isinstance(stored, list) and stored else stored
        before = stored.get("attributes", {}).get("elapsed_before_s", 0.0) if isinstance(stored, dict) else 0.0
        return cls(before, started)
