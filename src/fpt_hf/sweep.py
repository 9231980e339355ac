"""`fpt-hf sweep`: learning-rate sweeps through `Trainer.hyperparameter_search` (optuna backend).

Every trial trains the same `fpt-hf train` run at one learning rate and is scored on the split the Trainer evaluates
while training (`validation`, or the `selection` slice where the task reports its validation split): never on a
reported split. The objective is the best validation accuracy of the trial's evaluations (the checkpoint `train`
would keep). Trials are stored in an optuna journal under `--sweep_dir`, so an interrupted sweep run again goes on
where it stopped; each finished trial also writes `trials/lr<rate>-seed<seed>.json` (its learning curve), and the
sweep writes `sweep.json` (every trial, accuracy per rate over seeds, the best rate) and `sweep.png`. With
`--trial_checkpoints DIR` each trial keeps its final Trainer checkpoint there, and a run at the same rate and seed can
start from it (`fpt-hf train --continue_trial`, `--then_train`; see `trial_continuation.py`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from pathlib import Path

from transformers import Trainer, TrainerCallback

from .callbacks import RunSettings, WallClock
from .results import curve_point, results_filename, write_json
from .sweep_results import best_row, format_table, plot_sweeps, summarize
from .trial_continuation import schedule_depends_on_length

logger = logging.getLogger("fpt_hf")
INSTALL_HINT = 'pip install -e ".[sweep]"  (or: pip install optuna)'
# Trainer flags a sweep sets itself, per trial; given on the command line they would be silently replaced.
_SWEEP_OWNED = ("--learning_rate", "--resume_from_checkpoint", "--push_to_hub", "--load_best_model_at_end", "--continue_trial")
# Training flags that change where and whether a trial's checkpoint is written, not what it computes: trials of sweeps
# that differ only in these still compare.
_NOT_COMPARED = {"save_strategy", "save_steps", "save_total_limit"}


def sweep_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fpt-hf sweep",
        allow_abbrev=False,  # --learning_rate and --seed are train flags, not abbreviations of --learning_rates / --seeds
        description="Learning-rate sweep of an `fpt-hf train` run (Trainer.hyperparameter_search, optuna). Every other flag "
                    "(--task, --method, --backbone, --max_steps, --preset, ...) passes through to `fpt-hf train`. "
                    "`fpt-hf sweep plot SWEEP.json ... --out FIG.png` draws collected sweeps.",
    )
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument("--learning_rates", type=float, nargs="+", metavar="LR", help="grid mode: try exactly these rates")
    rates.add_argument("--lr_range", type=float, nargs=2, metavar=("LO", "HI"), help="search mode: optuna samples rates in [LO, HI] (log scale)")
    parser.add_argument("--n_trials", type=int, default=8, help="search mode: number of trials (default 8)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds, each rate runs once per seed (default: --seed)")
    parser.add_argument("--sweep_dir", default=None, help="where trials, sweep.json and sweep.png go (default outputs/sweeps/<run name>)")
    parser.add_argument("--trial_checkpoints", default=None, metavar="DIR",
                        help="keep each trial's final checkpoint under DIR (named in its trial record), so a run at that rate and "
                             "seed can start from it (`fpt-hf train --continue_trial RECORD`; --then_train does) under a constant schedule")
    parser.add_argument("--then_train", action="store_true", help="afterwards, train each seed at the best rate (`fpt-hf train`; "
                                                                 "from the trial's checkpoint with --trial_checkpoints)")
    return parser


def check_sweep_args(sweep_args: argparse.Namespace, train_argv: list[str]) -> None:
    """Clear errors for a sweep that cannot mean what was asked."""
    if sweep_args.learning_rates is None and sweep_args.lr_range is None:
        raise ValueError("Give the rates to try: --learning_rates 1e-4 1e-3 1e-2 (grid) or --lr_range 1e-5 1e-2 --n_trials 8 (optuna search).")
    if sweep_args.learning_rates is not None:
        bad = [lr for lr in sweep_args.learning_rates if not (math.isfinite(lr) and lr > 0)]
        if bad:
            raise ValueError(f"--learning_rates must be positive, finite numbers; got {bad}.")
    if sweep_args.lr_range is not None:
        lo, hi = sweep_args.lr_range
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
            raise ValueError(f"--lr_range LO HI needs 0 < LO < HI; got LO={lo}, HI={hi}.")
        if sweep_args.n_trials < 1:
            raise ValueError(f"--n_trials must be at least 1; got {sweep_args.n_trials}.")
        if sweep_args.seeds and len(sweep_args.seeds) > 1:
            raise ValueError("Several --seeds need the same rates for every seed: use --learning_rates (grid mode) with them.")
    owned = [flag for flag in _SWEEP_OWNED if any(a == flag or a.startswith(flag + "=") for a in train_argv)]
    if owned:
        raise ValueError(f"The sweep sets {', '.join(owned)} itself, per trial; drop {'it' if len(owned) == 1 else 'them'} "
                         "(--then_train trains at the best rate afterwards).")
    if any(a == "--seed" or a.startswith("--seed=") for a in train_argv) and sweep_args.seeds:
        raise ValueError("Give the seeds once: --seeds (several) or --seed (one), not both.")


def require_optuna():
    try:
        import optuna
    except ImportError as err:
        raise ImportError(f"`fpt-hf sweep` uses optuna (Trainer.hyperparameter_search's backend), which is not installed: {INSTALL_HINT}") from err
    return optuna


def trial_record_name(learning_rate: float, seed: int) -> str:
    return f"lr{learning_rate:.6g}-seed{seed}.json"


class TrialRecorder(TrainerCallback):
    """Evaluates at the last step too, keeps the trial's learning curve, and writes one JSON per finished trial
    (`SweepTrainer` writes the record of a trial that diverged)."""

    def __init__(self, trials_dir: Path, selection: str = "validation"):
        self.trials_dir, self.selection, self.curve, self.started = Path(trials_dir), selection, [], time.time()

    def best(self, latest: float | None = None) -> float:
        return max([point["accuracy"] for point in self.curve] + ([] if latest is None else [latest]))

    def on_train_begin(self, args, state, control, **kwargs):
        self.curve, self.started = [], time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_evaluate = True  # the curve ends at the budget, whatever --eval_steps is

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and "eval_accuracy" in metrics:
            self.curve.append(curve_point(state.global_step, metrics))

    def on_train_end(self, args, state, control, **kwargs):
        if self.curve and state.is_world_process_zero:
            self.write(args, state)

    @staticmethod
    def checkpoint(args, state) -> str | None:
        """The trial's final checkpoint, where the Trainer saved it (`<output_dir>/<trial name>/checkpoint-<step>`; older
        transformers put `run-` before the name), if it did."""
        if getattr(args.save_strategy, "value", args.save_strategy) == "no":
            return None
        for run_dir in (state.trial_name, f"run-{state.trial_name}"):
            folder = Path(args.output_dir) / run_dir / f"checkpoint-{state.global_step}"
            if (folder / "trainer_state.json").is_file():
                return str(folder)
        return None

    def write(self, args, state, diverged: str | None = None) -> None:
        record = {
            "learning_rate": args.learning_rate, "seed": args.seed, "trial": state.trial_name, "steps": state.global_step,
            "split": self.selection, "accuracy": None if diverged else self.best(),
            "final_accuracy": None if diverged else self.curve[-1]["accuracy"], "diverged": diverged,
            "curve": self.curve, "wall_time_s": round(time.time() - self.started, 1),
            "checkpoint": None if diverged else self.checkpoint(args, state),
        }
        write_json(self.trials_dir / trial_record_name(args.learning_rate, args.seed), record)
        if diverged:
            print(f"trial lr {args.learning_rate:.3g} seed {args.seed}: diverged at step {state.global_step} ({diverged}), "
                  f"{record['wall_time_s']:.0f} s", flush=True)
            return
        at = max(self.curve, key=lambda point: point["accuracy"])["step"]
        constant = " (one class for every row: no signal)" if self.curve[-1].get("top_prediction_share") == 1.0 else ""
        print(f"trial lr {args.learning_rate:.3g} seed {args.seed}: {state.global_step} steps, {self.selection} accuracy "
              f"{100 * record['final_accuracy']:.2f}% at the end{constant}, best {100 * record['accuracy']:.2f}% at step {at}, "
              f"{record['wall_time_s']:.0f} s", flush=True)


class SweepTrainer(Trainer):
    """A `Trainer` whose trials may diverge: a NaN/inf loss or logits (`FloatingPointError`, as `fpt-hf train` raises it)
    ends that trial with objective 0 and a `diverged` record, and the sweep goes on with the next rate."""

    recorder: TrialRecorder

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        except FloatingPointError as err:
            if self.hp_search_backend is None:
                raise
            self.recorder.write(self.args, self.state, diverged=str(err).split(". ")[0])
            self.objective = 0.0  # what hyperparameter_search's objective returns for this trial
            return None


def plan_trials(study, rates: list[float] | None, n_trials: int) -> int:
    """How many trials `study.optimize` still has to run. Grid mode enqueues each rate without a finished or queued
    trial; trials left running by an interrupted sweep are marked failed (their rates are queued again)."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        logger.warning("Trial %d (lr %s) of an interrupted sweep did not finish; running it again.", trial.number, trial.params.get("learning_rate"))
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if rates is None:
        return max(n_trials - len(done), 0)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    taken = {t.params.get("learning_rate", t.system_attrs.get("fixed_params", {}).get("learning_rate")) for t in done + waiting}
    for lr in rates:
        if lr not in taken:
            study.enqueue_trial({"learning_rate": lr})
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def comparable_settings(fpt_args, training_args) -> dict:
    """What makes trials comparable: everything but the rate, the seed and where files go."""
    from dataclasses import asdict

    skip = {"learning_rate", "seed", "output_dir", "logging_dir", "run_name", "overwrite_output_dir", "results_dir", *_NOT_COMPARED}
    training = {k: v for k, v in training_args.to_dict().items() if k not in skip}
    return json.loads(json.dumps({"fpt": {k: v for k, v in asdict(fpt_args).items() if k not in skip}, "training": training}, default=str))


