#!/usr/bin/env python
"""The paper's seven-task table on one GPU within a time budget: plan, run, collect.

    python examples/paper_table_gpu.py --dry_run                                   # the plan of all 28 cells in 45 min
    python examples/paper_table_gpu.py --budget_minutes 10 --tasks listops --methods fpt --data_root data   # one lease

The plan gives each (task, method) cell a share of the training budget (after the evaluation time is set aside),
picks a GPU-sized batch per task with the paper's learning rate scaled by sqrt(batch / 4) (the paper's batch), and turns
the share into steps: a step takes the longer of its tokens at `--tokens_per_second` and `--step_seconds` (the per-step
floor of short sequences), both measured on an H200 (the tokens/s of an H100 too; each run also stops at its time limit). Runs use the paper's recipe otherwise (`--preset paper`), bf16
compute and SDPA attention, write the usual results JSONs (the GPU named in each) and end with the table. docs/gpu.md has the command that starts it on a fresh GPU
machine and the basis of the default throughput estimate.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

TASKS = ("bit_memory", "bit_xor", "listops", "mnist", "cifar10", "cifar10_lra", "remote_homology")
METHODS = ("fpt", "full", "frozen_random", "lstm")
# Real tokens per training example (mean; ListOps and remote homology vary) and the held-out rows evaluated per run.
TOKENS = {"bit_memory": 120, "bit_xor": 10, "listops": 1035, "mnist": 64, "cifar10": 64, "cifar10_lra": 1024, "remote_homology": 167}
EVAL_ROWS = {"bit_memory": 2000, "bit_xor": 2000, "listops": 4000, "mnist": 15000, "cifar10": 15000, "cifar10_lra": 15000,
             "remote_homology": 2100}
GPU_BATCH = {"bit_memory": 64, "bit_xor": 256, "listops": 32, "mnist": 128, "cifar10": 128, "cifar10_lra": 32, "remote_homology": 32}
PAPER_BATCH = 4
# Share of the training time per task: the long, hard tasks need the most steps. Bit XOR is solved in a few hundred
# steps, but its steps (batch 256 x 10 tokens) take the per-step floor, as bit memory's do.
TASK_WEIGHT = {"bit_memory": 1.0, "bit_xor": 1.0, "listops": 2.5, "mnist": 1.0, "cifar10": 1.5, "cifar10_lra": 2.5, "remote_homology": 1.25}
# Cost per token relative to an fpt step: `full` also computes weight gradients (fwd + 2 bwd matmuls instead of fwd + 1),
# frozen_random is an fpt step, the LSTM (3 x 768) is a fraction of a 30-layer transformer.
METHOD_COST = {"fpt": 1.0, "frozen_random": 1.0, "full": 1.5, "lstm": 0.3}
# The plan's speed model, measured on an H200 (docs/gpu.md), SmolLM2-135M with all 30 blocks, bf16, SDPA, the paper preset:
# a step takes the longer of the time its computed tokens (padding included) need at TOKENS_PER_SECOND and STEP_SECONDS.
# ListOps fpt, 32 random rows padded to 1.82x (60k tokens): ~2.0 steps/s, 1.2e5 tokens/s, GPU 100% busy; CIFAR-10 LRA
# fpt, 32 x 1024 tokens: 3.70 steps/s, 1.21e5 tokens/s; CIFAR-10 fpt, 128 x 64 tokens: 3.47 steps/s (0.288 s), GPU ~18%
# busy: a short-sequence step is bound by a per-step floor off the GPU, not by its tokens. The defaults keep a margin.
TOKENS_PER_SECOND = 1.1e5
STEP_SECONDS = 0.3
# Computed training tokens/s measured on other GPUs (docs/gpu.md), used when the GPU's name contains the key: an H100
# lease trained ListOps fpt at ~1.3 steps/s of 32 length-grouped rows, ~4.5e4 tokens/s (a third of the H200's rate).
MEASURED_TOKENS_PER_SECOND = {"H100": 4.5e4, "H200": TOKENS_PER_SECOND}
# Tasks of at most this many tokens train without selective checkpointing: their activations are small, and a short
# step is bound by per-op overhead, of which selective checkpointing's recompute adds a large share (4.1x the step of no
# checkpointing on a 30-block model with next to no arithmetic, benchmarks/checkpointing_overhead.py on CPU; not yet
# timed on a GPU, so the plan keeps STEP_SECONDS).
SHORT_TOKENS = 256
# Computed tokens per real token of a length-grouped batch of 32 (Trainer's group_by_length on the training split's
# lengths; random batches pad ListOps to 1.82x and remote homology to 2.83x).
PADDING = {"listops": 1.014, "remote_homology": 1.058}
# Data preparation before a task's first run, once per grid: ListOps is generated (96,000 expressions took ~110 s on the
# H200 machine's CPU and 171 s on the H100 machine's, plus ~20 s to tokenize and save); the others read Parquet in seconds.
DATA_MINUTES = {"listops": 3.5}
EVAL_SPEEDUP = 3.0  # forward only
MIN_STEPS = 50
# Each run trains until its time limit (`--time_limit_minutes`), which keeps this multiple of its planned evaluation time
# and the planned time of the runs after it free, so a GPU slower than the plan assumed shortens runs instead of
# cutting the grid off before its results are written (an H100 lease lost its only run that way).
EVAL_MARGIN = 2.0
MIN_LIMIT_MINUTES = 0.5


@dataclass
class Cell:
    task: str
    method: str
    batch: int
    learning_rate: float
    steps: int
    train_minutes: float
    eval_minutes: float


def default_tokens_per_second(gpu_name: str | None) -> float:
    """The measured rate of the GPU named `gpu_name` (`MEASURED_TOKENS_PER_SECOND`), else the H200's."""
    return next((rate for key, rate in MEASURED_TOKENS_PER_SECOND.items() if gpu_name and key in gpu_name), TOKENS_PER_SECOND)


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def data_minutes(tasks) -> float:
    """Minutes of data preparation the grid spends once per task before its first run (ListOps is generated)."""
    return sum(DATA_MINUTES.get(task, 0.0) for task in set(tasks))


