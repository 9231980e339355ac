#!/usr/bin/env python
"""Where a backbone's attention sink sits, on real task inputs: per block, the hidden-state norm of the first
position next to the median over the input tokens, and the share of attention that the input tokens give the
first position (averaged over heads, tokens and rows).

Pretrained LMs make their first position a sink: its state grows by orders of magnitude and most attention
goes there, so whatever the first input token carries is lost to the tokens after it. With `--sink_tokens 1`
(or a checkpoint trained with it) the first position is a learned sink token instead of an input token.

    python benchmarks/attention_sink.py --task bit_memory --layers 6
    python benchmarks/attention_sink.py --task bit_memory --checkpoint outputs/bitmem4000-sink1-s0
"""

import argparse

import torch

from fpt_hf import FPTModel
from fpt_hf.collator import FPTDataCollator
from fpt_hf.tasks import get_task


def sink_profile(model: FPTModel, batch: dict) -> list[dict]:
    """One row per entry of the backbone's `hidden_states` (the embeddings, then each block's output; the last
    one is after the final norm on most LMs): `first_norm`, `median_norm` (over input tokens) and, for blocks,
    `attention_to_first` (the mean share of attention the input tokens give position 0)."""
    model.backbone.set_attn_implementation("eager")  # the only implementation that returns attention weights
    sinks = model.config.sink_tokens
    with torch.no_grad():
        out = model.backbone_outputs(batch["inputs"], batch.get("attention_mask"), output_hidden_states=True, output_attentions=True)
    first_input = max(sinks, 1)  # queries: the input tokens (position 0 itself is left out: it only sees itself)
    rows = []
    for k, hidden in enumerate(out.hidden_states):
        norms = hidden.float().norm(dim=-1)
        row = {"hidden_states": k, "first_norm": norms[:, 0].mean().item(), "median_norm": norms[:, sinks:].median().item()}
        if k > 0:
            row["attention_to_first"] = out.attentions[k - 1][:, :, first_input:, 0].float().mean().item()
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="bit_memory")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--checkpoint", default=None, help="a trained FPT checkpoint (default: fresh heads on --backbone)")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=None, help="fresh heads: keep the first N blocks")
    parser.add_argument("--sink_tokens", type=int, default=0, help="fresh heads: learned tokens before the input")
    parser.add_argument("--batch", type=int, default=8, help="test rows to average over")
    args = parser.parse_args(argv)

    task = get_task(args.task)
    if args.checkpoint:
        model = FPTModel.from_pretrained(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = FPTModel.from_pretrained(
            args.backbone, num_backbone_layers=args.layers, sink_tokens=args.sink_tokens, **task.model_kwargs()
        )
    split = task.load(args.data_dir, **task.load_options(seed=0))[task.eval_split]
    batch = FPTDataCollator()([split[i] for i in range(min(args.batch, len(split)))])
    rows = sink_profile(model.eval(), batch)
    first = "sink token" if model.config.sink_tokens else "first input token"
    print(f"{args.checkpoint or args.backbone} on {task.name}: position 0 is the {first}")
    print("| hidden_states | norm at position 0 | median norm (input tokens) | attention share to position 0 |")
    print("|---|---|---|---|")
    for row in rows:
        share = f"{row['attention_to_first']:.3f}" if "attention_to_first" in row else ""
        print(f"| {row['hidden_states']} | {row['first_norm']:.1f} | {row['median_norm']:.1f} | {share} |")
    return rows


if __name__ == "__main__":
    main()
