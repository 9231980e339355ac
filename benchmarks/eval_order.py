#!/usr/bin/env python
"""What evaluating held-out rows longest first saves on a variable-length task: `Trainer.evaluate` on a seeded sample
of rows in the split's own order, longest first, and through the Trainer's LengthGroupedSampler, timed interleaved in
one process; with each arm's padding factor (computed tokens / real tokens of the batches its dataloader yields) and
accuracy (the arms must agree: the order changes no prediction).

    python benchmarks/eval_order.py                                             # ListOps, SmolLM2's first 3 blocks
    python benchmarks/eval_order.py --task remote_homology --data_dir ../shared/data/remote_homology --layers 6
"""

import argparse
import dataclasses
import tempfile

import torch
from transformers import Trainer

from fpt_hf.collator import FPTDataCollator
from fpt_hf.probes import time_evaluations
from fpt_hf.training import (
    build_training_model,
    load_task_data,
    longest_first,
    make_compute_metrics,
    parse_args,
    preprocess_logits_for_metrics,
)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="listops")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="evaluation batch (the cpu preset's for long tasks)")
    parser.add_argument("--rows", type=int, default=96, help="rows timed per order")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the heads' initialisation
    fpt_args, sequential_args = parse_args([
        "--task", args.task, "--backbone", args.backbone, "--num_backbone_layers", str(args.layers), "--preset", "cpu", "--use_cpu",
        "--output_dir", tempfile.mkdtemp(), "--report_to", "none", "--per_device_eval_batch_size", str(args.batch), "--disable_tqdm",
        "true", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--train_sampling_strategy", "random", *(["--data_dir", args.data_dir] if args.data_dir else [])])
    grouped_args = dataclasses.replace(sequential_args, train_sampling_strategy="group_by_length", length_column_name="length")
    task = fpt_args.resolve_task()
    model = build_training_model(task, fpt_args, sequential_args).eval()
    split = load_task_data(task, fpt_args, fpt_args.task_seed, getattr(model, "max_length", None))[args.split]
    sample = split.shuffle(seed=0).select(range(min(args.rows, len(split))))

    def trainer(training_args):
        return Trainer(model=model, args=training_args, data_collator=FPTDataCollator(), compute_metrics=make_compute_metrics(),
                       preprocess_logits_for_metrics=preprocess_logits_for_metrics)

    def sorted_rows(rows):
        return longest_first({args.split: rows})[args.split]

    # what evaluation computes: in the split's order (SequentialSampler: `--preset paper`, `fpt-hf evaluate` before),
    # longest first (now, every path), and the Trainer's LengthGroupedSampler (the cpu preset's group_by_length);
    # each arm: (its trainer, how it orders the rows it is given)
    arms = {"as stored": (trainer(sequential_args), lambda rows: rows),
            "longest first": (trainer(sequential_args), sorted_rows),
            "grouped sampler": (trainer(grouped_args), lambda rows: rows)}

    def padding_factor(arm, rows) -> float:
        batches = list(arm.get_eval_dataloader(rows))
        return sum(b["inputs"].numel() for b in batches) / sum(int(b["attention_mask"].sum()) for b in batches)

    padding = {name: padding_factor(arm, order(sample)) for name, (arm, order) in arms.items()}
    whole = {name: padding_factor(arm, order(split)) for name, (arm, order) in arms.items()}
    seconds, accuracy = time_evaluations({name: (arm, order(sample)) for name, (arm, order) in arms.items()}, args.rounds)
    print(f"{task.name} {args.split}: {len(sample)} of {len(split)} rows, batches of {args.batch}; {args.backbone}, first {args.layers} "
          f"blocks; median of {args.rounds} interleaved rounds")
    for name in arms:
        print(f"  {name:>15}: padding {padding[name]:.3f}x ({whole[name]:.3f}x over all {len(split)} rows), {seconds[name]:6.1f} s ({seconds['as stored'] / seconds[name]:.2f}x), "
              f"accuracy {accuracy[name]:.4f}")
    if len(set(accuracy.values())) > 1:
        raise SystemExit(f"the orders disagree on accuracy: {accuracy}")
    return {"padding": padding, "padding_whole_split": whole, "seconds": seconds, "accuracy": accuracy}


if __name__ == "__main__":
    main()
