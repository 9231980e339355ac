#!/usr/bin/env python
"""The LSTM baseline's training step in fp32 and under bf16 autocast (what `--bf16` gives it), on real task rows.

Times both steps interleaved (A B A B ...) on the same batch and model, prints their medians and the ratio, then one
step's gradients of each from the same initial weights: per tensor, the cosine between them and the bf16 gradient's
norm over the fp32 one. A speed-up that changes the gradients is not free; the CPU grid's LSTM cells train in fp32.

    OMP_NUM_THREADS=1 python benchmarks/lstm_bf16.py --task cifar10 --data_dir ../shared/data/cifar10 --batch 16
"""

import argparse
import statistics
import time

import torch

from fpt_hf.baselines import LSTMBaseline, LSTMConfig
from fpt_hf.collator import FPTDataCollator
from fpt_hf.tasks import get_task


def step(model: LSTMBaseline, batch: dict, bf16: bool) -> dict:
    """One forward and backward pass; the gradients it left (fp32 tensors), then cleared."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(**batch).loss
    loss.backward()
    grads = {name: p.grad.detach().float().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cifar10")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="timed steps of each, interleaved (after one untimed each)")
    parser.add_argument("--hidden_size", type=int, default=768)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep_denormals", action="store_true", help="do not flush subnormal floats (training flushes them)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}.")
    task = get_task(args.task)
    train = task.load(args.data_dir)["train"]
    if not 1 <= args.batch <= len(train):
        parser.error(f"--batch must be between 1 and the {len(train)} rows of {task.name}'s training split, got {args.batch}.")
    batch = FPTDataCollator()([train[i] for i in range(args.batch)])  # what the Trainer feeds the model
    torch.set_flush_denormal(not args.keep_denormals)  # as `fpt-hf train` does by default (--flush_denormal)
    torch.manual_seed(args.seed)
    model = LSTMBaseline(LSTMConfig(hidden_size=args.hidden_size, **task.model_kwargs())).train()

    fp32, bf16 = step(model, batch, False), step(model, batch, True)  # warm-up, and the two gradients from the same weights
    seconds = {False: [], True: []}
    for _ in range(args.rounds):
        for use_bf16 in (False, True):
            began = time.perf_counter()
            step(model, batch, use_bf16)
            seconds[use_bf16].append(time.perf_counter() - began)
    plain, fast = statistics.median(seconds[False]), statistics.median(seconds[True])
    tokens = tuple(batch["inputs"].shape[:2])
    print(f"{task.name}, batch {tokens[0]} x {tokens[1]} tokens, LSTM {model.config.num_layers} x {args.hidden_size}, "
          f"{torch.get_num_threads()} thread(s), subnormals {'kept' if args.keep_denormals else 'flushed'}, median of {args.rounds}:")
    print(f"  fp32 {plain:.3f} s/step, bf16 autocast {fast:.3f} s/step: {plain / fast:.2f}x\n")
    print("| tensor | cosine (bf16 vs fp32 gradient) | norm ratio (bf16 / fp32) |\n|---|---|---|")
    for name, reference in fp32.items():
        reference, other = reference.double().flatten(), bf16[name].double().flatten()
        cosine = torch.nn.functional.cosine_similarity(reference, other, dim=0).item()
        print(f"| {name} | {cosine:.4f} | {other.norm().item() / reference.norm().item():.3f} |")


if __name__ == "__main__":
    main()
