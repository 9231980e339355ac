"""Task-level training throughput: real task data through the Trainer's own sampler, dataloader and collator.

    fpt-hf bench --task listops cifar10_lra remote_homology --data_root ../shared/data --layers 6 --steps 4
    fpt-hf bench --task cifar10_lra --method lstm --data_root ../shared/data --steps 3     # a baseline's step

Each configuration (the previous defaults, then today's) trains `--steps` batches drawn by its own sampler from the
whole training set, in its own process, as pairs A B A B ... over `--repeats`. The report gives per task the median
samples/s and real (unpadded) tokens/s with their min-max over repeats, the median ratio over pairs (of real tokens/s for
variable-length tasks, whose epoch holds the same real tokens under any sampler; of samples/s otherwise), the time one
training epoch would take at that speed, and ends with the line `task throughput vs previous defaults: listops X.XXx, ...`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from .arguments import METHODS

# What the cpu preset did before length-grouped batching, selective checkpointing for long inputs and the pruned final block.
PREVIOUS_DEFAULTS = ["--train_sampling_strategy", "random", "--activation_checkpointing", "true", "--prune_final_block", "false"]
CONFIGS = {"previous": PREVIOUS_DEFAULTS, "current": []}


def worker(spec: dict) -> dict:
    """Train `spec["steps"]` steps of `spec["task"]` with the cpu preset plus `spec["flags"]`, through the Trainer's own sampler
    (random or length-grouped over the whole training set), dataloader and collator, after `spec["warmup"]` untimed
    forward/backward passes on a fixed batch; count the real and padded tokens the timed steps held.

    Grouped batches only pay off over the whole set (the sampler sorts megabatches of 50 batches), so each configuration
    draws its batches from the full training set, and a variable-length task's throughput is its real tokens/s: an epoch
    holds the same real tokens under every sampler."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import TrainerCallback

    from .probes import count_cpu_kernel_flops, matmul_peak, model_gemm_shape
    from .tasks import get_task
    from .training import build_trainer, parse_args

    torch.set_num_threads(spec["threads"])
    task = get_task(spec["task"])
    data_dir = os.path.join(spec["data_root"], getattr(task, "folder", task.name)) if spec.get("data_root") and not task.generated else None
    with tempfile.TemporaryDirectory() as out:
        argv = ["--task", task.name, "--backbone", spec["backbone"], "--preset", "cpu", "--use_cpu", "--output_dir", out,
                "--max_steps", str(spec["steps"]), "--eval_strategy", "no", "--save_strategy", "no",
                "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
                "--seed", str(spec["seed"]), *(["--data_dir", data_dir] if data_dir else []),
                *(["--num_backbone_layers", str(spec["layers"])] if spec.get("layers") else []),
                *(["--per_device_train_batch_size", str(spec["batch"])] if spec.get("batch") else []), *spec["flags"]]
        args, training_args = parse_args(argv)
        trainer, _, _ = build_trainer(args, training_args)
        batch_size = training_args.per_device_train_batch_size
        full = trainer.train_dataset
        warm_rows = np.random.default_rng(spec["seed"]).permutation(len(full))[:batch_size]  # the same in every configuration
        collate, model = trainer.data_collator, trainer.model.train()
        warm_batch = collate([full[int(j)] for j in warm_rows])
        for _ in range(spec["warmup"]):  # allocator growth, kernel selection: untimed
            model(**warm_batch).loss.backward()
            model.zero_grad(set_to_none=True)
        count_cpu_kernel_flops()
        with FlopCounterMode(display=False) as counter:  # what one step of these rows computes, recomputation included
            model(**warm_batch).loss.backward()
        model.zero_grad(set_to_none=True)
        flops_per_token = counter.get_total_flops() / (warm_batch["inputs"].shape[0] * warm_batch["inputs"].shape[1])  # per padded token
        batches = []

        def counting_collator(rows):
            batch = collate(rows)
            mask = batch.get("attention_mask")
            padded = batch["inputs"].shape[0] * batch["inputs"].shape[1]
            batches.append((batch["inputs"].shape[0], int(mask.sum()) if mask is not None else padded, padded))
            return batch

        trainer.data_collator = counting_collator
        times = {}

        class EpochTime(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):  # after the sampler is built and the first batch fetched
                times.setdefault("begin", time.perf_counter())

            def on_step_end(self, args, state, control, **kwargs):
                times["end"] = time.perf_counter()

        trainer.add_callback(EpochTime())
        trainer.train()
        seconds = times["end"] - times["begin"]
        samples, real, padded = (sum(b[i] for b in batches) for i in range(3))
        dtype = getattr(model, "compute_dtype", None) or torch.float32  # the LSTM baseline computes in fp32
        peak = matmul_peak(dtype, model_gemm_shape(model, batches[0][2]))["median"]  # the model's GEMM, this process, now
        total_tokens = int(np.sum(np.asarray(full["length"]))) if "length" in full.column_names else None
        return {"samples_per_s": samples / seconds, "real_tokens_per_s": real / seconds, "padding_efficiency": real / padded,
                "step_s": seconds / len(batches), "batch": batch_size, "flops_per_token": flops_per_token,
                # FLOPs per second at the step's FLOPs per (padded) token, as a share of the matmul rate of the same process
                # (None where the counter saw no FLOPs: a kernel it has no formula for)
                "peak_share": flops_per_token * padded / seconds / peak if flops_per_token else None,
                "matmul_peak": peak, "matmul_dtype": str(dtype).replace("torch.", ""), "train_rows": len(full), "train_tokens": total_tokens,
                "flags": spec["flags"], "warm_rows": hashlib.sha256(np.sort(warm_rows).tobytes()).hexdigest()[:12]}