def step_seconds(task: str, method: str, batch: int, tokens_per_second: float = TOKENS_PER_SECOND,
                 floor: float = STEP_SECONDS) -> float:
    """Seconds per training step: the batch's computed tokens at `tokens_per_second` (scaled by the method's cost), or
    the per-step `floor` where that is longer (short sequences)."""
    tokens = batch * TOKENS[task] * PADDING.get(task, 1.0) * METHOD_COST[method]
    return max(floor, tokens / tokens_per_second)


def plan(budget_minutes: float, tasks=TASKS, methods=METHODS, tokens_per_second: float = TOKENS_PER_SECOND,
         overhead_minutes: float = 0.3, floor: float = STEP_SECONDS) -> list[Cell]:
    """Training time per cell in proportion to its task's `TASK_WEIGHT`, after evaluation, per-run overhead (model load)
    and data preparation (`DATA_MINUTES`) are set aside; steps from `step_seconds`."""
    from fpt_hf.tasks import get_task

    if budget_minutes <= 0 or tokens_per_second <= 0 or floor < 0:
        raise ValueError(f"budget_minutes and tokens_per_second must be positive and the step floor not negative, got "
                         f"{budget_minutes}, {tokens_per_second} and {floor}.")
    cells = [(task, method) for task in tasks for method in methods]
    if not cells:
        raise ValueError("No cells to plan: give at least one task and one method.")
    eval_minutes = {task: EVAL_ROWS[task] * TOKENS[task] / (tokens_per_second * EVAL_SPEEDUP) / 60 for task in tasks}
    fixed = sum(eval_minutes[t] * METHOD_COST[m] + overhead_minutes for t, m in cells) + data_minutes(tasks)
    left = budget_minutes - fixed
    if left <= 0:
        raise ValueError(f"A budget of {budget_minutes} min does not cover evaluation, data preparation and start-up ({fixed:.1f} min) "
                         f"of {len(cells)} runs.")
    out = []
    total_weight = sum(TASK_WEIGHT[task] for task, _ in cells)
    for task, method in cells:
        share = left * TASK_WEIGHT[task] / total_weight
        batch = GPU_BATCH[task]
        steps = int(share * 60 / step_seconds(task, method, batch, tokens_per_second, floor))
        lr = get_task(task).recipe.learning_rate * math.sqrt(batch / PAPER_BATCH)
        out.append(Cell(task, method, batch, float(f"{min(lr, 3e-3):.2g}"), steps, share, eval_minutes[task] * METHOD_COST[method]))
    return out


