"""Speed and memory of FPT training and inference: the paper's recipe (fp32, eager attention, plain Adam)
against fpt-hf's fast path (bf16 compute with bf16 frozen weights, SDPA, fused Adam, selective activation
checkpointing, optional compile and full checkpointing), measured side by side in one run, each configuration in its own process so peak
memory is its own.

    fpt-hf bench                                  # SmolLM2-135M and a GPT-2-small-sized backbone, batch 32 x 64
    fpt-hf bench --backbones smollm2-135m --scaling
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

from .probes import HeldActivations, count_cpu_kernel_flops, matmul_peak, model_gemm_shape, peak_rss_mb, reset_peak_rss

# checkpointing: False, "selective" (recompute element-wise ops, keep matmul outputs) or "full" (recompute the blocks)
REFERENCE = {"name": "reference (paper recipe)", "compute_dtype": None, "attn": "eager", "optimizer": "plain", "compile": False,
             "checkpointing": False, "prune_final_block": False}
FAST = {"name": "fpt-hf", "compute_dtype": "bfloat16", "attn": "auto", "optimizer": "fused", "compile": False, "checkpointing": "selective",
        "prune_final_block": True}


def build(backbone: str, setting: dict, input_dim: int = 16, num_labels: int = 10, policy: str = "fpt"):
    from transformers import GPT2Config

    from . import FPTConfig, FPTModel
    from .checkpointing import selective_checkpointing_kwargs

    prune = setting.get("prune_final_block", True)
    if backbone == "gpt2-small-random":  # GPT-2 small's shape (124M) with random weights: no Hub here
        groups = ["output"] if policy == "output_only" else ["input", "output", "positions", "norms"]
        config = FPTConfig(backbone_config=GPT2Config(), input_dim=input_dim, num_labels=num_labels, trainable_groups=groups,
                           random_backbone=True, compute_dtype=setting["compute_dtype"], prune_final_block=prune)
        model = FPTModel(config)
    else:
        model = FPTModel.from_pretrained(backbone, input_dim=input_dim, num_labels=num_labels, policy=policy,
                                         compute_dtype=setting["compute_dtype"], prune_final_block=prune)
    model.backbone.set_attn_implementation(setting["attn"])  # "auto" is resolved by the worker
    if setting["checkpointing"] == "full":
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    elif setting["checkpointing"] == "selective":
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=selective_checkpointing_kwargs())
    return model


def _optimizer(model, kind: str):
    params = [p for p in model.parameters() if p.requires_grad]
    if kind == "plain":
        return torch.optim.Adam(params, lr=1e-3, foreach=False)
    return torch.optim.Adam(params, lr=1e-3, fused=True)


def worker(spec: dict) -> dict:
    """Run one configuration and report its timings, FLOPs and peak memory (called in a fresh process)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    setting, batch, length, steps = spec["setting"], spec["batch"], spec["length"], spec["steps"]
    from .training import resolve_attn_implementation

    setting = dict(setting, attn=resolve_attn_implementation(setting["attn"], length, use_cpu=not torch.cuda.is_available()))
    spec = dict(spec, setting=setting)
    if spec["mode"] == "reservoir":
        return reservoir_worker(spec)
    model = build(spec["backbone"], setting)
    x, y = torch.randn(batch, length, 16), torch.randint(0, 10, (batch,))
    result = {"parameters": sum(p.numel() for p in model.parameters())}
    if spec["mode"] == "train":
        model.train()
        optimizer = _optimizer(model, setting["optimizer"])

        def step():
            loss = model(inputs=x, labels=y).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss

        if setting["compile"]:
            start = time.perf_counter()
            model.forward = torch.compile(model.forward)
            step()
            result["compile_s"] = time.perf_counter() - start
    else:
        model.eval()

        @torch.inference_mode()
        def step():
            return model(inputs=x).logits

        if setting["compile"]:
            start = time.perf_counter()
            model.forward = torch.compile(model.forward)
            step()
            result["compile_s"] = time.perf_counter() - start
    warmup = []
    for _ in range(spec.get("warmup", 2)):  # allocator growth, kernel selection: the first steps are slower
        start = time.perf_counter()
        step()
        warmup.append(time.perf_counter() - start)
    result["warmup_s"] = warmup
    count_cpu_kernel_flops()
    with FlopCounterMode(display=False) as counter:
        step()
    result["flops_per_step"] = counter.get_total_flops()
    if spec["mode"] == "train":
        with HeldActivations() as held:
            loss = model(inputs=x, labels=y).loss
        result["held_mb"] = held.megabytes()
        loss.backward()
        optimizer.zero_grad(set_to_none=True)
    gemm = model_gemm_shape(model, batch * length)
    result["matmul_peak"] = {"float32": matmul_peak(torch.float32, gemm), "bfloat16": matmul_peak(torch.bfloat16, gemm)}  # same conditions
    reset_peak_rss()  # from here on, the peak is what the steps themselves need (weights + activations)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result["step_times"] = times
    seconds = sum(times) / steps
    result.update(step_s=seconds, samples_per_s=batch / seconds, flops_per_s=result["flops_per_step"] / seconds,
                  peak_rss_mb=peak_rss_mb())
    return result


