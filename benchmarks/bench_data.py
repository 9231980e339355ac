#!/usr/bin/env python
"""Data pipeline throughput: rows from the task's Dataset to batched tensors (what the Trainer's DataLoader
does), single process, for MNIST, CIFAR-10 with augmentation, and ListOps.

    python benchmarks/bench_data.py --data_dir ../shared/data      # folders mnist/ and cifar10/ under it
"""

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from fpt_hf.collator import FPTDataCollator
from fpt_hf.tasks import get_task


def throughput(dataset, batch_size: int, batches: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=FPTDataCollator(), num_workers=0)
    iterator = iter(loader)
    next(iterator)  # warm-up
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(iterator)["labels"])
    return seen / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=None, help="folder with mnist/ and cifar10/ Parquet folders (default: the Hub)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    local = (lambda name: str(Path(args.data_dir) / name)) if args.data_dir else (lambda name: None)
    rows = [
        ("mnist (64 x 16 patches)", get_task("mnist").load(local("mnist"))["train"]),
        ("cifar10 (64 x 48, augmented)", get_task("cifar10").load(local("cifar10"))["train"]),
        ("cifar10_lra (1024 x 1)", get_task("cifar10_lra").load(local("cifar10"))["train"]),
        ("listops (<= 2000 ids, padded)", get_task("listops").load()["train"]),
    ]
    print(f"| dataset -> batches of {args.batch_size} (1 thread) | samples/s |\n|---|---|")
    for name, dataset in rows:
        print(f"| {name} | {throughput(dataset, args.batch_size, args.batches):,.0f} |")


if __name__ == "__main__":
    main()
