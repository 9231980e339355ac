#!/usr/bin/env python
"""The paper's table on CPU: fpt, full, frozen_random and LSTM on the seven tasks at one budget per task.

    python examples/cpu_grid.py --plan                                       # the protocol and every command
    python examples/cpu_grid.py --tasks bit_xor --data_root ../shared/data   # run a task's cells (finished work is skipped)
    python examples/cpu_grid.py --tasks mnist --methods full --seeds 1       # one method, one seed
    python examples/cpu_grid.py --collect                                    # table + learning curves
    python examples/cpu_grid.py --status                                     # each cell: sweep, rate, seeds done, next

The protocol (docs/cpu_grid.md): the embedded SmolLM2-135M, its first `layers` blocks for fpt, full and frozen_random; one
budget (steps x batch) per task shared by the four methods; each method's learning rate chosen by `fpt-hf sweep` over
three rates around the paper's, at 10% of the budget, scored on the validation split (seed 0); then `fpt-hf train` at
that rate for each seed at the full budget, evaluated on the full held-out split. Sweeps go to
results/cpu-grid/sweeps/<task>-<method>/, results JSONs (with their learning curves) to results/cpu-grid/.
Run one job per core (`OMP_NUM_THREADS=1`); each sweep and run resumes or is skipped when it is already done.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    other_seeds: int = 2  # seeds for full, frozen_random and the LSTM (fpt always 2); 1 where a run is over ~1.5 h


# Sized so one fpt run (training and its evaluations) stays within ~2.5 h on one core of the 2-core development machine,
# from the measured 1-thread rates at 6 blocks (docs/performance.md: ListOps 0.31, CIFAR-10 LRA 1.11, remote homology
# 2.42 training samples/s; MNIST ~0.57 s per step of 16 on 2026-11-26, so 12,500 steps ~2 h: an earlier 25,000-step run
# took 2.3 h, but the same steps measured 0.62 s each in the grid, 4.3 h). ListOps and CIFAR-10 LRA use 3 blocks: at 6, a ListOps run
# would hold ~200 steps and its 2,000-row evaluations ~33 min each. Bit memory keeps the attention-sink token that its
# 6-block fpt runs needed (docs/results.md). docs/cpu_grid.md records the wall times measured.
PROTOCOL = {
    "bit_memory": Budget(steps=6000, batch=16, eval_every=500, other_seeds=1, transformer_flags=("--sink_tokens", "1")),
    "bit_xor": Budget(steps=500, batch=16, eval_every=50),
    "listops": Budget(steps=400, batch=8, eval_every=200, layers=3, other_seeds=1),
    "mnist": Budget(steps=12500, batch=16, eval_every=1250, other_seeds=1),
    "cifar10": Budget(steps=12500, batch=16, eval_every=1250, other_seeds=1),
    "cifar10_lra": Budget(steps=1000, batch=8, eval_every=500, layers=3, other_seeds=1),
    "remote_homology": Budget(steps=2000, batch=8, eval_every=500),
}


def seeds_for(task: str, method: str) -> list[int]:
    return [0, 1] if method == "fpt" else list(range(PROTOCOL[task].other_seeds))


def candidate_rates(task: str) -> list[float]:
    from fpt_hf.tasks import get_task

    paper = get_task(task).recipe.learning_rate
    return [float(f"{factor * paper:.3g}") for factor in LR_FACTORS]


def run_flags(task: str, method: str, data_root: str | None) -> list[str]:
    """The `fpt-hf train` flags every sweep trial and final run of a cell shares (not the rate, seed, length)."""
    budget = PROTOCOL[task]
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


def sweep_command(task: str, method: str, data_root: str | None, rates: list[float] | None = None) -> list[str]:
    steps = max(int(PROTOCOL[task].steps * SWEEP_FRACTION), 1)
    return ["fpt-hf", "sweep", "--learning_rates", *map(str, rates or candidate_rates(task)), "--seeds", str(SWEEP_SEED),
            "--sweep_dir", str(sweep_dir(task, method)), "--trial_checkpoints", str(trial_checkpoints_dir(task, method)),
            *run_flags(task, method, data_root), "--max_steps", str(steps), "--eval_steps", str(steps)]


def trial_to_continue(task: str, method: str, seed: int, learning_rate: float) -> Path | None:
    """The sweep trial a run can start from instead of training its first steps again (`fpt-hf train --continue_trial`):
    the trial at the run's rate and seed, if the sweep kept its checkpoint and the trial ended at one of the run's
    evaluation steps (so the run's curve and checkpoint choice are those of a run from scratch)."""
    record = sweep_dir(task, method) / "trials" / f"lr{learning_rate:.6g}-seed{seed}.json"
    if not record.is_file():
        return None
    trial = json.loads(record.read_text())
    kept = trial.get("checkpoint") and Path(trial["checkpoint"], "trainer_state.json").is_file()
    return record if kept and trial["steps"] % PROTOCOL[task].eval_every == 0 else None


def best_rate(task: str, method: str) -> float | None:
    path = sweep_dir(task, method) / "sweep.json"
    return json.loads(path.read_text())["best"]["learning_rate"] if path.exists() else None


def run_dir(task: str, method: str, seed: int, learning_rate: float) -> Path:
    return Path(f"outputs/cpu-grid/{task}-{method}-lr{learning_rate:g}-seed{seed}")


def train_command(task: str, method: str, seed: int, learning_rate: float, data_root: str | None) -> list[str]:
    """The run's `fpt-hf train` command; it resumes from the run's last checkpoint when an earlier run was cut off, or
    else starts from the sweep's trial at its rate and seed where that is the run's beginning (`trial_to_continue`)."""
    budget = PROTOCOL[task]
    output_dir = run_dir(task, method, seed, learning_rate)
    trial = trial_to_continue(task, method, seed, learning_rate)
    if any(output_dir.glob("checkpoint-*")):
        resume = ["--resume_from_checkpoint", "true"]
    else:
        resume = ["--continue_trial", str(trial)] if trial else []
    return ["fpt-hf", "train", *run_flags(task, method, data_root), "--learning_rate", f"{learning_rate:g}", "--seed", str(seed),
            "--max_steps", str(budget.steps), "--eval_steps", str(budget.eval_every), "--save_steps", str(budget.eval_every),
            "--results_dir", str(RESULTS), "--output_dir", str(output_dir), *resume]


def at_chosen_rate(result: dict) -> bool:
    """A run counts for its cell only at the rate the cell's sweep chose (a later, wider sweep may choose another)."""
    rate = best_rate(result["task"], result["method"])
    return rate is None or result["training_args"]["learning_rate"] == rate


def finished_run(task: str, method: str, seed: int) -> Path | None:
    """The results JSON of this cell and seed at the task's budget and chosen rate, if it is there."""
    for path in sorted(RESULTS.glob(f"{task}-{method}-*-{PROTOCOL[task].steps}steps-seed{seed}*.json")):
        result = json.loads(path.read_text())
        if result["task"] == task and result["method"] == method and at_chosen_rate(result):
            return path
    return None


def run_cell(task: str, method: str, seeds: list[int] | None, data_root: str | None, sweep_only: bool = False) -> None:
    """Sweep (resumes; widened by the edge rule), then train each seed at the best rate (skips seeds already done)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for _ in range(MAX_EXTENSIONS + 2):
        rates = next_sweep(task, method)
        if rates is None:
            break
        if rates != candidate_rates(task):
            print(f"{task} {method}: the best rate {best_rate(task, method):g} sits at an end of the swept ones; sweeping {rates}", flush=True)
        _run(sweep_command(task, method, data_root, rates), env)
    else:
        raise RuntimeError(f"{task} {method}: the sweep in {sweep_dir(task, method)} did not record the rates {rates}.")
    rate = best_rate(task, method)
    for seed in [] if sweep_only else seeds if seeds is not None else seeds_for(task, method):
        done = finished_run(task, method, seed)
        if done:
            print(f"skip {task} {method} seed {seed}: {done}", flush=True)
            continue
        _run(train_command(task, method, seed, rate, data_root), env)


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


def _run(command: list[str], env: dict) -> None:
    print("$", shlex.join(command), flush=True)
    subprocess.run([sys.executable, "-m", "fpt_hf.cli", *command[1:]], check=True, env=env)  # `fpt-hf` of this interpreter


def rates_swept(task: str, method: str, rates: list[float]) -> bool:
    path = sweep_dir(task, method) / "sweep.json"
    return path.exists() and {row["learning_rate"] for row in json.loads(path.read_text())["by_learning_rate"]} >= set(rates)


def extended_rates(rates: list[float], best: float) -> list[float]:
    """`rates` plus the next rate past the end where the best one sits, or beyond which it lies when an earlier call
    already widened them that way (the optimum may lie further); else `rates`."""
    step = max(rates) / sorted(rates)[-2] if len(rates) > 1 else 3.0
    if best >= max(rates):
        return [*rates, float(f"{max(rates) * step:.3g}")]
    if best <= min(rates):
        return [float(f"{min(rates) / step:.3g}"), *rates]
    return rates


def last_checkpoint(task: str, method: str, seed: int, learning_rate: float) -> int | None:
    """The step of the checkpoint a cut-off run resumes from (the Trainer's own `get_last_checkpoint`, as `fpt-hf train
    --resume_from_checkpoint true` finds it), or None."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = run_dir(task, method, seed, learning_rate)
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return int(Path(last).name.split("-")[1]) if last else None


def status(tasks=None, methods=None) -> str:
    """Where each cell stands: its sweep (validation accuracy per rate), the chosen rate, the seeds done and what comes
    next (a sweep, a run resuming from its checkpoint, a new run), as a Markdown table."""
    lines = ["| task | method | sweep: rate -> validation % | rate | done | next |", "|---|---|---|---|---|---|"]
    for task in tasks or TASKS:
        for method in methods or METHODS:
            path = sweep_dir(task, method) / "sweep.json"
            rows = json.loads(path.read_text())["by_learning_rate"] if path.exists() else []
            swept = ", ".join(f"{r['learning_rate']:g}: {100 * r['mean']:.2f}{'*' if r.get('one_class') else ''}"
                              for r in sorted(rows, key=lambda r: r["learning_rate"]) if r["mean"] is not None)
            pending, rate = next_sweep(task, method), best_rate(task, method)
            done = {seed: finished_run(task, method, seed) for seed in seeds_for(task, method)}
            accuracies = [f"seed {seed}: {100 * json.loads(p.read_text())['accuracy']:.2f}" for seed, p in done.items() if p]
            todo = [seed for seed, p in done.items() if not p]
            if pending is not None:
                new = sorted(set(pending) - {r["learning_rate"] for r in rows})
                step = f"sweep {', '.join(f'{r:g}' for r in new)}"
            elif todo:
                checkpoint = last_checkpoint(task, method, todo[0], rate)
                trial = None if checkpoint else trial_to_continue(task, method, todo[0], rate)
                step = f"seed {todo[0]}" + (f", resumes at step {checkpoint} of {PROTOCOL[task].steps}" if checkpoint else "")
                step += f", starts from its sweep trial at step {json.loads(trial.read_text())['steps']}" if trial else ""
            else:
                step = "done"
            lines.append(f"| {task} | {method} | {swept or '-'} | {'' if pending is not None or rate is None else f'{rate:g}'} | "
                         f"{'; '.join(accuracies) or '-'} | {step} |")
    if any("*" in line for line in lines[2:]):
        lines.append("\n\\* the trial ended predicting one class for every row: its accuracy is that class's share, not learning "
                     "(measured for trials run since 2026-11-26).")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------- collect
def collect() -> dict[tuple[str, str], list[dict]]:
    """(task, method) -> the results at the task's budget and the cell's chosen rate, one per seed."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        if result["task"] in PROTOCOL and result["steps"] == PROTOCOL[result["task"]].steps and at_chosen_rate(result):
            cells.setdefault((result["task"], result["method"]), []).append(result)
    return cells


def _cell_text(runs: list[dict] | None) -> str:
    if not runs:
        return "-"
    acc = 100 * np.array([r["accuracy"] for r in runs])
    lr = runs[0]["training_args"]["learning_rate"]
    spread = f" ± {acc.std(ddof=1):.2f}" if len(acc) > 1 else ""
    return f"{acc.mean():.2f}{spread} ({len(acc)}; lr {lr:g})"


def table(cells: dict) -> str:
    from fpt_hf.results import PAPER

    lines = ["| task | budget (steps x batch) | fpt | full | frozen_random | LSTM | paper fpt / full / frozen_random / LSTM | wall time per run (h) |",
             "|---|---|---|---|---|---|---|---|"]
    for task in TASKS:
        budget = PROTOCOL[task]
        walls = ", ".join(f"{m} {np.mean([r['wall_time_s'] for r in cells[(task, m)]]) / 3600:.2f}" for m in METHODS if (task, m) in cells)
        paper = " / ".join(str(PAPER[m].get(task, "-")) for m in METHODS)
        lines.append(f"| {task} | {budget.steps} x {budget.batch} | " + " | ".join(_cell_text(cells.get((task, m))) for m in METHODS)
                     + f" | {paper} | {walls or '-'} |")
    lines.append("")
    lines.append("Cells: test accuracy % (remote homology: TAPE valid, the paper's split), mean ± std over seeds (n seeds; the "
                 "learning rate the sweep chose). The transformer methods run the task's first `layers` SmolLM2 blocks (6; ListOps and "
                 "CIFAR-10 LRA 3).")
    return "\n".join(lines)


def curves_figure(cells: dict, path: Path) -> Path:
    """Accuracy on each run's selection split (validation; remote homology: a slice of train) vs steps, one panel per
    task, one line per method (mean over seeds); a ring where every seed answered one class for every row, a dotted line
    at the most common class's share (runs since 2026-11-26 record both), or its value in the legend where it lies far
    below the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any((t, m) in cells for m in METHODS)]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(3.6 * max(len(tasks), 1), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for method in METHODS:
            runs = [r for r in cells.get((task, method), []) if r.get("curve")]
            if not runs:
                continue
            steps = sorted({p["step"] for r in runs for p in r["curve"]})
            mean = [100 * np.mean([p["accuracy"] for r in runs for p in r["curve"] if p["step"] == s]) for s in steps]
            line, = ax.plot(steps, mean, marker=".", label=f"{method} (n={len(runs)})")
            one_class = [(s, m) for s, m in zip(steps, mean)  # every seed answered one class for every row there
                         if all(p.get("top_prediction_share") == 1.0 for r in runs for p in r["curve"] if p["step"] == s)]
            if one_class:
                ax.plot(*zip(*one_class), "o", mfc="none", color=line.get_color(), ms=7)
        floors = [r["most_common_class_share"][r["selection_split"]] for m in METHODS for r in cells.get((task, m), [])
                  if (r.get("most_common_class_share") or {}).get(r.get("selection_split"))]
        if floors:  # drawn where it falls within the curves' range; far below them it would flatten the curves
            floor, (bottom, top) = 100 * np.mean(floors), ax.get_ylim()
            if floor >= bottom - 0.1 * (top - bottom):
                ax.axhline(floor, color="gray", ls=":", lw=1, label="most common class")
            else:
                ax.plot([], [], color="gray", ls=":", lw=1, label=f"most common class: {floor:.1f}% (below the axis)")
        splits = sorted({r.get("selection_split") or "validation" for m in METHODS for r in cells.get((task, m), [])})
        ax.set_title(f"{task} ({', '.join(splits)} split)", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("accuracy % on the selection split")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=[], choices=TASKS)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="default: 2 for fpt, the task's other_seeds for the rest")
    parser.add_argument("--data_root", default=None, help="folder with mnist/, cifar10/, remote_homology/ Parquet folders")
    parser.add_argument("--sweep_only", action="store_true", help="run the cells' learning-rate sweeps, not the runs")
    parser.add_argument("--plan", action="store_true", help="print the protocol and the commands, run nothing")
    parser.add_argument("--collect", action="store_true", help="write results/cpu-grid/table.md and curves.png")
    parser.add_argument("--status", action="store_true", help="print where each cell stands and what it runs next, run nothing")
    args = parser.parse_args(argv)
    if args.status:
        print(status(args.tasks, args.methods))
        return
    if args.plan:
        for task in args.tasks or TASKS:
            budget = PROTOCOL[task]
            print(f"\n{task}: {budget.steps} steps x batch {budget.batch}, first {budget.layers} blocks, rates {candidate_rates(task)}")
            for method in args.methods:
                print("  $", shlex.join(sweep_command(task, method, args.data_root)))
                rate = best_rate(task, method)
                for seed in args.seeds if args.seeds is not None else seeds_for(task, method):
                    command = train_command(task, method, seed, rate or 0.0, args.data_root)
                    print("  $", shlex.join(command) if rate else shlex.join(command).replace("--learning_rate 0", "--learning_rate <best>"))
        return
    for task in args.tasks:
        for method in args.methods:
            run_cell(task, method, args.seeds, args.data_root, args.sweep_only)
    if args.collect or args.tasks:
        cells = collect()
        (RESULTS / "table.md").parent.mkdir(parents=True, exist_ok=True)
        (RESULTS / "table.md").write_text(table(cells) + "\n")
        print(table(cells))
        print(curves_figure(cells, RESULTS / "curves.png"))
        if RESULTS.resolve() == Path(__file__).resolve().parents[1] / "results" / "cpu-grid":  # the README shows this table
            subprocess.run([sys.executable, str(Path(__file__).with_name("sync_readme_tables.py"))], check=False)


if __name__ == "__main__":
    sys.exit(main())