def settings_differences(stored: dict, settings: dict, fpt_args, training_args) -> list[str]:
    """The `section.key` names where `stored` (an earlier run of this sweep) and `settings` differ. An option that a later
    version added and that sits at its default counts as absent (e.g. `prune_final_block`: same numbers), so an upgrade
    does not orphan a sweep; any other difference is listed."""
    from dataclasses import MISSING, fields

    differences = [f"{section}" for section in set(stored) ^ set(settings)]
    for section, args in (("fpt", fpt_args), ("training", training_args)):
        defaults = {f.name: f.default for f in fields(args) if f.default is not MISSING}
        old, new = stored.get(section, {}), settings[section]
        for key in sorted((set(old) | set(new)) - _NOT_COMPARED):
            if key in old:
                same = key in new and old[key] == new[key]
            else:  # added since: the same trials only at its default
                same = json.loads(json.dumps(defaults.get(key, MISSING), default=str)) == new[key]
            if not same:
                differences.append(f"{section}.{key}")
    return differences


def _prepare_training_args(training_args, trials_dir: Path, checkpoints_dir: str | None = None):
    from transformers.trainer_utils import IntervalStrategy, SaveStrategy

    if training_args.max_steps <= 0:
        raise ValueError("A sweep compares rates at one fixed budget: give --max_steps N (or a --preset, which sets it).")
    training_args.output_dir = str(trials_dir if checkpoints_dir is None else checkpoints_dir)
    if checkpoints_dir is not None:  # one checkpoint per trial, at its last step
        training_args.save_strategy, training_args.save_steps, training_args.save_total_limit = SaveStrategy.STEPS, training_args.max_steps, None
    if training_args.eval_strategy == IntervalStrategy.NO:  # the recorder still evaluates at the last step
        training_args.eval_strategy = IntervalStrategy.STEPS
        training_args.eval_steps = training_args.max_steps


