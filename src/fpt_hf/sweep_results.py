"""What a learning-rate sweep found: accuracy per rate over seeds (`summarize`), the rate it picks (`best_row`), and
the table and figure that show them. `fpt-hf sweep` writes these into `sweep.json`, its table and `sweep.png`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def summarize(records: list[dict]) -> list[dict]:
    """Accuracy per learning rate over seeds: mean and std (n >= 2) of the seeds that finished, each seed's value (None:
    diverged), how many diverged, and how many ended predicting one class for every row (`one_class`: their accuracy is
    that class's share of the split, not a sign of learning; trials recorded before this was measured count as not)."""
    rows = []
    for lr in sorted({r["learning_rate"] for r in records}):
        runs = sorted((r for r in records if r["learning_rate"] == lr), key=lambda r: r["seed"])
        acc = np.array([r["accuracy"] for r in runs if r["accuracy"] is not None])
        rows.append({"learning_rate": lr, "mean": float(acc.mean()) if len(acc) else None,
                     "std": float(acc.std(ddof=1)) if len(acc) > 1 else None, "n": len(acc), "diverged": len(runs) - len(acc),
                     "seeds": [r["seed"] for r in runs], "accuracies": [r["accuracy"] for r in runs],
                     "one_class": sum(1 for r in runs if r.get("curve") and r["curve"][-1].get("top_prediction_share") == 1.0)})
    return rows


def best_row(rows: list[dict], prefer: float | None = None) -> dict:
    """The rate with the best mean accuracy among those where no seed diverged (else the best of the rest). Rates that
    tie (equal accuracy: the sweep tells them apart no better than not at all) go to the one nearest `prefer` (the task's
    paper rate) on a log scale, so a sweep without signal keeps the paper's rate rather than the smallest one swept."""
    def closeness(row):
        return -abs(math.log(row["learning_rate"] / prefer)) if prefer else 0.0

    return max(rows, key=lambda row: (row["diverged"] == 0, -1.0 if row["mean"] is None else row["mean"], closeness(row)))


def format_table(rows: list[dict], split: str, prefer: float | None = None) -> str:
    best = best_row(rows, prefer)
    lines = [f"{'learning rate':>14}  {split + ' accuracy %':>22}  seeds", f"{'-' * 14}  {'-' * 22}  -----"]
    for row in rows:
        value = "-" if row["mean"] is None else f"{100 * row['mean']:.2f}" + ("" if row["std"] is None else f" ± {100 * row['std']:.2f}")
        seeds = (f"{row['n']}" + (f" (+{row['diverged']} diverged)" if row["diverged"] else "")
                 + (f" ({row['one_class']} predicting one class)" if row.get("one_class") else ""))
        lines.append(f"{row['learning_rate']:>14.3g}  {value:>22}  {seeds}" + ("   <- best" if row is best else ""))
    return "\n".join(lines)


def plot_sweeps(sweeps: list[dict], path: str | Path, title: str | None = None) -> Path:
    """Validation accuracy vs learning rate (log axis), one line per sweep (method), mean over seeds with each seed's dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    tasks, marks = {s["task"] for s in sweeps}, []
    for sweep in sweeps:
        rows = sweep["by_learning_rate"]
        label = sweep["method"] if len(tasks) == 1 else f"{sweep['task']} / {sweep['method']}"
        finished = [r for r in rows if r["mean"] is not None]
        line, = ax.plot([r["learning_rate"] for r in finished], [100 * r["mean"] for r in finished], marker="o", label=label)
        for row in finished:
            values = [100 * a for a in row["accuracies"] if a is not None]
            ax.scatter([row["learning_rate"]] * len(values), values, s=10, color=line.get_color(), alpha=0.45)
        diverged = [r["learning_rate"] for r in rows if r.get("diverged")]  # (sweeps written before divergence was recorded lack it)
        if diverged:  # drawn on the bottom edge once the axis limits are known
            marks.append((diverged, line.get_color()))
    bottom = ax.get_ylim()[0]
    for rates, color in marks:
        ax.scatter(rates, [bottom] * len(rates), marker="x", s=40, color=color, clip_on=False, label="diverged" if (rates, color) == marks[0] else None)
    first = sweeps[0]
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"{first['split']} accuracy %")
    ax.set_title(title or f"{', '.join(sorted(tasks))}: {first['budget']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="lines: mean over seeds; dots: seeds", fontsize=8, title_fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
