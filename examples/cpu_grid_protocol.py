"""The CPU grid's protocol (docs/cpu_grid.md): each task's shared budget, each cell's sweep and runs, their commands and
where their files live, and what of it is done (read from those files).

A cell is (task, method). Its learning rate comes from `fpt-hf sweep` over three rates around the paper's at 10% of the
task's budget, scored on the validation split (seed 0), widened by the edge rule (`extended_rates`); then `fpt-hf train`
at that rate for each seed at the full budget. Sweeps go to results/cpu-grid/sweeps/<task>-<method>/, results JSONs to
results/cpu-grid/, checkpoints to outputs/cpu-grid/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TASKS = ("bit_memory", "bit_xor", "listops", "mnist", "cifar10", "cifar10_lra", "remote_homology")
METHODS = ("fpt", "full", "frozen_random", "lstm")
RESULTS = Path("results/cpu-grid")
BACKBONE = "smollm2-135m"
LR_FACTORS = (0.3, 1.0, 3.0)  # x the paper's learning rate (1e-3; homology 1e-4)
MAX_EXTENSIONS = 2  # a best rate at either end of the swept ones adds the next rate past it (same ratio), at most this often
SWEEP_FRACTION = 0.1
SWEEP_SEED = 0
DATA_FOLDER = {"mnist": "mnist", "cifar10": "cifar10", "cifar10_lra": "cifar10", "remote_homology": "remote_homology"}


@dataclass(frozen=True)
class Budget:
    """One task's shared budget: `steps` x `batch` for every method, evaluated every `eval_every` steps."""

    steps: int
    batch: int
    eval_every: int
    layers: int = 6
    transformer_flags: tuple[str, ...] = ()  # for fpt, full and frozen_random alike (never the LSTM)
    flags: tuple[str, ...] = ()  # for every method


# Sized so one fpt run (training and its evaluations) stays within ~2.5 h on one core of the 2-core development machine,
# from the measured 1-thread rates at 6 blocks (docs/performance.md: ListOps 0.31, CIFAR-10 LRA 1.11, remote homology
# 2.42 training samples/s; MNIST ~0.57 s per step of 16 on 2026-11-26, so 12,500 steps ~2 h: an earlier 25,000-step run
# took 2.3 h, but the same steps measured 0.62 s each in the grid, 4.3 h). ListOps and CIFAR-10 LRA use 3 blocks: at 6, a ListOps run
# would hold ~200 steps and its 2,000-row evaluations ~33 min each. Bit memory keeps the attention-sink token that its
# 6-block fpt runs needed (docs/results.md). docs/cpu_grid.md records the wall times measured.
BUDGETS = {
    "bit_memory": Budget(steps=6000, batch=16, eval_every=500, transformer_flags=("--sink_tokens", "1")),
    "bit_xor": Budget(steps=500, batch=16, eval_every=50),
    "listops": Budget(steps=400, batch=8, eval_every=200, layers=3),
    "mnist": Budget(steps=12500, batch=16, eval_every=1250),
    "cifar10": Budget(steps=12500, batch=16, eval_every=1250),
    "cifar10_lra": Budget(steps=1000, batch=8, eval_every=500, layers=3),
    "remote_homology": Budget(steps=2000, batch=8, eval_every=500),
}


ONE_SEED_OVER_HOURS = 1.5  # the seed rule: 2 seeds per cell, 1 for a method other than fpt whose run is longer


def seeds_for(task: str, method: str) -> list[int]:
    """The cell's seeds: 2, except a method other than fpt whose seed-0 run took over `ONE_SEED_OVER_HOURS` (its results
    JSON's wall time, every process of a resumed run included) runs once. Before seed 0 has finished, both are planned."""
    first = None if method == "fpt" else finished_run(task, method, 0)
    # hours against hours: a run of exactly the limit is not over it (seconds against hours * 3600 rounds either way)
    if first is not None and json.loads(first.read_text())["wall_time_s"] / 3600 > ONE_SEED_OVER_HOURS:
        return [0]
    return [0, 1]


def candidate_rates(task: str) -> list[float]:
    from fpt_hf.tasks import get_task

    paper = get_task(task).recipe.learning_rate
    return [float(f"{factor * paper:.3g}") for factor in LR_FACTORS]


def extended_rates(rates: list[float], best: float) -> list[float]:
    """`rates` plus the next rate past the end where the best one sits, or beyond which it lies when an earlier call
    already widened them that way (the optimum may lie further); else `rates`."""
    step = max(rates) / sorted(rates)[-2] if len(rates) > 1 else 3.0
    if best >= max(rates):
        return [*rates, float(f"{max(rates) * step:.3g}")]
    if best <= min(rates):
        return [float(f"{min(rates) / step:.3g}"), *rates]
    return rates


def run_flags(task: str, method: str, data_root: str | None) -> list[str]:
    """The `fpt-hf train` flags every sweep trial and final run of a cell shares (not the rate, seed, length)."""
    budget = BUDGETS[task]
    flags = ["--task", task, "--method", method, "--preset", "cpu", "--use_cpu", "--per_device_train_batch_size", str(budget.batch),
             "--report_to", "none", "--disable_tqdm", "true", *budget.flags]
    if method != "lstm":
        flags += ["--backbone", BACKBONE, "--num_backbone_layers", str(budget.layers), *budget.transformer_flags]
    if data_root and task in DATA_FOLDER:
        flags += ["--data_dir", str(Path(data_root) / DATA_FOLDER[task])]
    return flags


