#!/usr/bin/env python
"""One training step's gradients, fast path vs the paper's recipe, per trainable tensor, on real task data.

The reference is fp32 weights with eager attention; the fast path is the training default (bf16 frozen
weights, attention chosen as `--attn_implementation auto` chooses it). Same initial heads (same seed), same
batch. Prints the loss of each and, per trainable tensor, the cosine between the two gradients and the fast
path's gradient norm over the reference's.

    python benchmarks/grad_agreement.py --data_dir ../shared/data/mnist --layers 6
"""

import argparse

import torch

from fpt_hf import FPTModel
from fpt_hf.collator import FPTDataCollator
from fpt_hf.tasks import get_task
from fpt_hf.training import resolve_attn_implementation


def gradients(backbone, task, batch, layers, compute_dtype, attn, seed):
    torch.manual_seed(seed)  # the same fresh input/output layers for both paths
    model = FPTModel.from_pretrained(
        backbone, num_backbone_layers=layers, compute_dtype=compute_dtype, backbone_attn_implementation=attn, **task.model_kwargs()
    ).train()
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {n: p.grad.float().flatten() for n, p in model.named_parameters() if p.requires_grad}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attn_implementation", default="auto", help="the fast path's attention ('auto' as in training)")
    args = parser.parse_args(argv)
    task = get_task(args.task)
    train = task.load(args.data_dir)["train"]
    if not 1 <= args.batch <= len(train):
        parser.error(f"--batch must be between 1 and the {len(train)} rows of {task.name}'s training split, got {args.batch}.")
    batch = FPTDataCollator()([train[i] for i in range(args.batch)])  # what the Trainer feeds the model
    fast_attn = resolve_attn_implementation(args.attn_implementation, batch["inputs"].shape[1])
    ref_loss, ref = gradients(args.backbone, task, batch, args.layers, "float32", "eager", args.seed)
    fast_loss, fast = gradients(args.backbone, task, batch, args.layers, "bfloat16", fast_attn, args.seed)
    print(f"loss: reference (fp32, eager) {ref_loss:.6f}, fast path (bf16, {fast_attn}) {fast_loss:.6f}\n")
    print("| trainable tensor | cosine | norm ratio (fast / reference) |\n|---|---|---|")
    for name, a in ref.items():
        b = fast[name]
        cosine = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
        print(f"| {name} | {cosine:.4f} | {b.norm().item() / a.norm().item():.3f} |")


if __name__ == "__main__":
    main()
