#!/usr/bin/env python
"""Where a bit-memory model's errors are: which query patches hold a wrong bit, and how hard they were.

Bit memory stores 5 patterns of 20 patches (50 bits each), then queries one with half its bits zeroed. To
recall a query patch the model must find the stored patch it agrees with. Its `margin` is how far that
match stands out: the agreement with the true patch (= the patch's unmasked bits) less the best agreement
(+1 per equal bit, -1 per different one, over the unmasked bits) of the same patch of another pattern.
A wrong patch whose masked bits all equal another pattern's was *retrieved from the wrong pattern*.

    python benchmarks/bit_memory_errors.py --checkpoint outputs/bitmem6000-sink1-s0
"""

import argparse

import numpy as np
import torch

from fpt_hf import FPTModel
from fpt_hf.tasks import get_task


def error_report(inputs: np.ndarray, labels: np.ndarray, predictions: np.ndarray, n_patterns: int = 5) -> dict:
    """`inputs` `(n, (n_patterns + 1) * P, B)` in {-1, 0, 1}, `labels` / `predictions` `(n, P * B)` in {0, 1}."""
    n, tokens, width = inputs.shape
    patches = tokens // (n_patterns + 1)
    if labels.shape != (n, patches * width) or predictions.shape != labels.shape:
        raise ValueError(f"labels and predictions must be {(n, patches * width)}, got {labels.shape} and {predictions.shape}.")
    stored = inputs[:, : n_patterns * patches].reshape(n, n_patterns, patches, width).astype(np.int64)
    query = inputs[:, n_patterns * patches :].astype(np.int64)  # (n, P, B)
    target = 2 * labels.reshape(n, patches, width).astype(np.int64) - 1
    predicted = 2 * predictions.reshape(n, patches, width).astype(np.int64) - 1
    queried = (stored.reshape(n, n_patterns, -1) == target.reshape(n, 1, -1)).all(-1).argmax(1)  # (n,)

    wrong_bits = predicted != target
    wrong = wrong_bits.any(-1)  # (n, P)
    unmasked = (query != 0).sum(-1)
    agreement = np.einsum("npb,nkpb->nkp", query, stored)  # (n, K, P)
    others = np.ones((n, n_patterns), dtype=bool)
    others[np.arange(n), queried] = False
    margin = unmasked - np.where(others[..., None], agreement, np.iinfo(np.int64).min).max(1)
    masked = query == 0
    copied_other = np.zeros_like(wrong)
    for k in range(n_patterns):  # wrong patches whose masked bits are pattern k's, k not the queried one
        same = ((predicted == stored[:, k]) | ~masked).all(-1)
        copied_other |= same & others[:, k, None] & wrong
    first_patch_by_pattern = [float(wrong_bits[queried == k, 0].mean()) if (queried == k).any() else None for k in range(n_patterns)]
    return {
        "accuracy": float(1 - wrong_bits.mean()),
        "wrong_bits": int(wrong_bits.sum()),
        "wrong_patches": int(wrong.sum()),
        "patches": int(wrong.size),
        "perfect_rows": float((~wrong.any(1)).mean()),
        "patch_error_rate_by_position": wrong.mean(0).tolist(),
        "first_patch_bit_error_by_queried_pattern": first_patch_by_pattern,
        "unmasked_bits": {"all": float(unmasked.mean()), "wrong": float(unmasked[wrong].mean()) if wrong.any() else None},
        "margin": {"all": float(margin.mean()), "wrong": float(margin[wrong].mean()) if wrong.any() else None},
        "wrong_patch_error_rate_by_margin": _rate_by_bins(margin, wrong, [-np.inf, 4, 8, 12, 16, np.inf]),
        "retrieved_from_another_pattern": int(copied_other.sum()),
    }


def _rate_by_bins(values: np.ndarray, wrong: np.ndarray, edges: list) -> list[dict]:
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (values >= low) & (values < high)
        rows.append({"from": low, "to": high, "patches": int(inside.sum()), "wrong": int(wrong[inside].sum())})
    return rows


def predict(model: FPTModel, inputs: np.ndarray, batch: int = 50) -> np.ndarray:
    """Predicted bits `(n, n_targets)` of a bit-memory model."""
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            logits = model(inputs=torch.as_tensor(inputs[i : i + batch]).float()).logits
            out.append(logits.argmax(-1).reshape(logits.shape[0], -1).numpy())
    return np.concatenate(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a bit_memory FPT checkpoint")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rows", type=int, default=None, help="the first N rows of the split (default: all)")
    parser.add_argument("--task_seed", type=int, default=0)
    args = parser.parse_args(argv)

    others = {split: 1 for split in ("train", "validation", "test") if split != args.split}  # only args.split is read
    data = get_task("bit_memory").load(seed=args.task_seed, sizes=others)[args.split]
    rows = len(data) if args.rows is None else args.rows
    if not 1 <= rows <= len(data):
        parser.error(f"--rows must be between 1 and the {len(data)} rows of the {args.split} split, got {rows}.")
    inputs, labels = np.asarray(data["inputs"][:rows]), np.asarray(data["labels"][:rows])
    report = error_report(inputs, labels, predict(FPTModel.from_pretrained(args.checkpoint).eval(), inputs))
    print(f"{args.checkpoint}: bit accuracy {100 * report['accuracy']:.3f}% on {rows} {args.split} rows")
    print(f"wrong patches {report['wrong_patches']} of {report['patches']} ({report['wrong_bits']} bits); "
          f"rows without a wrong bit {100 * report['perfect_rows']:.1f}%; "
          f"{report['retrieved_from_another_pattern']} wrong patches copy another stored pattern")
    print(f"unmasked bits per query patch: {report['unmasked_bits']['all']:.1f} on average, "
          f"{report['unmasked_bits']['wrong'] or 0:.1f} in wrong patches; margin {report['margin']['all']:.1f} vs "
          f"{report['margin']['wrong'] or 0:.1f}")
    print("| retrieval margin | query patches | wrong | error rate |")
    print("|---|---|---|---|")
    for row in report["wrong_patch_error_rate_by_margin"]:
        rate = f"{100 * row['wrong'] / row['patches']:.3f}%" if row["patches"] else ""
        print(f"| [{row['from']}, {row['to']}) | {row['patches']} | {row['wrong']} | {rate} |")
    return report


if __name__ == "__main__":
    main()
