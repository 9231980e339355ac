"""The CPU grid's reports: where each cell stands (`status`), and the table and learning-curve figure of the finished
runs (`collect`, `table`, `curves_figure`), read from the results JSONs under results/cpu-grid/; and `plan`, every
command the grid runs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import cpu_grid_protocol as protocol
import numpy as np


def plan(tasks, methods, seeds: list[int] | None, data_root: str | None) -> str:
    """Each task's budget and every sweep and run command of its cells (a rate not yet chosen shows as `<best>`)."""
    lines = []
    for task in tasks:
        budget = protocol.BUDGETS[task]
        lines.append(f"\n{task}: {budget.steps} steps x batch {budget.batch}, first {budget.layers} blocks, rates {protocol.candidate_rates(task)}")
        for method in methods:
            lines.append("  $ " + shlex.join(protocol.sweep_command(task, method, data_root)))
            rate = protocol.best_rate(task, method)
            for seed in seeds if seeds is not None else protocol.seeds_for(task, method):
                command = shlex.join(protocol.train_command(task, method, seed, rate or 0.0, data_root))
                lines.append("  $ " + (command if rate else command.replace("--learning_rate 0", "--learning_rate <best>")))
    return "\n".join(lines)


def status(tasks=None, methods=None) -> str:
    """Where each cell stands: its sweep (validation accuracy per rate), the chosen rate, the seeds done and what comes
    next (a sweep, a run resuming from its checkpoint, a new run), as a Markdown table."""
    lines = ["| task | method | sweep: rate -> validation % | rate | done | next |", "|---|---|---|---|---|---|"]
    for task in tasks or protocol.TASKS:
        for method in methods or protocol.METHODS:
            path = protocol.sweep_dir(task, method) / "sweep.json"
            rows = json.loads(path.read_text())["by_learning_rate"] if path.exists() else []
            swept = ", ".join(f"{r['learning_rate']:g}: {100 * r['mean']:.2f}{'*' if r.get('one_class') else ''}"
                              for r in sorted(rows, key=lambda r: r["learning_rate"]) if r["mean"] is not None)
            pending, rate = protocol.next_sweep(task, method), protocol.best_rate(task, method)
            done = {seed: protocol.finished_run(task, method, seed) for seed in protocol.seeds_for(task, method)}
            finished = {seed: json.loads(p.read_text()) for seed, p in done.items() if p}
            accuracies = [f"seed {seed}: {100 * result['accuracy']:.2f}" for seed, result in finished.items()]
            todo = [seed for seed, p in done.items() if not p]
            hours, trials = None, _trial_records(task, method) if pending is not None or todo else []
            if pending is not None:  # an interrupted sweep resumes: its recorded trials are not run again
                summarized = {r["learning_rate"] for r in rows}
                recorded = {r["learning_rate"] for r in trials} & set(pending) - summarized
                new = sorted(set(pending) - summarized - recorded)
                step = f"sweep {', '.join(f'{r:g}' for r in new)}" + (f" ({len(recorded)} of {len(pending)} trials recorded)" if recorded else "")
                hours = _hours(task, list(finished.values()), trials, pending_trials=len(new))
            elif todo:
                checkpoint = protocol.last_checkpoint(task, method, todo[0], rate)
                trial = None if checkpoint else protocol.trial_to_continue(task, method, todo[0], rate)
                trial_steps = json.loads(trial.read_text())["steps"] if trial else 0
                step = f"seed {todo[0]}" + (f", resumes at step {checkpoint} of {protocol.BUDGETS[task].steps}" if checkpoint else "")
                step += f", starts from its sweep trial at step {trial_steps}" if trial else ""
                hours = _hours(task, list(finished.values()), trials, from_step=checkpoint or trial_steps)
            else:
                step = "done"
            step += f" (~{hours:.1f} h)" if hours is not None else ""
            lines.append(f"| {task} | {method} | {swept or '-'} | {'' if pending is not None or rate is None else f'{rate:g}'} | "
                         f"{'; '.join(accuracies) or '-'} | {step} |")
    if any("*" in line for line in lines[2:]):
        lines.append("\n\\* the trial ended predicting one class for every row: its accuracy is that class's share, not learning "
                     "(measured for trials run since 2026-11-26).")
    from fpt_hf.training import cpu_model_and_flags

    measured = [(json.loads(path.read_text()).get("hardware") or {}).get("cpu_flags") for path in sorted(protocol.RESULTS.glob("*.json"))]
    note = cpu_note(measured, cpu_model_and_flags()[1])
    if note:
        lines.append("\n" + note)
    return "\n".join(lines) + "\n"