def run_seed(optuna, storage, fpt_args, training_args, seed: int, rates: list[float] | None, lr_range: tuple[float, float],
             n_trials: int, trials_dir: Path) -> None:
    """One seed's optuna study: plan what is left, then `Trainer.hyperparameter_search` over it."""
    from .training import build_trainer

    training_args.seed = seed
    study_name = f"seed{seed}"
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize", load_if_exists=True)
    remaining = plan_trials(study, rates, n_trials)
    if remaining == 0:
        print(f"seed {seed}: every trial already finished ({trials_dir.parent}).", flush=True)
        return
    task = fpt_args.resolve_task()
    recorder = TrialRecorder(trials_dir)
    # WallClock and RunSettings go into a kept checkpoint, so a run continued from it counts the trial's time and is checked
    # against the trial's settings as a resume is
    callbacks = [recorder, WallClock(), RunSettings.of(training_args)]
    trainer, data, selection = build_trainer(fpt_args, training_args, callbacks=callbacks, model_init=True, trainer_class=SweepTrainer)
    trainer.recorder, recorder.selection = recorder, selection
    if selection in task.reported_splits:  # with_selection_split guarantees this; a sweep must never score a reported split
        raise RuntimeError(f"{task.name}: the sweep would score trials on {selection!r}, a reported split.")
    print(f"seed {seed}: {remaining} trial(s), {training_args.max_steps} steps x batch {training_args.per_device_train_batch_size}, "
          f"scored on {selection} ({len(data[selection])} rows)", flush=True)
    lo, hi = lr_range
    trainer.hyperparameter_search(
        direction="maximize", backend="optuna", n_trials=remaining, compute_objective=lambda metrics: recorder.best(metrics.get("eval_accuracy")),
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", lo, hi, log=True)},
        hp_name=lambda trial: f"trial{trial.number}-seed{seed}",
        storage=storage, study_name=study_name, load_if_exists=True, pruner=optuna.pruners.NopPruner(),
        sampler=optuna.samplers.TPESampler(seed=seed),
    )