def run_worker(spec: dict) -> dict:
    """`worker(spec)` in a fresh process (its own threads and memory), or {"error": ...} saying why it failed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    done = subprocess.run([sys.executable, "-m", "fpt_hf.benchmark_tasks", "--worker", json.dumps(spec)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": f"{spec['task']} with {spec['flags'] or 'current defaults'} failed: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(task: str, runs: dict[str, list[dict]]) -> dict:
    """Median and min-max per configuration, and the median over pairs of the current / previous ratio."""
    ok = {name: [r for r in rs if "error" not in r] for name, rs in runs.items()}
    errors = [r["error"] for rs in runs.values() for r in rs if "error" in r]
    row = {"task": task, "errors": errors}
    for name, rs in ok.items():
        for metric in ("samples_per_s", "real_tokens_per_s", "padding_efficiency", "peak_share"):
            values = [r[metric] for r in rs if r[metric] is not None]
            row[f"{name}_{metric}"] = (statistics.median(values), min(values), max(values)) if values else None
        if rs:  # an epoch holds the same real tokens under any sampler; fixed-length rows: the same samples
            tokens = rs[0].get("train_tokens")
            rate = statistics.median(r["real_tokens_per_s"] if tokens else r["samples_per_s"] for r in rs)
            row[f"{name}_epoch_h"] = (tokens or rs[0]["train_rows"]) / rate / 3600
    key = "real_tokens_per_s" if any(r.get("train_tokens") for rs in ok.values() for r in rs) else "samples_per_s"
    row["ratio_metric"] = key
    pairs = [(p, c) for p, c in zip(runs["previous"], runs["current"]) if "error" not in p and "error" not in c]
    ratios = [c[key] / p[key] for p, c in pairs]
    row["ratio"] = (statistics.median(ratios), min(ratios), max(ratios)) if ratios else None
    # The ceiling: the current step's FLOPs all at the matmul rate (no kernel reaches it), over the previous throughput.
    ceilings = [c[key] / p[key] / c["peak_share"] for p, c in pairs if c["peak_share"]]
    row["ceiling_ratio"] = (statistics.median(ceilings), min(ceilings), max(ceilings)) if ceilings else None
    return row


def _fmt_ratio(ratio: tuple) -> str:
    return f"{ratio[0]:.2f}x" + (f" ({ratio[1]:.2f}-{ratio[2]:.2f}x over pairs)" if ratio[2] > ratio[1] else "")


def format_report(rows: list[dict], spec: dict) -> str:
    def fmt(x, digits=2):
        return "failed" if x is None else f"{x[0]:.{digits}f} ({x[1]:.{digits}f}-{x[2]:.{digits}f})"

    def peak_share(row, name):
        share = row[f"{name}_peak_share"]
        if share is None and row[f"{name}_samples_per_s"] is not None:
            return "-"  # timed, but its FLOPs are not counted (a kernel without a FLOP formula)
        return fmt(share and tuple(100 * x for x in share), 0)

    lines = [f"{spec['backbone']}, first {spec.get('layers')} layers, {spec['threads']} thread(s), {spec['steps']} timed steps after "
             f"{spec['warmup']} warm-up, {spec['repeats']} pair(s); median (min-max)", "",
             "| task | config | samples/s | real tokens/s | real / padded tokens | % of matmul peak | epoch h |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        for name in CONFIGS:
            epoch = row.get(f"{name}_epoch_h")
            lines.append(f"| {row['task']} | {name} | {fmt(row[f'{name}_samples_per_s'])} | {fmt(row[f'{name}_real_tokens_per_s'], 0)} | "
                         f"{fmt(row[f'{name}_padding_efficiency'])} | {peak_share(row, name)} | "
                         f"{'-' if epoch is None else f'{epoch:.1f}'} |")
        lines += [f"error: {e}" for e in row["errors"]]
    lines.append("")
    for r in rows:
        ratio = "failed" if r["ratio"] is None else _fmt_ratio(r["ratio"])
        lines.append(f"{r['task']}: current / previous {r['ratio_metric'].replace('_per_s', '/s').replace('_', ' ')}: {ratio}")
        if r.get("ceiling_ratio"):
            lines.append(f"{r['task']}: ceiling (the current step's FLOPs all at the matmul peak) / previous: {_fmt_ratio(r['ceiling_ratio'])}")
    ratios = [f"{r['task']} " + ("failed" if r["ratio"] is None else f"{r['ratio'][0]:.2f}x") for r in rows]
    lines.append("task throughput vs previous defaults: " + ", ".join(ratios))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="fpt-hf bench --task", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--task", nargs="+", help="tasks to measure (e.g. listops cifar10_lra remote_homology)")
    parser.add_argument("--method", default="fpt", choices=METHODS, help="whose training step to time (the baselines' too)")
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=6, help="first N backbone blocks (0: all)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default: the cpu preset's)")
    parser.add_argument("--data_root", default=os.environ.get("FPT_HF_DATA_DIR"), help="folder with one Parquet folder per dataset")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forward/backward passes on a fixed batch first")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of (previous, current) processes, interleaved")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="also write the report (Markdown) here")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return ""
    if not args.task:
        parser.error("--task needs at least one task name, e.g. --task listops remote_homology.")
    for name in ("steps", "warmup", "repeats", "threads"):  # warm-up >= 1: timing starts at the end of a warm-up step
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    from .tasks import get_task

    for task in args.task:
        get_task(task)  # unknown task -> clear error before any process starts
    spec = {k: getattr(args, k) for k in ("backbone", "layers", "batch", "data_root", "steps", "warmup", "repeats", "threads", "seed")}
    rows = []
    for task in args.task:
        runs = {name: [] for name in CONFIGS}
        for _ in range(args.repeats):
            for name, flags in CONFIGS.items():  # A B A B: both see the machine in the same mood
                runs[name].append(run_worker({**spec, "task": task, "flags": [*flags, "--method", args.method]}))
        rows.append(summarize(task, runs))
    report = format_report(rows, spec)
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report + "\n")
    return report


if __name__ == "__main__":
    main()