def cpu_note(measured_flags: list[list[str] | None], this_flags: list[str] | None) -> str | None:
    """A warning when most runs with a recorded CPU had AMX (bf16 matrix tiles) and this CPU has none: the hours that
    `status` estimates from their wall times are then too low (2026-11-27: MNIST frozen_random's first 1,250 steps and
    their evaluation, 6 blocks, one thread beside another job, took 1,633 s on such a CPU against 417 s on an AMX one;
    docs/cpu_grid.md)."""
    known = [flags for flags in measured_flags if flags is not None]
    with_amx = sum("amx_bf16" in flags for flags in known)
    if this_flags is None or "amx_bf16" in this_flags or 2 * with_amx <= len(known):
        return None
    return (f"This CPU has no AMX (bf16 matrix tiles); {with_amx} of the {len(known)} runs whose CPU is recorded had it, and "
            "the hours above come from their wall times: expect ~4x (measured 2026-11-27: 1,633 s against 417 s for the same "
            "1,250 MNIST steps and their evaluation).")


def _hours(task: str, runs: list[dict], trials: list[dict], pending_trials: int = 0, from_step: int = 0) -> float | None:
    """Hours on one core the cell's next step takes, from the wall times measured here: `pending_trials` more sweep
    trials (the mean of `trials`, its trial records so far), or a run from `from_step` to the budget (the mean of
    `runs`, the cell's finished runs; else from the trials: their training seconds per step plus the run's evaluations
    left and its held-out pass, each at the trials' mean evaluation time, where every trial recorded its evaluations'
    seconds; otherwise their seconds per step, evaluation included, an overestimate where a trial evaluates more often
    than the run, as on ListOps and CIFAR-10 LRA). None before any of the cell's work has a wall time. Machines differ
    (one ran the same steps 1.7x as fast as another), so this sizes a session's jobs, nothing more."""
    records = [r for r in trials if r.get("wall_time_s") and r.get("steps")]
    if pending_trials:
        return pending_trials * sum(r["wall_time_s"] for r in records) / len(records) / 3600 if records else None
    budget = protocol.BUDGETS[task]
    if runs:
        return sum(r["wall_time_s"] for r in runs) / len(runs) / budget.steps * (budget.steps - from_step) / 3600
    if not records:
        return None
    evals = [[p.get("eval_runtime_s") for p in r.get("curve") or []] for r in records]
    if all(passes and None not in passes for passes in evals):
        per_step = sum((r["wall_time_s"] - sum(passes)) / r["steps"] for r, passes in zip(records, evals)) / len(records)
        per_pass = sum(map(sum, evals)) / sum(map(len, evals))
        passes_left = budget.steps // budget.eval_every - from_step // budget.eval_every + 1  # + the held-out split's pass
        return (per_step * (budget.steps - from_step) + per_pass * passes_left) / 3600
    per_step = sum(r["wall_time_s"] / r["steps"] for r in records) / len(records)
    return per_step * (budget.steps - from_step) / 3600


def _trial_records(task: str, method: str) -> list[dict]:
    """The cell's sweep-trial records (one JSON per finished trial, written before the sweep's summary)."""
    return [json.loads(p.read_text()) for p in sorted((protocol.sweep_dir(task, method) / "trials").glob("*.json"))]


def collect() -> dict[tuple[str, str], list[dict]]:
    """(task, method) -> the results at the task's budget and the cell's chosen rate, one per seed."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(protocol.RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        if result["task"] in protocol.BUDGETS and result["steps"] == protocol.BUDGETS[result["task"]].steps and protocol.at_chosen_rate(result):
            cells.setdefault((result["task"], result["method"]), []).append(result)
    return cells


def _cell_text(runs: list[dict] | None, split: str | None = None) -> str:
    """mean ± std (n; lr) of the runs' reported accuracy, or of their accuracy on `split`."""
    if not runs:
        return "-"
    acc = 100 * np.array([r["accuracy_by_split"][split] if split else r["accuracy"] for r in runs])
    lr = runs[0]["training_args"]["learning_rate"]
    spread = f" ± {acc.std(ddof=1):.2f}" if len(acc) > 1 else ""
    return f"{acc.mean():.2f}{spread} ({len(acc)}; lr {lr:g})"


