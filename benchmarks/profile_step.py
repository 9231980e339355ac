#!/usr/bin/env python
"""Where one FPT training step's time goes, by kind of operation (torch.profiler, self CPU time).

    python benchmarks/profile_step.py --length 1024 --batch 4 --layers 6 --checkpointing selective --attn sdpa

Builds the model the training scripts build (bf16 frozen weights, fused Adam), runs `--warmup` steps, then profiles
one step of random token ids (forward, backward, optimizer) and prints the share of each category: matmuls, the
attention kernel, element-wise ops (norms, RoPE, activations, residual adds), dtype copies, the optimizer, other.
"""

import argparse
import time

import torch

from fpt_hf import FPTModel
from fpt_hf.checkpointing import selective_checkpointing_kwargs

CATEGORIES = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::_mkldnn", "mkldnn"),
    "attention kernel": ("scaled_dot_product", "flash_attention", "_efficient_attention", "aten::_softmax", "aten::softmax",
                         "_softmax_backward"),
    "optimizer": ("_fused_adam", "Optimizer.step", "aten::_foreach"),
    "dtype copies": ("aten::copy_", "aten::to", "aten::_to_copy"),
    "element-wise (norms, RoPE, activations, adds)": ("aten::mul", "aten::add", "aten::rsqrt", "aten::pow", "aten::mean",
                                                      "aten::silu", "aten::neg", "aten::cat", "aten::sigmoid", "aten::div",
                                                      "aten::sum", "aten::sub", "aten::cos", "aten::sin", "aten::gelu", "aten::tanh"),
}


def category(name: str) -> str:
    for label, keys in CATEGORIES.items():
        if any(key in name for key in keys):
            return label
    return "other"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--checkpointing", choices=("none", "selective", "full"), default="selective")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.layers, args.length, args.batch, args.threads) < 1:
        parser.error("--layers, --length, --batch and --threads must be positive.")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = FPTModel.from_pretrained(args.backbone, vocab_size=16, num_labels=10, num_backbone_layers=args.layers,
                                     compute_dtype="bfloat16", backbone_attn_implementation=args.attn).train()
    if args.checkpointing == "selective":
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
    elif args.checkpointing == "full":
        model.activation_checkpointing_enable()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, fused=True)
    batch = {"inputs": torch.randint(1, 16, (args.batch, args.length)), "attention_mask": torch.ones(args.batch, args.length, dtype=torch.long),
             "labels": torch.randint(0, 10, (args.batch,))}

    def step():
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    wall = time.perf_counter() - start
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        totals[category(event.key)] = totals.get(category(event.key), 0.0) + event.self_cpu_time_total / 1e6
    profiled = sum(totals.values())
    print(f"{args.backbone}, first {args.layers} layers, batch {args.batch} x {args.length} tokens, attention {args.attn}, "
          f"checkpointing {args.checkpointing}, {args.threads} thread(s): step {wall:.2f} s under the profiler\n")
    print("| category | self CPU s | share |\n|---|---|---|")
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {seconds:.2f} | {100 * seconds / profiled:.0f}% |")


if __name__ == "__main__":
    main()
