"""`fpt-hf` command line: train, sweep, evaluate, push, datasets build/push, bench."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _train(argv):
    if "--help-all" in argv:  # every TrainingArguments flag too (HfArgumentParser's full help)
        from transformers import HfArgumentParser, TrainingArguments

        from .training import FPTArguments

        HfArgumentParser((FPTArguments, TrainingArguments), prog="fpt-hf train").print_help()
        return
    if "-h" in argv or "--help" in argv:
        from .arguments import train_help

        print(train_help(argv))
        return
    from .training import main

    results = main(argv)
    print(json.dumps({k: results[k] for k in ("task", "method", "backbone", "eval_split", "accuracy", "steps")}))
    if "files" in results:  # the main process
        split = results["eval_split"]
        print(f"{results['task']} / {results['method']}: {split} accuracy {100 * results['accuracy']:.2f}% ({_floors(results)}) "
              f"after {results['steps']} steps in {results['wall_time_s']:.0f} s.\n"
              f"Model: {results['files']['model']}/   results: {results['files']['results']}")


def _floors(results: dict) -> str:
    """What an accuracy is read against: chance, the most common class's share, and a model that answered one class."""
    split = results["eval_split"]
    floors = [f"chance {100 / results['num_labels']:.3g}%"]
    share = (results.get("most_common_class_share") or {}).get(split)
    if share is not None:
        floors.append(f"most common class {100 * share:.2f}%")
    if results.get("metrics", {}).get(f"{split}_top_prediction_share") == 1.0:
        floors.append("the model answered one class for every row")
    return "; ".join(floors)


def _evaluate(argv):
    parser = argparse.ArgumentParser(prog="fpt-hf evaluate", description="Accuracy of a checkpoint on a task's held-out split.")
    parser.add_argument("checkpoint")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="a built-in task")
    source.add_argument("--dataset", help="your own data, as `fpt-hf train --dataset` reads it")
    parser.add_argument("--input_column", default="inputs")
    parser.add_argument("--label_column", default="labels")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--split", default=None)
    parser.add_argument("--task_seed", type=int, default=None, help="the data's seed; by default the checkpoint's (its results.json), else 0")
    parser.add_argument("--data_protocol", default=None,
                        help="'default' or 'paper'; by default the one the checkpoint was trained with (its results.json)")
    args = parser.parse_args(argv)
    from .evaluation import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.task, args.data_dir, args.batch_size, args.split, task_seed=args.task_seed,
                                 data_protocol=args.data_protocol,
                                 dataset=args.dataset, input_column=args.input_column, label_column=args.label_column)
    print(json.dumps(result, default=str))
    rows = result["metrics"].get(f"{result['split']}_samples")
    print(f"{result['task']}: {result['split']} accuracy {100 * result['accuracy']:.2f}%"
          + (f" on {rows:,} rows" if rows else "") + f" ({result['checkpoint']}, data protocol {result['data_protocol']!r}).")


def _push(argv):
    parser = argparse.ArgumentParser(prog="fpt-hf push", description="Push a trained checkpoint (heads + model card) to the Hub.")
    parser.add_argument("checkpoint")
    parser.add_argument("--repo_id", "--repo-id", required=True)
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)
    from .hub import push_checkpoint

    print(push_checkpoint(args.checkpoint, args.repo_id, private=args.private or None))


def _datasets(argv):
    parser = argparse.ArgumentParser(prog="fpt-hf datasets", description="Build or publish the task datasets repository.")
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="write Parquet files under task_datasets/data/<task>/")
    build.add_argument("--task", action="append", help="task name (repeatable; default: all)")
    build.add_argument("--out", default="task_datasets")
    build.add_argument("--data_dir", default=None, help="local Parquet folder for the real-data tasks")
    build.add_argument("--train_size", type=int, default=None, help="generated tasks: training examples")
    push = sub.add_parser("push", help="publish task configs to a Hub dataset repository")
    push.add_argument("--repo_id", "--repo-id", required=True)
    push.add_argument("--task", action="append")
    push.add_argument("--out", default="task_datasets")
    push.add_argument("--data_dir", default=None)
    push.add_argument("--train_size", type=int, default=None)
    args = parser.parse_args(argv)
    from .publish import build_task_dataset, push_task_datasets
    from .tasks import list_tasks

    tasks = args.task or list_tasks()
    if args.action == "build":
        for task in tasks:
            print(build_task_dataset(task, args.out, data_dir=args.data_dir, train_size=args.train_size))
    else:
        print(push_task_datasets(args.repo_id, tasks, data_dir=args.data_dir, train_size=args.train_size))


def _sweep(argv):
    from .sweep import main

    main(argv)


def _bench(argv):
    if "--task" in argv:  # task-level throughput on real task data (benchmark_tasks)
        from .benchmark_tasks import main
    else:
        from .benchmark import main
    main(argv)


COMMANDS = {"train": _train, "sweep": _sweep, "evaluate": _evaluate, "push": _push, "datasets": _datasets, "bench": _bench}
SUMMARIES = {
    "train": "train FPT or a baseline on a task with the HF Trainer; evaluate on the held-out split; write a results JSON",
    "sweep": "learning-rate sweep of a train run (Trainer.hyperparameter_search, optuna); `sweep plot` draws sweeps",
    "evaluate": "accuracy of a saved checkpoint on a task's full held-out split",
    "push": "push a trained checkpoint (heads only + model card) to the Hugging Face Hub",
    "datasets": "build the task datasets as Parquet (task_datasets/) or push them to the Hub",
    "bench": "speed and memory benchmarks (--task T: training throughput on real task data)",
}


def usage() -> str:
    lines = ["usage: fpt-hf <command> [flags]   (fpt-hf <command> --help for its flags)", "", "commands:"]
    lines += [f"  {name:<9} {SUMMARIES[name]}" for name in COMMANDS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return
    if not argv or argv[0] not in COMMANDS:
        problem = f"unknown command {argv[0]!r}\n" if argv else ""
        print(problem + usage(), file=sys.stderr)
        raise SystemExit(2)
    COMMANDS[argv[0]](argv[1:])


def run() -> None:
    """The `fpt-hf` console script: `main`, with a refused input (`ValueError`, which says what was expected and what
    came) printed as one error line instead of a traceback; `FPT_HF_TRACEBACK=1` shows the traceback."""
    try:
        main()
    except ValueError as err:
        if os.environ.get("FPT_HF_TRACEBACK") == "1":
            raise
        command = f"fpt-hf {sys.argv[1]}" if len(sys.argv) > 1 and sys.argv[1] in COMMANDS else "fpt-hf"
        print(f"{command}: error: {err}\n(FPT_HF_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