def table(cells: dict) -> str:
    from fpt_hf.results import PAPER
    from fpt_hf.tasks import get_task

    lines = ["| task | budget (steps x batch) | fpt | full | frozen_random | LSTM | paper fpt / full / frozen_random / LSTM | wall time per run (h) |",
             "|---|---|---|---|---|---|---|---|"]
    for task in protocol.TASKS:
        budget = protocol.BUDGETS[task]
        walls = ", ".join(f"{m} {np.mean([r['wall_time_s'] for r in cells[(task, m)]]) / 3600:.2f}" for m in protocol.METHODS if (task, m) in cells)
        paper = " / ".join(str(PAPER[m].get(task, "-")) for m in protocol.METHODS)
        lines.append(f"| {task} | {budget.steps} x {budget.batch} | " + " | ".join(_cell_text(cells.get((task, m))) for m in protocol.METHODS)
                     + f" | {paper} | {walls or '-'} |")
        for split in _other_reported_splits(task, cells):  # remote homology: TAPE's fold holdout beside the paper's split
            source = getattr(get_task(task), "source_splits", {}).get(split, split)
            lines.append(f"| {task}, `{split}` split ({source}) | | " + " | ".join(_cell_text(cells.get((task, m)), split) for m in protocol.METHODS) + " | - | |")
    lines.append("")
    lines.append("Cells: test accuracy % (remote homology: TAPE valid, the paper's split; its fold holdout on the row below), mean ± std over seeds (n seeds; the "
                 "learning rate the sweep chose). The transformer methods run the task's first `layers` SmolLM2 blocks (6; ListOps and "
                 "CIFAR-10 LRA 3).")
    return "\n".join(lines)


def _other_reported_splits(task: str, cells: dict) -> list[str]:
    """Splits besides the reported one that every finished run of the task was evaluated on (named as the task's
    source names them, e.g. remote homology's `test` is TAPE's `test_fold_holdout`)."""
    runs = [r for m in protocol.METHODS for r in cells.get((task, m), [])]
    if not runs:
        return []
    common = set.intersection(*(set(r.get("accuracy_by_split") or {}) for r in runs)) - {runs[0]["eval_split"]}
    return sorted(common)


def curves_figure(cells: dict, path: Path) -> Path:
    """Accuracy on each run's selection split (validation; remote homology: a slice of train) vs steps, one panel per
    task, one line per method (mean over seeds); a ring where every seed answered one class for every row, a dotted line
    at the most common class's share (runs since 2026-11-26 record both), or its value in the legend where it lies far
    below the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in protocol.TASKS if any((t, m) in cells for m in protocol.METHODS)]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(3.6 * max(len(tasks), 1), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for method in protocol.METHODS:
            runs = [r for r in cells.get((task, method), []) if r.get("curve")]
            if not runs:
                continue
            steps = sorted({p["step"] for r in runs for p in r["curve"]})
            mean = [100 * np.mean([p["accuracy"] for r in runs for p in r["curve"] if p["step"] == s]) for s in steps]
            line, = ax.plot(steps, mean, marker=".", label=f"{method} (n={len(runs)})")
            one_class = [(s, m) for s, m in zip(steps, mean)  # every seed answered one class for every row there
                         if all(p.get("top_prediction_share") == 1.0 for r in runs for p in r["curve"] if p["step"] == s)]
            if one_class:
                ax.plot(*zip(*one_class), "o", mfc="none", color=line.get_color(), ms=7)
        floors = [r["most_common_class_share"][r["selection_split"]] for m in protocol.METHODS for r in cells.get((task, m), [])
                  if (r.get("most_common_class_share") or {}).get(r.get("selection_split"))]
        if floors:  # drawn where it falls within the curves' range; far below them it would flatten the curves
            floor, (bottom, top) = 100 * np.mean(floors), ax.get_ylim()
            if floor >= bottom - 0.1 * (top - bottom):
                ax.axhline(floor, color="gray", ls=":", lw=1, label="most common class")
            else:
                ax.plot([], [], color="gray", ls=":", lw=1, label=f"most common class: {floor:.1f}% (below the axis)")
        splits = sorted({r.get("selection_split") or "validation" for m in protocol.METHODS for r in cells.get((task, m), [])})
        ax.set_title(f"{task} ({', '.join(splits)} split)", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("accuracy % on the selection split")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_table_and_curves() -> str:
    """Write results/cpu-grid/table.md and curves.png from the finished runs; return the table and the figure's path."""
    cells = collect()
    protocol.RESULTS.mkdir(parents=True, exist_ok=True)
    text = table(cells)
    (protocol.RESULTS / "table.md").write_text(text + "\n")
    return f"{text}\n{curves_figure(cells, protocol.RESULTS / 'curves.png')}"
