"""Results files and tables: name and write a run's results JSON, collect them, aggregate over seeds, compare with
the paper, plot."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

TASK_ORDER = ("bit_memory", "bit_xor", "listops", "mnist", "cifar10", "cifar10_lra", "remote_homology")
METHOD_ORDER = ("fpt", "full", "frozen_random", "output_only", "lstm")
# Accuracy (%) reported in Lu et al. (2021), GPT-2 backbone; CIFAR-10 FPT is GPT-2 large (base: 68.2).
PAPER = {
    "fpt": {"bit_memory": 100, "bit_xor": 100, "listops": 38.4, "mnist": 98.0, "cifar10": 72.1, "cifar10_lra": 38.6, "remote_homology": 12.7},
    "full": {"bit_memory": 100, "bit_xor": 100, "listops": 38, "mnist": 99.1, "cifar10": 70.3, "cifar10_lra": 42, "remote_homology": 9},
    "lstm": {"bit_memory": 60.9, "bit_xor": 50.1, "listops": 17.1, "mnist": 99.5, "cifar10": 73.6, "cifar10_lra": 11.7, "remote_homology": 12},
    "frozen_random": {"bit_memory": 75.8, "bit_xor": 100, "listops": 34.3, "mnist": 91.7, "cifar10": 61.7, "cifar10_lra": 36.1, "remote_homology": 9.3},
}


def collect(results_dir: str | Path) -> dict[tuple[str, str, str, int], list[dict]]:
    """(task, method, backbone label, steps) -> the results of each seed (runs of other lengths are other rows)."""
    groups = defaultdict(list)
    for path in sorted(Path(results_dir).glob("*.json")):
        result = json.loads(path.read_text())
        if not {"task", "method", "accuracy"} <= set(result):
            raise ValueError(f"{path} is not an fpt-hf results file (needs task, method, accuracy).")
        backbone = "LSTM" if result["method"] == "lstm" else Path(str(result["backbone"])).name
        if result.get("num_backbone_layers"):
            backbone += f" (first {result['num_backbone_layers']} layers)"
        if result.get("sink_tokens"):
            backbone += f" + {result['sink_tokens']} sink token{'s' if result['sink_tokens'] > 1 else ''}"
        fpt_args = result.get("fpt_args") or {}
        if fpt_args.get("learned_positions"):
            backbone += f" + {fpt_args['learned_positions']} learned positions"
        if fpt_args.get("input_init") == "paper" and result["method"] != "lstm":  # FPT's input layer options
            backbone += ", original input init"
        if fpt_args.get("input_dropout") and result["method"] != "lstm":
            backbone += f", input dropout {fpt_args['input_dropout']:g}"
        if fpt_args.get("data_protocol") == "paper":
            backbone += ", original preprocessing"
        if fpt_args.get("augment") is not None:
            backbone += ", augmented" if fpt_args["augment"] else ", not augmented"
        if fpt_args.get("streaming_train"):
            backbone += ", streamed data"
        gpu = (result.get("hardware") or {}).get("gpu")
        if gpu:  # runs on different GPUs were planned to different step counts: keep them apart and say which GPU
            backbone += f", {gpu.removeprefix('NVIDIA ')}"
        groups[(result["task"], result["method"], backbone, result.get("steps") or 0)].append(result)
    return dict(groups)


def _order(key):
    task, method, backbone, steps = key
    return (TASK_ORDER.index(task) if task in TASK_ORDER else 99, METHOD_ORDER.index(method) if method in METHOD_ORDER else 99, backbone, steps)


def seed_summary(runs: list[dict]) -> tuple[float, float | None, int]:
    """(mean accuracy %, std over seeds or None for a single seed, number of seeds)."""
    accuracy = 100 * np.array([r["accuracy"] for r in runs], dtype=float)
    return float(accuracy.mean()), (float(accuracy.std(ddof=1)) if len(accuracy) > 1 else None), len(accuracy)


def format_accuracy(mean: float, std: float | None) -> str:
    return f"{mean:.2f}" + (" (1 seed)" if std is None else f" ± {std:.2f}")


def markdown_table(groups: dict) -> str:
    """One row per (task, method, backbone, steps): mean +- std accuracy over seeds next to the paper's number."""
    lines = ["| task | method | backbone | seeds | steps | accuracy % (mean ± std) | paper % |", "|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=_order):
        task, method, backbone, steps = key
        mean, std, n = seed_summary(groups[key])
        paper = PAPER.get(method, {}).get(task)
        accuracy = format_accuracy(mean, std)
        others = sorted({s for r in groups[key] for s in (r.get("accuracy_by_split") or {}) if s != r.get("eval_split")})
        for split in others:  # e.g. remote homology: TAPE valid (the paper's number) and the fold holdout test
            runs = [{"accuracy": r["accuracy_by_split"][split]} for r in groups[key] if split in (r.get("accuracy_by_split") or {})]
            accuracy += f"; {split}: {format_accuracy(*seed_summary(runs)[:2])}"
        lines.append(f"| {task} | {method} | {backbone} | {n} | {steps} | {accuracy} | {'' if paper is None else paper} |")
    return "\n".join(lines) + "\n"


PAPER_MARKERS = {"fpt": ("FPT (paper)", "o"), "full": ("full transformer (paper)", "s"), "lstm": ("LSTM (paper)", "^")}


def bar_chart(groups: dict, path: str | Path) -> Path:
    """One panel per task, one horizontal bar per row of the table (mean over seeds; an error bar only where 2+ seeds
    ran), the paper's FPT / full / LSTM numbers as markers, and an accuracy axis zoomed to what the panel holds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(groups, key=_order)
    tasks = list(dict.fromkeys(k[0] for k in keys))
    rows = {task: [k for k in keys if k[0] == task] for task in tasks}
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(METHOD_ORDER)}
    fig, axes = plt.subplots(len(tasks), 1, figsize=(10, sum(1.0 + 0.32 * len(r) for r in rows.values())),
                             gridspec_kw={"height_ratios": [1.0 + 0.32 * len(rows[t]) for t in tasks]}, squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        values = []
        for y, key in enumerate(rows[task]):
            mean, error, n = seed_summary(groups[key])  # an error bar only where 2+ seeds ran
            ax.barh(y, mean, xerr=error, capsize=3 if error is not None else 0, color=colours.get(key[1], "grey"), height=0.7)
            ax.text(mean, y, f" {format_accuracy(mean, error)}" + (f" (n={n})" if error is not None else ""), va="center", fontsize=7)
            values.append(mean - (error or 0))
        for offset, (method, (label, marker)) in enumerate(PAPER_MARKERS.items()):
            if task in PAPER[method]:  # one marker row per paper method, so equal numbers (100/100) stay visible
                ax.plot([PAPER[method][task]], [-1.2 + 0.3 * offset], marker=marker, color=colours[method], linestyle="none", label=label, clip_on=False)
                values.append(PAPER[method][task])
        low = max(0.0, min(values) - 0.15 * (max(values) - min(values) + 1))
        ax.set_xlim(low, min(100.0, max(values) + 0.35 * (max(values) - low + 1)))
        ax.set_yticks(range(len(rows[task])), ["{}: {} ({} steps)".format(*key[1:]) for key in rows[task]], fontsize=7)
        ax.set_ylim(len(rows[task]) - 0.5, -1.5)
        ax.set_title(task, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("test accuracy (%); markers: the paper's GPT-2 numbers")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(), loc="upper right", fontsize=7, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


logger = logging.getLogger("fpt_hf")


def results_filename(task: str, args, steps: int, seed: int) -> str:
    """`mnist-fpt-smollm2-135m-L6-1500steps-seed0.json` (`-L6-sink1-pos121-paperinit-drop0.1-paperdata-aug-stream-` with a
    sink token, a learned position table, the original input init, input dropout, the original preprocessing, explicit
    augmentation and streamed training data): runs of other lengths, seeds, model shapes or data protocols do not
    overwrite it."""
    return f"{task}-{args.method}-{_short(args.backbone, args)}-{steps}steps-seed{seed}.json"


def _short(backbone: str, args) -> str:
    if args.method == "lstm":
        name = "lstm"
    else:
        name = Path(backbone).name or backbone
        name += f"-L{args.num_backbone_layers}" if args.num_backbone_layers else ""
        name += f"-sink{args.sink_tokens}" if args.sink_tokens else ""
        name += f"-pos{args.learned_positions}" if args.learned_positions else ""
        name += "-paperinit" if args.input_init == "paper" else ""
        name += f"-drop{args.input_dropout:g}" if args.input_dropout else ""
    name += "-paperdata" if args.data_protocol == "paper" else ""
    name += {True: "-aug", False: "-noaug", None: ""}[args.augment]
    return name + ("-stream" if args.streaming_train else "")


_UNRECORDED = {"results_dir", "data_dir", "overwrite_output_dir"}  # where files were, not how the run went


def results_path(results_dir: str | Path, filename: str, results: dict) -> Path:
    """`results_dir / filename`, unless that file holds a run with other settings (e.g. another learning rate,
    which the name does not show): then the first free `<name>-2.json`, `-3`, ... so no result is lost. The
    same command run again replaces its own file."""
    def settings(result: dict) -> tuple:
        fpt_args = {k: v for k, v in (result.get("fpt_args") or {}).items() if k not in _UNRECORDED}
        return json.dumps(result.get("training_args"), sort_keys=True, default=str), json.dumps(fpt_args, sort_keys=True, default=str)

    ours = settings(results)
    first = Path(results_dir) / filename
    first.parent.mkdir(parents=True, exist_ok=True)
    path, n = first, 1
    while True:
        try:
            with open(path, "x"):  # claim a free name atomically: two runs finishing at once never pick the same file
                break
        except FileExistsError:
            pass
        try:
            if settings(json.loads(path.read_text())) == ours:
                return path
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass  # not a results file we wrote (or one being written): keep it
        n += 1
        path = first.with_name(f"{first.stem}-{n}{first.suffix}")
    if path != first:
        logger.warning(f"{first} holds a run with other settings; writing this run's results to {path}.")
    return path


def curve_point(step: int, metrics: dict) -> dict:
    """One point of a learning curve, as results JSONs and sweep trials record it, from an evaluation's `eval_*` metrics:
    the accuracy and, where measured, the share of the most predicted class (1.0 = one class for every row) and the
    evaluation's seconds (so a run's wall time splits into training and evaluation)."""
    point = {"step": step, "accuracy": float(metrics["eval_accuracy"])}
    if metrics.get("eval_top_prediction_share") is not None:
        point["top_prediction_share"] = float(metrics["eval_top_prediction_share"])
    if metrics.get("eval_runtime") is not None:
        point["eval_runtime_s"] = float(metrics["eval_runtime"])
    return point


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
