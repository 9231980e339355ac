#!/usr/bin/env python
"""Run a grid of FPT experiments (tasks x methods x seeds) and/or collect results JSONs into a table + chart.

    # collect what is in results/ into results/README-table.md and results/accuracy.png
    python examples/reproduce_table.py --collect_only
    # run the CPU grid on the embedded backbone first (skips a run whose results JSON, same length, exists)
    python examples/reproduce_table.py --tasks bit_xor mnist --methods fpt frozen_random lstm --seeds 0 1 \
        -- --preset cpu --bf16 --use_cpu --data_dir ../shared/data/mnist
Flags after `--` go to every run (any run_fpt.py / TrainingArguments flag).
"""

import argparse
import subprocess
import sys
from pathlib import Path

from fpt_hf.arguments import parse_args
from fpt_hf.results import bar_chart, collect, markdown_table, results_filename


def run_output_dir(run_args: list[str]) -> str:
    """Each cell's own output folder, named like its results file, so cells of other lengths or settings never meet in
    one folder (training refuses a folder that already holds a run)."""
    fpt_args, training_args = parse_args(run_args)
    return f"outputs/grid/{Path(results_filename(fpt_args.task, fpt_args, training_args.max_steps, training_args.seed)).stem}"


def finished_result(run_args: list[str], results_dir: str) -> Path | None:
    """The results JSON this run would write, if it is already there (same task, method, backbone, length, seed)."""
    fpt_args, training_args = parse_args(run_args)
    if training_args.max_steps > 0:
        path = Path(results_dir) / results_filename(fpt_args.task, fpt_args, training_args.max_steps, training_args.seed)
        return path if path.exists() else None
    # an epoch-based run's length is only known once its data is loaded: any length of this cell counts
    stem = results_filename(fpt_args.task, fpt_args, 0, training_args.seed).replace("-0steps-", "-*steps-")
    return next(iter(sorted(Path(results_dir).glob(stem))), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=[])
    parser.add_argument("--methods", nargs="*", default=["fpt", "frozen_random", "lstm"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--results_dir", default="results")
    parser.add_argument("--collect_only", action="store_true")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if not args.collect_only:
        for task in args.tasks:
            for method in args.methods:
                for seed in args.seeds:
                    run_args = ["--task", task, "--method", method, "--backbone", args.backbone, "--seed", str(seed),
                                "--results_dir", args.results_dir, *extra]
                    run_args += ["--output_dir", run_output_dir(run_args)]
                    done = finished_result(run_args, args.results_dir)
                    if done:
                        print(f"skip {task} {method} seed {seed}: {done}")
                        continue
                    cmd = [sys.executable, str(Path(__file__).parent / "run_fpt.py"), *run_args]
                    print(" ".join(cmd), flush=True)
                    subprocess.run(cmd, check=True)
    groups = collect(args.results_dir)
    table = markdown_table(groups)
    Path(args.results_dir, "README-table.md").write_text(table)
    print(table)
    print(bar_chart(groups, Path(args.results_dir) / "accuracy.png"))


if __name__ == "__main__":
    main()
