#!/usr/bin/env python
"""What the evaluation batch size costs on a long task: `Trainer.evaluate` on a seeded sample of held-out rows with each
`--per_device_eval_batch_size`, timed interleaved in one process, with each arm's accuracy (the arms must agree: the
batch size changes no prediction on fixed-length rows; on variable-length rows larger batches pad more).

    python benchmarks/eval_batch.py --data_dir ../shared/data/cifar10                      # CIFAR-10 LRA, fpt, 3 blocks
    python benchmarks/eval_batch.py --data_dir ../shared/data/cifar10 --method lstm --batches 8 32
"""

import argparse
import tempfile

import torch
from transformers import Trainer

from fpt_hf.collator import FPTDataCollator
from fpt_hf.probes import time_evaluations
from fpt_hf.training import build_training_model, load_task_data, make_compute_metrics, parse_args, preprocess_logits_for_metrics


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cifar10_lra")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--method", default="fpt")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32], help="evaluation batch sizes to compare")
    parser.add_argument("--rows", type=int, default=64, help="rows timed per arm")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or len(set(args.batches)) < len(args.batches):
        parser.error(f"--batches needs distinct batch sizes of at least 1, got {args.batches}.")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as training does (--flush_denormal)
    torch.manual_seed(0)  # the new layers' initialisation

    def training_args(batch):
        return parse_args([
            "--task", args.task, "--method", args.method, "--backbone", args.backbone, "--num_backbone_layers", str(args.layers),
            "--preset", "cpu", "--use_cpu", "--output_dir", tempfile.mkdtemp(), "--report_to", "none", "--disable_tqdm", "true",
            "--per_device_eval_batch_size", str(batch), "--eval_strategy", "no", "--save_strategy", "no",
            "--load_best_model_at_end", "false", *(["--data_dir", args.data_dir] if args.data_dir else [])])

    fpt_args, first_args = training_args(args.batches[0])
    task = fpt_args.resolve_task()
    model = build_training_model(task, fpt_args, first_args).eval()
    split = load_task_data(task, fpt_args, fpt_args.task_seed, getattr(model, "max_length", None))[args.split]
    sample = split.shuffle(seed=0).select(range(min(args.rows, len(split))))
    arms = {batch: Trainer(model=model, args=training_args(batch)[1], data_collator=FPTDataCollator(),
                           compute_metrics=make_compute_metrics(), preprocess_logits_for_metrics=preprocess_logits_for_metrics)
            for batch in args.batches}
    seconds, accuracy = time_evaluations({batch: (trainer, sample) for batch, trainer in arms.items()}, args.rounds)
    first = args.batches[0]
    print(f"{task.name} {args.split}, {args.method}: {len(sample)} of {len(split)} rows; {args.backbone}, first {args.layers} "
          f"blocks; median of {args.rounds} interleaved rounds, {args.threads} thread(s)")
    for batch in arms:
        print(f"  batch {batch:>4}: {seconds[batch]:7.1f} s, {1000 * seconds[batch] / len(sample):6.1f} ms per row "
              f"({seconds[first] / seconds[batch]:.2f}x of batch {first}), accuracy {accuracy[batch]:.4f}")
    if len(set(accuracy.values())) > 1:
        raise SystemExit(f"the batch sizes disagree on accuracy: {accuracy}")
    return {"seconds": seconds, "accuracy": accuracy, "rows": len(sample)}


if __name__ == "__main__":
    main()