def reservoir_worker(spec: dict) -> dict:
    """Epoch time of output-only training on cached features vs a full FPT epoch, on `8 * batch` samples."""
    from .reservoir import extract_features, train_head

    setting, batch, length = spec["setting"], spec["batch"], spec["length"]
    n = 8 * batch
    rows = [{"inputs": torch.randn(length, 16), "labels": int(i % 10)} for i in range(n)]
    model = build(spec["backbone"], setting, policy="output_only")
    start = time.perf_counter()
    features, labels = extract_features(model, rows, batch_size=batch)
    extract_s = time.perf_counter() - start
    train_head(model, features, labels, epochs=1, batch_size=batch)  # warm-up
    start = time.perf_counter()
    epochs = 20
    train_head(model, features, labels, epochs=epochs, batch_size=batch)
    cached_epoch_s = (time.perf_counter() - start) / epochs
    fpt = build(spec["backbone"], setting).train()
    optimizer = _optimizer(fpt, setting["optimizer"])
    x, y = torch.stack([r["inputs"] for r in rows[:batch]]), labels[:batch]
    timed = []
    for _ in range(3):
        start = time.perf_counter()
        fpt(inputs=x, labels=y).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timed.append(time.perf_counter() - start)
    full_epoch_s = min(timed[1:]) * (n // batch)
    return {"samples": n, "extract_s": extract_s, "cached_epoch_s": cached_epoch_s, "full_epoch_s": full_epoch_s,
            "speedup": full_epoch_s / cached_epoch_s}


def run_worker(spec: dict) -> dict:
    """`worker(spec)` in a fresh process; a failure comes back as {"error": ...} naming the configuration and the cause."""
    proc = subprocess.run([sys.executable, "-m", "fpt_hf.benchmark", "--worker", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        cause = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{spec['setting']['name']} ({spec['mode']}, {spec['backbone']}) failed: {cause}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


METRICS = (("samples/s", "samples_per_s", 1, "{:.1f}"), ("peak RSS MB", "peak_rss_mb", 1, "{:.0f}"),
           ("achieved GFLOP/s", "flops_per_s", 1e-9, "{:.0f}"), ("activations held for backward MB", "held_mb", 1, "{:.0f}"))


def compare(backbones, batch, length, steps, threads, settings: list[dict], repeats: int = 3, warmup: int = 2) -> list[dict]:
    """For each backbone and mode, `repeats` interleaved rounds: reference, then every fast setting, one process each
    (A B A B ...), so each ratio compares runs made moments apart."""
    rows = []
    for backbone in backbones:
        for mode in ("train", "inference"):
            spec = {"backbone": backbone, "mode": mode, "batch": batch, "length": length, "steps": steps, "threads": threads, "warmup": warmup}
            names = [st["name"] for st in settings if mode == "train" or st["checkpointing"] != "full"]
            runs = {"reference": [], **{name: [] for name in names}}
            for _ in range(repeats):
                runs["reference"].append(run_worker(dict(spec, setting=REFERENCE)))
                for st in settings:
                    if st["name"] in names:
                        runs[st["name"]].append(run_worker(dict(spec, setting=st)))
            rows.append({"backbone": backbone, "mode": mode, "runs": runs})
    return rows


def spread(values: list[float]) -> tuple[float, float, float] | None:
    """(median, min, max), or None when nothing was measured."""
    import statistics

    return (statistics.median(values), min(values), max(values)) if values else None


def summarize(runs: dict[str, list[dict]], key: str) -> dict:
    """Per configuration: the median (min-max) of `key` over its runs, and of its ratio to the reference over the pairs."""
    ok = {name: [r for r in rs if "error" not in r and key in r] for name, rs in runs.items()}
    out = {}
    for name, rs in runs.items():
        pairs = [(ref[key], run[key]) for ref, run in zip(runs["reference"], rs) if "error" not in ref and "error" not in run and key in run]
        out[name] = {"value": spread([r[key] for r in ok[name]]), "ratio": spread([b / a for a, b in pairs]) if name != "reference" else None}
    return out


def _cell(summary: tuple | None, fmt: str, scale: float = 1.0, suffix: str = "") -> str:
    if summary is None:
        return "failed"
    median, low, high = (x * scale for x in summary)
    return f"{fmt.format(median)}{suffix} ({fmt.format(low)}-{fmt.format(high)})" if high > low else f"{fmt.format(median)}{suffix}"


def format_table(rows: list[dict], settings: list[dict]) -> str:
    repeats = max(len(rs) for row in rows for rs in row["runs"].values())
    lines = [f"fast settings: {settings}", f"median (min-max) over {repeats} interleaved round(s); ratios per pair", "",
             "| backbone | mode | metric | reference (fp32, eager, Adam) | " + " | ".join(f"{st['name']} | ratio" for st in settings) + " |",
             "|---|---|---|---|" + "---|---|" * len(settings)]
    for row in rows:
        names = [n for n in row["runs"] if n != "reference"]
        for label, key, scale, fmt in METRICS:
            stats = summarize(row["runs"], key)
            if stats["reference"]["value"] is None and key == "held_mb":
                continue
            cells = [f"{_cell(stats[n]['value'], fmt, scale)} | {_cell(stats[n]['ratio'], '{:.2f}', 1, 'x')}" for n in names]
            lines.append(f"| {row['backbone']} | {row['mode']} | {label} | {_cell(stats['reference']['value'], fmt, scale)} | " + " | ".join(cells) + " |")
        peaks = {}
        for name, rs in row["runs"].items():
            dtype = "float32" if name == "reference" else "bfloat16"
            shares = [r["flops_per_s"] / r["matmul_peak"][dtype]["median"] for r in rs if "error" not in r]
            peaks[name] = f"{_cell(spread(shares), '{:.0f}', 100)}% of {'fp32' if dtype == 'float32' else 'bf16'}"
        lines.append(f"| {row['backbone']} | {row['mode']} | % of matmul peak (model GEMM shape, same process) | {peaks['reference']} | "
                     + " | ".join(f"{peaks[n]} |" for n in names))
        warm = [r["warmup_s"][0] / (sum(r["step_times"]) / len(r["step_times"])) for rs in row["runs"].values() for r in rs if "error" not in r]
        lines.append(f"| {row['backbone']} | {row['mode']} | first warm-up step / timed step | {_cell(spread(warm), '{:.2f}', 1, 'x')} |")
        for name, rs in row["runs"].items():
            for r in rs:
                if "compile_s" in r:
                    lines.append(f"| {row['backbone']} | {row['mode']} | compile time s ({name}) | | {r['compile_s']:.1f} |")
        errors = [r["error"] for rs in row["runs"].values() for r in rs if "error" in r]
        lines += [f"error: {e}" for e in errors]
    return "\n".join(lines)


def scaling(backbone: str, lengths, batches, steps, threads, fast: dict, repeats: int = 1) -> str:
    """Step time and memory per (batch, length) shape: `repeats` rounds over all shapes (round-robin, so each shape sees
    the machine at several moments), median (min-max) per shape."""
    shapes = [(batches[0], n) for n in lengths] + [(b, lengths[0]) for b in batches[1:]]
    runs = {shape: [] for shape in shapes}
    for _ in range(repeats):
        for batch, length in shapes:
            runs[batch, length].append(run_worker({"backbone": backbone, "setting": fast, "mode": "train", "batch": batch,
                                                   "length": length, "steps": steps, "threads": threads}))
    lines = ["| batch | seq len | step s | samples/s | peak RSS MB |", "|---|---|---|---|---|"]
    for (batch, length), rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        cells = [_cell(spread([r[key] for r in ok]), fmt) for key, fmt in (("step_s", "{:.3f}"), ("samples_per_s", "{:.1f}"), ("peak_rss_mb", "{:.0f}"))]
        lines.append(f"| {batch} | {length} | " + " | ".join(cells) + " |")
        lines += [f"error: {r['error']}" for r in rs if "error" in r]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fpt-hf bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backbones", nargs="*", default=["smollm2-135m", "gpt2-small-random"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (reference, fast, reference, fast, ...)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first ones grow the allocator)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile the fast path")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="fast path in fp32 (opt-out)")
    parser.add_argument("--checkpointing", action="store_true", help="also measure the fast path with full activation checkpointing")
    parser.add_argument("--no-selective", dest="selective", action="store_false",
                        help="fast path without selective checkpointing (opt-out; default keeps matmul outputs, recomputes the rest)")
    parser.add_argument("--scaling", action="store_true", help="step time / memory vs sequence length and batch size")
    parser.add_argument("--lengths", nargs="*", type=int, default=[64, 128, 256, 512, 1024])
    parser.add_argument("--batches", nargs="*", type=int, default=[8, 16, 32])
    parser.add_argument("--reservoir", action="store_true", help="output-only training on cached features vs full FPT epochs")
    parser.add_argument("--skip_compare", action="store_true", help="skip the reference-vs-fpt-hf table")
    parser.add_argument("--output", default=None, help="also write the report (Markdown) here")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    for name in ("steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    fast = dict(FAST, compile=args.compile, compute_dtype="bfloat16" if args.bf16 else None, checkpointing="selective" if args.selective else False)
    settings = [fast] + ([dict(fast, name="fpt-hf + full checkpointing", checkpointing="full")] if args.checkpointing else [])
    report = [f"batch {args.batch} x {args.length} tokens, {args.threads or torch.get_num_threads()} threads, {args.steps} timed steps"]
    if not args.skip_compare:
        rows = compare(args.backbones, args.batch, args.length, args.steps, args.threads, settings, args.repeats, args.warmup)
        report.append(format_table(rows, settings))
    if args.reservoir:
        report += ["", "Output-only (reservoir) training on cached features, fpt-hf setting:",
                   "| backbone | samples | feature extraction s (once) | cached epoch s | full FPT epoch s | speedup |", "|---|---|---|---|---|---|"]
        for backbone in args.backbones:
            r = run_worker({"backbone": backbone, "setting": fast, "mode": "reservoir", "batch": args.batch, "length": args.length,
                            "steps": args.steps, "threads": args.threads})
            if "error" in r:
                report.append(f"| {backbone} | {r['error']} | | | | |")
                continue
            report.append(f"| {backbone} | {r['samples']} | {r['extract_s']:.2f} | {r['cached_epoch_s']:.4f} | {r['full_epoch_s']:.2f} | {r['speedup']:.0f}x |")
    if args.scaling:
        report += ["", f"Scaling ({args.backbones[0]}, fpt-hf setting, training step):", scaling(args.backbones[0], args.lengths, args.batches, args.steps, args.threads, fast, args.repeats)]
    text = "\n".join(report)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