def sweep_summary(records: list[dict], fpt_args, training_args, train_argv: list[str], rates, lr_range, seeds, settings) -> dict:
    """`sweep.json`: every trial, accuracy per rate over seeds, the best rate and the `fpt-hf train` command for it."""
    rows = summarize(records)
    task = fpt_args.resolve_task()
    best = best_row(rows, prefer=task.recipe.learning_rate)
    command = ["fpt-hf", "train", *train_argv, "--learning_rate", f"{best['learning_rate']:g}"]
    return {
        "task": task.name, "method": fpt_args.method, "backbone": None if fpt_args.method == "lstm" else fpt_args.backbone,
        "num_backbone_layers": fpt_args.num_backbone_layers, "max_steps": training_args.max_steps,
        "batch_size": training_args.per_device_train_batch_size, "split": records[0]["split"], "seeds": seeds,
        "budget": f"{task.name}, {fpt_args.method}, {training_args.max_steps} steps x batch {training_args.per_device_train_batch_size}",
        "mode": "grid" if rates else "search", "learning_rates": rates, "lr_range": None if rates else list(lr_range),
        "n_trials": len(records), "by_learning_rate": rows,
        "best": {"learning_rate": best["learning_rate"], "accuracy": best["mean"], "std": best["std"], "n": best["n"]},
        "train_command": shlex.join(command), "trials": records, "settings": settings,
    }