def time_limit_minutes(cells: list[Cell], index: int, minutes_left: float, overhead_minutes: float = 0.3) -> float:
    """Minutes that run `cells[index]` may spend on data preparation and training so that the grid still ends within
    `minutes_left`: what is left after `EVAL_MARGIN` times its planned evaluation and the planned time of the runnable
    cells after it (their training, evaluation, start-up and any data they are first to prepare)."""
    later = [c for c in cells[index + 1:] if c.steps >= MIN_STEPS]
    prepared = {c.task for c in cells[: index + 1] if c.steps >= MIN_STEPS}  # a cell too short to run prepares nothing
    reserved = sum(c.train_minutes + c.eval_minutes + overhead_minutes for c in later) + data_minutes({c.task for c in later} - prepared)
    return minutes_left - EVAL_MARGIN * cells[index].eval_minutes - reserved


def format_plan(cells: list[Cell], budget_minutes: float, tokens_per_second: float, floor: float = STEP_SECONDS) -> str:
    lines = [f"plan: {len(cells)} runs in {budget_minutes:g} min at an assumed {tokens_per_second:.3g} training tokens/s, "
             f"{floor:g} s per step at least", "",
             "| task | method | batch | lr | steps | train min | eval min | runs |", "|---|---|---|---|---|---|---|---|"]
    for c in cells:
        runs = "yes" if c.steps >= MIN_STEPS else f"no (< {MIN_STEPS} steps)"
        lines.append(f"| {c.task} | {c.method} | {c.batch} | {c.learning_rate:g} | {c.steps} | {c.train_minutes:.2f} | {c.eval_minutes:.2f} | {runs} |")
    total = sum(c.train_minutes + c.eval_minutes for c in cells if c.steps >= MIN_STEPS)
    prep = data_minutes(c.task for c in cells)
    lines.append(f"\nestimated total: {total:.1f} min of training and evaluation, {prep:.1f} min of data preparation (plus start-up per run)")
    return "\n".join(lines)


