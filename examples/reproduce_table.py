#!/usr/bin/env python
"""Run a grid of FPT experiments (tasks x methods x seeds) and/or collect results JSONs into a table + chart.

    # collect what is in results/ into results/README-table.md and results/accuracy.png
    python examples/reproduce_table.py --collect_only
    # run the CPU grid on the embedded backbone first (skips runs whose results JSON exists)
    python examples/reproduce_table.py --tasks bit_xor mnist --methods fpt frozen_random lstm --seeds 0 1 \
        -- --preset cpu --bf16 --use_cpu --data_dir ../shared/data/mnist
Flags after `--` go to every run (any run_fpt.py / TrainingArguments flag).
"""

import argparse
import subprocess
import sys
from pathlib import Path

from fpt_hf.results import bar_chart, collect, markdown_table


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
                    done = list(Path(args.results_dir).glob(f"{task}-{method}-*seed{seed}.json"))
                    if done:
                        print(f"skip {task} {method} seed {seed}: {done[0]}")
                        continue
                    cmd = [sys.executable, str(Path(__file__).parent / "run_fpt.py"), "--task", task, "--method", method,
                           "--backbone", args.backbone, "--seed", str(seed), "--results_dir", args.results_dir,
                           "--output_dir", f"outputs/{task}-{method}-seed{seed}", *extra]
                    print(" ".join(cmd), flush=True)
                    subprocess.run(cmd, check=True)
    groups = collect(args.results_dir)
    table = markdown_table(groups)
    Path(args.results_dir, "README-table.md").write_text(table)
    print(table)
    print(bar_chart(groups, Path(args.results_dir) / "accuracy.png"))


if __name__ == "__main__":
    main()
