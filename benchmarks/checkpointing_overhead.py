#!/usr/bin/env python
"""What activation checkpointing costs per training step when a step is short: no checkpointing, selective (the
default) and full, timed side by side in one process, interleaved, as medians and ratios to no checkpointing.

    python benchmarks/checkpointing_overhead.py                                  # 30 blocks 8 wide: overhead only
    python benchmarks/checkpointing_overhead.py --backbone smollm2-135m --batch 128 --length 64   # a CIFAR-10 step

Selective checkpointing runs every op of the backward's recompute under a TorchDispatchMode that asks the policy what
to save; that costs Python time per op, which a long-sequence step hides behind its matmuls and a short one does not.
The default model (a 30-block Llama of width 8) has next to no arithmetic, so its step time is that per-op overhead.
On a GPU (picked when present) the steps run in bf16 and are synchronised before each clock read.
"""

import argparse
import statistics
import time

import torch

from fpt_hf import FPTConfig, FPTModel
from fpt_hf.checkpointing import selective_checkpointing_kwargs

MODES = ("none", "selective", "full")


def build(mode: str, backbone: str, layers: int, device: str, dtype: str, attn: str = "sdpa") -> FPTModel:
    if backbone == "tiny":
        from transformers import LlamaConfig

        config = LlamaConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=layers, num_attention_heads=2,
                             num_key_value_heads=1, vocab_size=10)
        model = FPTModel(FPTConfig(backbone_config=config, input_dim=16, num_labels=10, random_backbone=True, compute_dtype=dtype))
    else:
        model = FPTModel.from_pretrained(backbone, input_dim=16, num_labels=10, num_backbone_layers=layers, compute_dtype=dtype)
    model.backbone.set_attn_implementation(attn)
    if mode == "selective":
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
    elif mode == "full":
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model.to(device).train()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny", help="'tiny' (30 blocks, 8 wide) or an FPTModel.from_pretrained id")
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode, after 2 warm-up steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compute_dtype", choices=("float32", "bfloat16"), help="default: bfloat16 on a GPU, float32 on CPU")
    parser.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = args.compute_dtype or ("bfloat16" if device == "cuda" else "float32")
    models = {mode: build(mode, args.backbone, args.layers, device, dtype, args.attn) for mode in MODES}
    optimizers = {mode: torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-3) for mode, m in models.items()}
    x, y = torch.randn(args.batch, args.length, 16, device=device), torch.randint(0, 10, (args.batch,), device=device)
    times = {mode: [] for mode in MODES}
    for step in range(args.steps + 2):
        for mode, model in models.items():  # interleaved: machine noise falls on every mode alike
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(inputs=x, labels=y).loss.backward()
            optimizers[mode].step()
            optimizers[mode].zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times[mode].append(time.perf_counter() - start)
    medians = {mode: statistics.median(t) for mode, t in times.items()}
    print(f"{args.backbone}, {args.layers} blocks, batch {args.batch} x {args.length} tokens, {device}, {dtype}, {args.attn} attention, "
          f"{args.steps} steps per mode")
    for mode in MODES:
        print(f"  {mode:10s} {1000 * medians[mode]:8.1f} ms/step   {medians[mode] / medians['none']:.2f}x no checkpointing")
    return medians


if __name__ == "__main__":
    main()