def run_argv(cell: Cell, backbone: str, layers: int | None, data_root: str | None, results_dir: str, output_root: str,
             seed: int, extra: list[str]) -> list[str]:
    """`fpt-hf train` flags of one cell: the paper's recipe with the planned batch, lr and steps, bf16 and SDPA, and
    length-grouped batches for variable-length tasks."""
    from fpt_hf.tasks import get_task

    task = get_task(cell.task)
    folder = getattr(task, "folder", task.name)  # the Parquet folder under --data_root (cifar10_lra reads cifar10/)
    argv = ["--task", cell.task, "--method", cell.method, "--preset", "paper", "--seed", str(seed),
            "--per_device_train_batch_size", str(cell.batch), "--learning_rate", str(cell.learning_rate), "--max_steps", str(cell.steps),
            "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none",
            "--logging_steps", str(max(cell.steps // 10, 1)), "--per_device_eval_batch_size", str(2 * cell.batch),
            "--results_dir", results_dir, "--output_dir", f"{output_root}/{cell.task}-{cell.method}-seed{seed}", "--overwrite_output_dir", "true",
            "--disable_tqdm", "true"]
    if cell.method != "lstm":
        argv += ["--backbone", backbone, "--compute_dtype", "bfloat16", "--attn_implementation", "sdpa"]
        argv += ["--num_backbone_layers", str(layers)] if layers else []
        if TOKENS[cell.task] <= SHORT_TOKENS:  # activation memory is small; selective checkpointing's per-op cost is not
            argv += ["--selective_checkpointing", "false"]
    if data_root and not task.generated:
        argv += ["--data_dir", str(Path(data_root) / folder)]
    if task.variable_length:  # the one departure from the paper's recipe (docs/gpu.md): batches of 32 random ListOps rows
        argv += ["--train_sampling_strategy", "group_by_length", "--length_column_name", "length"]  # pad to 1.8x their tokens
    return argv + list(extra)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget_minutes", type=float, default=45,
                        help="the grid's wall time: 45 plans all 28 cells; a 15-minute lease gives 10 to a subset (docs/gpu.md)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--num_backbone_layers", type=int, default=None, help="default: all (30 for SmolLM2-135M)")
    parser.add_argument("--tokens_per_second", type=float, default=None,
                        help="computed training tokens/s (padding included) of the backbone on this device (default: the rate "
                             "measured on this GPU's kind, MEASURED_TOKENS_PER_SECOND, else the H200's)")
    parser.add_argument("--step_seconds", type=float, default=STEP_SECONDS,
                        help="the least time of one training step on this device (what short sequences take)")
    parser.add_argument("--data_root", default=None, help="folder with mnist/, cifar10/, remote_homology/ Parquet folders")
    parser.add_argument("--results_dir", default="outputs/gpu-grid/results")
    parser.add_argument("--output_root", default="outputs/gpu-grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry_run", action="store_true", help="print the plan and exit")
    args, extra = parser.parse_known_args(argv)
    if args.tokens_per_second is None:
        args.tokens_per_second = default_tokens_per_second(gpu_name())
    cells = plan(args.budget_minutes, args.tasks, args.methods, args.tokens_per_second, floor=args.step_seconds)
    print(format_plan(cells, args.budget_minutes, args.tokens_per_second, args.step_seconds), flush=True)
    if args.dry_run:
        return []
    from fpt_hf.results import collect, markdown_table
    from fpt_hf.training import main as train

    done, start = [], time.time()
    for index, cell in enumerate(cells):
        if cell.steps < MIN_STEPS:
            continue
        began = time.time()
        limit = time_limit_minutes(cells, index, args.budget_minutes - (began - start) / 60)
        if limit < MIN_LIMIT_MINUTES:
            print(f"{cell.task} / {cell.method}: skipped, {limit:.2f} min left for it before the budget ends", flush=True)
            continue
        try:
            argv = run_argv(cell, args.backbone, args.num_backbone_layers, args.data_root, args.results_dir, args.output_root,
                            args.seed, extra)
            result = train([*argv, "--time_limit_minutes", f"{limit:.2f}"])
            done.append(result)
            cut = f" (its {limit:.1f}-minute time limit ended it early)" if result["stopped_by_time_limit"] else ""
            print(f"{cell.task} / {cell.method}: {result['eval_split']} accuracy {100 * result['accuracy']:.2f}% after {result['steps']} "
                  f"of {cell.steps} steps{cut}, {time.time() - began:.0f} s (planned {60 * (cell.train_minutes + cell.eval_minutes):.0f} s; "
                  f"{(time.time() - start) / 60:.1f} min so far)", flush=True)
        except Exception as err:  # one failing cell must not cost the rest of the grid
            print(f"{cell.task} / {cell.method}: FAILED ({type(err).__name__}: {err})", flush=True)
    table = markdown_table(collect(args.results_dir)) if done else "no run finished\n"
    Path(args.results_dir).mkdir(parents=True, exist_ok=True)
    Path(args.results_dir, "README-table.md").write_text(table)
    Path(args.output_root, "plan.json").write_text(json.dumps([asdict(c) for c in cells], indent=1))
    print(table)
    return done


if __name__ == "__main__":
    main()
