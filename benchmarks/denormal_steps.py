#!/usr/bin/env python
"""What flushing subnormal floats to zero saves on CPU: a model trained `--warm_steps` steps by `fpt-hf train`'s own
Trainer (so it is in the state a grid run reaches), then the same `--steps` training steps from that state, on the same
batches, with `torch.set_flush_denormal` off and on, timed interleaved in one process (`--rounds` each). Prints seconds
per step per arm, their ratio, and how many gradient entries were subnormal without the flush (the cause).

    python benchmarks/denormal_steps.py --data_dir ../shared/data/mnist                  # MNIST LSTM at lr 3e-3
    python benchmarks/denormal_steps.py --data_dir ../shared/data/mnist --method fpt --learning_rate 1e-3
"""

import argparse
import copy
import statistics
import tempfile
import time

import torch

from fpt_hf.training import build_trainer, parse_args

SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def train_steps(model, optimizer, batches, flush: bool) -> tuple[float, int]:
    """Seconds per step of `batches` from a copy of the trained `model` and its `optimizer` (copied together, so the
    copy steps the copied parameters), and the subnormal gradient entries seen (counted outside the timed steps)."""
    torch.set_flush_denormal(flush)
    model, optimizer = copy.deepcopy((model, optimizer))
    subnormal, seconds = 0, 0.0
    for batch in batches:
        started = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - started
        subnormal += sum(int(((p.grad != 0) & (p.grad.abs() < SMALLEST_NORMAL)).sum()) for p in model.parameters() if p.grad is not None)
        optimizer.zero_grad()
    return seconds / len(batches), subnormal


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--method", default="lstm")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--learning_rate", type=float, default=3e-3, help="the MNIST LSTM sweep's 3e-3 trial slowed down")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warm_steps", type=int, default=60, help="steps trained (flush on) before timing")
    parser.add_argument("--steps", type=int, default=5, help="steps timed per arm and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    argv = ["--task", args.task, "--method", args.method, "--preset", "cpu", "--use_cpu", "--learning_rate", str(args.learning_rate),
            "--per_device_train_batch_size", str(args.batch), "--max_steps", str(args.warm_steps), "--eval_strategy", "no",
            "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true",
            "--output_dir", tempfile.mkdtemp(), "--flush_denormal", "true"]
    if args.method != "lstm":
        argv += ["--backbone", args.backbone, "--num_backbone_layers", str(args.layers)]
    if args.data_dir:
        argv += ["--data_dir", args.data_dir]
    trainer, _, _ = build_trainer(*parse_args(argv))
    trainer.train()
    batches = [batch for batch, _ in zip(trainer.get_train_dataloader(), range(args.steps))]
    model, optimizer = trainer.model, trainer.optimizer
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
    timings = {False: [], True: []}
    subnormal = {False: 0, True: 0}
    for _ in range(args.rounds):
        for flush in (False, True):
            seconds, count = train_steps(model, optimizer, batches, flush)
            timings[flush].append(seconds)
            subnormal[flush] += count
    off, on = statistics.median(timings[False]), statistics.median(timings[True])
    print(f"{args.task} {args.method} lr {args.learning_rate:g}, after {args.warm_steps} steps, {args.threads} thread(s), "
          f"{args.steps} steps x {args.rounds} rounds per arm")
    print(f"  flush off: {off:.3f} s/step (median; {', '.join(f'{t:.3f}' for t in timings[False])}); subnormal gradient entries {subnormal[False]}")
    print(f"  flush on:  {on:.3f} s/step (median; {', '.join(f'{t:.3f}' for t in timings[True])}); subnormal gradient entries {subnormal[True]}")
    print(f"  flush on is {off / on:.2f}x as fast")
    return {"off_s_per_step": off, "on_s_per_step": on, "speedup": off / on, "subnormal_gradients": subnormal}


if __name__ == "__main__":
    main()