def run_sweep(sweep_args: argparse.Namespace, train_argv: list[str]) -> dict:
    """Run (or go on with) the sweep; write `sweep.json` and `sweep.png`; return the sweep summary."""
    from .arguments import parse_args
    from .training import run_training

    check_sweep_args(sweep_args, train_argv)
    optuna = require_optuna()
    # A trial keeps at most its final checkpoint (its record is the curve), so a preset's save/eval step pairing does not constrain it.
    save = "steps" if sweep_args.trial_checkpoints else "no"
    fpt_args, training_args = parse_args([*train_argv, "--save_strategy", save, "--load_best_model_at_end", "false"])
    if fpt_args.cache_features:
        raise ValueError("--cache_features caches one model's features; a sweep builds a model per trial. Drop it for the sweep.")
    if fpt_args.time_limit_minutes is not None:
        raise ValueError(f"--time_limit_minutes {fpt_args.time_limit_minutes} would end trials at different steps, and a sweep ranks "
                         "its learning rates at equal steps: size --max_steps instead.")
    unfit = schedule_depends_on_length(training_args) if sweep_args.trial_checkpoints else None
    if unfit:
        raise ValueError(f"--trial_checkpoints keeps each trial to continue it as a longer run, which needs {unfit}.")
    task = fpt_args.resolve_task()
    seeds = sweep_args.seeds or [training_args.seed]
    rates = sorted(set(sweep_args.learning_rates)) if sweep_args.learning_rates else None
    lr_range = (min(rates), max(rates)) if rates else tuple(sweep_args.lr_range)
    name = results_filename(task.name, fpt_args, training_args.max_steps, 0).removesuffix("-seed0.json")
    sweep_dir = Path(sweep_args.sweep_dir or Path("outputs/sweeps") / name)
    trials_dir = sweep_dir / "trials"
    _prepare_training_args(training_args, trials_dir, sweep_args.trial_checkpoints)
    settings = comparable_settings(fpt_args, training_args)
    settings_path = sweep_dir / "sweep_settings.json"
    if settings_path.exists():
        changed = settings_differences(json.loads(settings_path.read_text()), settings, fpt_args, training_args)
        if changed:
            raise ValueError(f"--sweep_dir {sweep_dir} holds a sweep of other settings ({settings_path}: {', '.join(changed[:6])} "
                             "differ); its trials would not compare. Pass another --sweep_dir.")
    else:
        write_json(settings_path, settings)

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(sweep_dir / "optuna-journal.log")))
    started = time.time()
    for seed in seeds:
        run_seed(optuna, storage, fpt_args, training_args, seed, rates, lr_range, sweep_args.n_trials, trials_dir)

    records = [json.loads(p.read_text()) for p in sorted(trials_dir.glob("lr*-seed*.json"))]
    records = [r for r in records if r["seed"] in seeds]  # every rate this folder tried (an earlier grid's too)
    if not records:
        raise RuntimeError(f"The sweep finished no trial ({trials_dir} holds no trial record).")
    summary = sweep_summary(records, fpt_args, training_args, train_argv, rates, lr_range, seeds, settings)
    summary["sweep_wall_time_s"] = round(time.time() - started, 1)
    write_json(sweep_dir / "sweep.json", summary)
    figure = plot_sweeps([summary], sweep_dir / "sweep.png")
    print(f"\n{summary['budget']}; {summary['split']} accuracy per learning rate:\n{format_table(summary['by_learning_rate'], summary['split'], summary['best']['learning_rate'])}\n"
          f"sweep: {sweep_dir / 'sweep.json'}   figure: {figure}\nbest rate: {summary['train_command']}", flush=True)
    if sweep_args.then_train:
        explicit_dir = any(a == "--output_dir" or a.startswith("--output_dir=") for a in train_argv)
        summary["final_runs"] = []
        for seed in seeds:
            argv = [*train_argv, "--learning_rate", repr(summary["best"]["learning_rate"]), "--seed", str(seed)]
            if not explicit_dir:
                argv += ["--output_dir", str(sweep_dir / f"best-seed{seed}")]
            record = trials_dir / trial_record_name(summary["best"]["learning_rate"], seed)
            if record.is_file() and json.loads(record.read_text()).get("checkpoint"):
                argv += ["--continue_trial", str(record)]  # the trial is this run's beginning (or all of it)
            summary["final_runs"].append(run_training(*parse_args(argv))["files"])
        write_json(sweep_dir / "sweep.json", summary)
    return summary


def main(argv: list[str]) -> None:
    if argv and argv[0] == "plot":
        parser = argparse.ArgumentParser(prog="fpt-hf sweep plot", description="Draw collected sweeps: accuracy vs learning rate.")
        parser.add_argument("sweeps", nargs="+", help="sweep.json files (one line each)")
        parser.add_argument("--out", required=True, help="PNG path")
        parser.add_argument("--title", default=None)
        args = parser.parse_args(argv[1:])
        print(plot_sweeps([json.loads(Path(p).read_text()) for p in args.sweeps], args.out, args.title))
        return
    parser = sweep_parser()
    if "-h" in argv or "--help" in argv:
        parser.print_help()
        return
    sweep_args, train_argv = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run_sweep(sweep_args, train_argv)
