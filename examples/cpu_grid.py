#!/usr/bin/env python
"""The paper's table on CPU: fpt, full, frozen_random and LSTM on the seven tasks at one budget per task.

    python examples/cpu_grid.py --plan                                       # the protocol and every command
    python examples/cpu_grid.py --tasks bit_xor --data_root ../shared/data   # run a task's cells (finished work is skipped)
    python examples/cpu_grid.py --tasks mnist --methods full --seeds 1       # one method, one seed
    python examples/cpu_grid.py --collect                                    # table + learning curves
    python examples/cpu_grid.py --status                                     # each cell: sweep, rate, seeds done, next

The protocol (docs/cpu_grid.md) is in cpu_grid_protocol.py: each task's budget, each cell's sweep and runs and their
files; the reports (`--status`, the table and the learning curves) in cpu_grid_report.py. This script runs the cells:
each method's learning-rate sweep, then its seeds at the chosen rate. Run one job per core (`OMP_NUM_THREADS=1`); each
sweep and run resumes or is skipped when it is already done.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import cpu_grid_protocol as protocol
import cpu_grid_report as report


def run_cell(task: str, method: str, seeds: list[int] | None, data_root: str | None, sweep_only: bool = False) -> None:
    """Sweep (resumes; widened by the edge rule), then train each seed at the best rate (skips seeds already done)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for _ in range(protocol.MAX_EXTENSIONS + 2):
        rates = protocol.next_sweep(task, method)
        if rates is None:
            break
        if rates != protocol.candidate_rates(task):
            print(f"{task} {method}: the best rate {protocol.best_rate(task, method):g} sits at an end of the swept ones; sweeping {rates}", flush=True)
        _run(protocol.sweep_command(task, method, data_root, rates), env)
    else:
        raise RuntimeError(f"{task} {method}: the sweep in {protocol.sweep_dir(task, method)} did not record the rates {rates}.")
    rate = protocol.best_rate(task, method)
    for seed in [] if sweep_only else seeds if seeds is not None else protocol.seeds_for(task, method):
        if seeds is None and seed not in protocol.seeds_for(task, method):  # seed 0 just ran over the one-seed limit
            print(f"skip {task} {method} seed {seed}: seed 0 took over {protocol.ONE_SEED_OVER_HOURS} h, one seed is the rule", flush=True)
            continue
        done = protocol.finished_run(task, method, seed)
        if done:
            print(f"skip {task} {method} seed {seed}: {done}", flush=True)
            continue
        _run(protocol.train_command(task, method, seed, rate, data_root), env)


def _run(command: list[str], env: dict) -> None:
    print("$", shlex.join(command), flush=True)
    subprocess.run([sys.executable, "-m", "fpt_hf.cli", *command[1:]], check=True, env=env)  # `fpt-hf` of this interpreter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=[], choices=protocol.TASKS)
    parser.add_argument("--methods", nargs="*", default=list(protocol.METHODS), choices=protocol.METHODS)
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="default: 0 and 1; for a method other than fpt only 0 where that run took over 1.5 h")
    parser.add_argument("--data_root", default=None, help="folder with mnist/, cifar10/, remote_homology/ Parquet folders")
    parser.add_argument("--sweep_only", action="store_true", help="run the cells' learning-rate sweeps, not the runs")
    parser.add_argument("--plan", action="store_true", help="print the protocol and the commands, run nothing")
    parser.add_argument("--collect", action="store_true", help="write results/cpu-grid/table.md and curves.png")
    parser.add_argument("--status", action="store_true", help="print where each cell stands and what it runs next, run nothing")
    args = parser.parse_args(argv)
    if args.status:
        print(report.status(args.tasks, args.methods))
        return
    if args.plan:
        print(report.plan(args.tasks or protocol.TASKS, args.methods, args.seeds, args.data_root))
        return
    for task in args.tasks:
        for method in args.methods:
            run_cell(task, method, args.seeds, args.data_root, args.sweep_only)
    if args.collect or args.tasks:
        print(report.write_table_and_curves())
        if protocol.RESULTS.resolve() == Path(__file__).resolve().parents[1] / "results" / "cpu-grid":  # the README shows this table
            subprocess.run([sys.executable, str(Path(__file__).with_name("sync_readme_tables.py"))], check=False)


if __name__ == "__main__":
    sys.exit(main())