def sweep_dir(task: str, method: str) -> Path:
    return RESULTS / "sweeps" / f"{task}-{method}"


def trial_checkpoints_dir(task: str, method: str) -> Path:
    """Where a cell's sweep keeps each trial's final checkpoint (outside the curated results folder)."""
    return Path(f"outputs/cpu-grid/sweeps/{task}-{method}")


def run_dir(task: str, method: str, seed: int, learning_rate: float) -> Path:
    return Path(f"outputs/cpu-grid/{task}-{method}-lr{learning_rate:g}-seed{seed}")


def sweep_command(task: str, method: str, data_root: str | None, rates: list[float] | None = None) -> list[str]:
    steps = max(int(BUDGETS[task].steps * SWEEP_FRACTION), 1)
    return ["fpt-hf", "sweep", "--learning_rates", *map(str, rates or candidate_rates(task)), "--seeds", str(SWEEP_SEED),
            "--sweep_dir", str(sweep_dir(task, method)), "--trial_checkpoints", str(trial_checkpoints_dir(task, method)),
            *run_flags(task, method, data_root), "--max_steps", str(steps), "--eval_steps", str(steps)]


def train_command(task: str, method: str, seed: int, learning_rate: float, data_root: str | None) -> list[str]:
    """The run's `fpt-hf train` command; it resumes from the run's last checkpoint when an earlier run was cut off, or
    else starts from the sweep's trial at its rate and seed where that is the run's beginning (`trial_to_continue`)."""
    budget = BUDGETS[task]
    output_dir = run_dir(task, method, seed, learning_rate)
    trial = trial_to_continue(task, method, seed, learning_rate)
    if any(output_dir.glob("checkpoint-*")):
        resume = ["--resume_from_checkpoint", "true"]
    else:
        resume = ["--continue_trial", str(trial)] if trial else []
    return ["fpt-hf", "train", *run_flags(task, method, data_root), "--learning_rate", f"{learning_rate:g}", "--seed", str(seed),
            "--max_steps", str(budget.steps), "--eval_steps", str(budget.eval_every), "--save_steps", str(budget.eval_every),
            "--results_dir", str(RESULTS), "--output_dir", str(output_dir), *resume]


def trial_to_continue(task: str, method: str, seed: int, learning_rate: float) -> Path | None:
    """The sweep trial a run can start from instead of training its first steps again (`fpt-hf train --continue_trial`):
    the trial at the run's rate and seed, if the sweep kept its checkpoint and the trial ended at one of the run's
    evaluation steps (so the run's curve and checkpoint choice are those of a run from scratch)."""
    record = sweep_dir(task, method) / "trials" / f"lr{learning_rate:.6g}-seed{seed}.json"
    if not record.is_file():
        return None
    trial = json.loads(record.read_text())
    kept = trial.get("checkpoint") and Path(trial["checkpoint"], "trainer_state.json").is_file()
    return record if kept and trial["steps"] % BUDGETS[task].eval_every == 0 else None


def best_rate(task: str, method: str) -> float | None:
    path = sweep_dir(task, method) / "sweep.json"
    return json.loads(path.read_text())["best"]["learning_rate"] if path.exists() else None


def rates_swept(task: str, method: str, rates: list[float]) -> bool:
    path = sweep_dir(task, method) / "sweep.json"
    return path.exists() and {row["learning_rate"] for row in json.loads(path.read_text())["by_learning_rate"]} >= set(rates)


def next_sweep(task: str, method: str) -> list[float] | None:
    """The rates the cell's next sweep call covers (the three around the paper's, plus any the edge rule adds), or None
    when the sweep is complete."""
    rates = candidate_rates(task)
    for extension in range(MAX_EXTENSIONS + 1):
        if not rates_swept(task, method, rates):
            return rates
        wider = extended_rates(rates, best_rate(task, method))
        if wider == rates or extension == MAX_EXTENSIONS:
            return None
        rates = wider
    return None


def at_chosen_rate(result: dict) -> bool:
    """A run counts for its cell only at the rate the cell's sweep chose (a later, wider sweep may choose another)."""
    rate = best_rate(result["task"], result["method"])
    return rate is None or result["training_args"]["learning_rate"] == rate


def finished_run(task: str, method: str, seed: int) -> Path | None:
    """The results JSON of this cell and seed at the task's budget and chosen rate, if it is there."""
    for path in sorted(RESULTS.glob(f"{task}-{method}-*-{BUDGETS[task].steps}steps-seed{seed}*.json")):
        result = json.loads(path.read_text())
        if result["task"] == task and result["method"] == method and at_chosen_rate(result):
            return path
    return None


def last_checkpoint(task: str, method: str, seed: int, learning_rate: float) -> int | None:
    """The step of the checkpoint a cut-off run resumes from (the Trainer's own `get_last_checkpoint`, as `fpt-hf train
    --resume_from_checkpoint true` finds it), or None."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = run_dir(task, method, seed, learning_rate)
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return int(Path(last).name.split("-")[1]) if last else None
