#!/usr/bin/env python
"""One causal SDPA call (forward + backward) per kernel and dtype, at a long task's shape.

    python benchmarks/attention_kernels.py --batch 8 --heads 9 --length 1024 --head_dim 64 --threads 1

Prints the best of `--repeats` timings after one warm-up for bf16 / fp32 x flash (the CPU default) / math (materialised
scores): which kernel a 1024-token FPT step should use on this CPU.
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def time_call(shape, dtype, backend, repeats: int) -> float:
    q, k, v = (torch.randn(*shape, dtype=dtype, requires_grad=True) for _ in range(3))
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        start = time.perf_counter()
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.sum().backward()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=9)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--head_dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shape = (args.batch, args.heads, args.length, args.head_dim)
    print(f"causal SDPA forward + backward, {' x '.join(map(str, shape))}, {args.threads} thread(s), best of {args.repeats}")
    for dtype in (torch.bfloat16, torch.float32):
        for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("math", SDPBackend.MATH)):
            print(f"{str(dtype).replace('torch.', '')} {name}: {time_call(shape, dtype, backend, args.repeats):.3g} s")


if __name__ == "__main__":
    main()
