"""`fpt-hf sweep`: learning-rate sweeps through Trainer.hyperparameter_search (optuna), on tiny backbones."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import Trainer

optuna = pytest.importorskip("optuna", reason="optuna (the sweep extra) is not installed")

from fpt_hf.sweep import main as sweep_main  # noqa: E402
from fpt_hf.sweep import plan_trials, run_sweep, sweep_parser  # noqa: E402
from fpt_hf.sweep_results import plot_sweeps  # noqa: E402

QUIET = ["--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false"]


def _easy_dataset(path, n_train=96, n_val=32, n_test=32):
    """Label = sign of the first feature of the first token: a high rate learns it in a few steps, 1e-7 cannot."""
    rng = np.random.default_rng(0)

    def split(n):
        x = rng.normal(size=(n, 4, 2)).astype("float32")
        return Dataset.from_dict({"inputs": x.tolist(), "labels": (x[:, 0, 0] > 0).astype("int64").tolist()})

    DatasetDict({"train": split(n_train), "validation": split(n_val), "test": split(n_test)}).save_to_disk(str(path))
    return path


def _train_argv(gpt2_dir, data, steps=12, extra=(), method="fpt"):
    return ["--dataset", str(data), "--backbone", str(gpt2_dir), "--method", method, "--max_steps", str(steps), "--eval_steps", "6",
            "--per_device_train_batch_size", "16", *QUIET, *extra]


def _sweep(argv):
    sweep_args, train_argv = sweep_parser().parse_known_args(argv)
    return run_sweep(sweep_args, train_argv)


def test_grid_sweep_tries_exactly_the_rates_and_picks_the_better_one(gpt2_dir, tmp_path, capsys):
    data = _easy_dataset(tmp_path / "easy")
    out = tmp_path / "sweep"
    summary = _sweep(["--learning_rates", "1e-7", "3e-2", "--sweep_dir", str(out), *_train_argv(gpt2_dir, data)])
    records = [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]
    assert sorted(r["learning_rate"] for r in records) == [1e-7, 3e-2] and summary["learning_rates"] == [1e-7, 3e-2]
    study = optuna.load_study(study_name="seed42", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna-journal.log"))))
    assert sorted(t.params["learning_rate"] for t in study.trials) == [1e-7, 3e-2]
    assert sorted(t.value for t in study.trials) == sorted(r["accuracy"] for r in records)  # the objective is the record's
    by_rate = {r["learning_rate"]: r for r in records}
    assert by_rate[3e-2]["accuracy"] > by_rate[1e-7]["accuracy"]  # the task really separates the rates
    assert summary["best"]["learning_rate"] == 3e-2 == max(records, key=lambda r: r["accuracy"])["learning_rate"]
    for r in records:  # the curve ends at the budget and the objective is its best point
        assert r["curve"][-1]["step"] == 12 and r["accuracy"] == max(p["accuracy"] for p in r["curve"]) and r["split"] == "validation"
        assert all(0 < p["top_prediction_share"] <= 1 for p in r["curve"])
    assert (out / "sweep.png").stat().st_size > 1000 and json.loads((out / "sweep.json").read_text())["best"]["learning_rate"] == 3e-2
    printed = capsys.readouterr().out
    assert printed.count("trial lr ") == 2 and "<- best" in printed and "--learning_rate 0.03" in printed


def test_sweep_scores_trials_on_validation_rows_only(gpt2_dir, tmp_path, monkeypatch):
    """Remote homology reports its validation split: trials are scored on the `selection` slice of train, never a reported split."""
    from test_protocol import _homology_folder

    from fpt_hf.tasks import get_task

    folder = _homology_folder(tmp_path)
    seen = []
    evaluate = Trainer.evaluate

    def recording_evaluate(self, eval_dataset=None, *args, **kwargs):
        rows = self.eval_dataset if eval_dataset is None else eval_dataset
        seen.extend(tuple(np.asarray(r["inputs"]).ravel().tolist()) for r in rows)
        return evaluate(self, eval_dataset, *args, **kwargs)

    monkeypatch.setattr(Trainer, "evaluate", recording_evaluate)
    summary = _sweep(["--learning_rates", "1e-3", "--sweep_dir", str(tmp_path / "sweep"), "--task", "remote_homology", "--data_dir",
                      str(folder), "--backbone", str(gpt2_dir), "--max_steps", "4", "--eval_steps", "2", *QUIET])
    data = get_task("remote_homology").load(str(folder))
    reported = {tuple(np.asarray(r["inputs"]).ravel().tolist()) for split in ("validation", "test") for r in data[split]}
    train = {tuple(np.asarray(r["inputs"]).ravel().tolist()) for r in data["train"]}
    assert seen and set(seen) <= train and not set(seen) & reported
    assert summary["split"] == "selection"


def test_rerun_keeps_finished_trials_and_runs_only_new_rates(gpt2_dir, tmp_path, capsys):
    data = _easy_dataset(tmp_path / "easy")
    out = tmp_path / "sweep"
    argv = ["--sweep_dir", str(out), *_train_argv(gpt2_dir, data, steps=4, extra=["--eval_steps", "2"])]
    _sweep(["--learning_rates", "1e-3", *argv])
    first = (out / "trials" / "lr0.001-seed42.json").read_text()
    capsys.readouterr()
    summary = _sweep(["--learning_rates", "1e-3", "1e-2", *argv])
    assert capsys.readouterr().out.count("trial lr ") == 1  # only the new rate trained
    assert (out / "trials" / "lr0.001-seed42.json").read_text() == first
    assert [row["learning_rate"] for row in summary["by_learning_rate"]] == [1e-3, 1e-2]
    _sweep(["--learning_rates", "1e-3", "1e-2", *argv])
    assert "every trial already finished" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"other settings .*training.max_steps"):  # another budget would not compare
        _sweep(["--learning_rates", "1e-3", "--sweep_dir", str(out), *_train_argv(gpt2_dir, data, steps=6)])
    # a sweep written before an option existed goes on while the option sits at its default, and stops when it does not
    settings_path = out / "sweep_settings.json"
    settings = json.loads(settings_path.read_text())
    del settings["fpt"]["prune_final_block"]
    settings_path.write_text(json.dumps(settings))
    _sweep(["--learning_rates", "1e-3", "1e-2", *argv])
    assert "every trial already finished" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"other settings .*fpt.prune_final_block"):
        _sweep(["--learning_rates", "1e-3", *argv, "--prune_final_block", "false"])


def test_interrupted_trial_is_run_again():
    study = optuna.create_study(direction="maximize")
    assert plan_trials(study, [1e-3, 1e-2], n_trials=0) == 2
    study.ask()  # the first queued rate starts and its process dies: the trial stays RUNNING
    assert plan_trials(study, [1e-3, 1e-2], n_trials=0) == 2  # 1e-2 still queued, 1e-3 queued again
    states = sorted(t.state.name for t in study.trials)
    assert states == ["FAIL", "WAITING", "WAITING"]


def test_search_mode_samples_n_trials_in_range_and_seeds_each_trial(gpt2_dir, tmp_path):
    data = _easy_dataset(tmp_path / "easy")
    summary = _sweep(["--lr_range", "1e-4", "1e-2", "--n_trials", "2", "--sweep_dir", str(tmp_path / "s"),
                      *_train_argv(gpt2_dir, data, steps=4, extra=["--eval_steps", "2", "--seed", "3"])])
    rates = [t["learning_rate"] for t in summary["trials"]]
    assert len(rates) == 2 and all(1e-4 <= lr <= 1e-2 for lr in rates) and {t["seed"] for t in summary["trials"]} == {3}


def test_then_train_trains_at_the_best_rate(gpt2_dir, tmp_path):
    data = _easy_dataset(tmp_path / "easy")
    out = tmp_path / "sweep"
    summary = _sweep(["--learning_rates", "1e-7", "3e-2", "--then_train", "--sweep_dir", str(out),
                      *_train_argv(gpt2_dir, data, extra=["--results_dir", str(tmp_path / "results")])])
    final = json.loads((out / "best-seed42" / "results.json").read_text())
    assert final["training_args"]["learning_rate"] == summary["best"]["learning_rate"] == 3e-2 and final["eval_split"] == "test"


@pytest.mark.parametrize("argv, message", [
    ([], "Give the rates"),
    (["--learning_rates", "0", "1e-3"], "positive"),
    (["--learning_rates", "-0.001"], "positive"),
    (["--learning_rates", "nan"], "positive"),
    (["--lr_range", "1e-2", "1e-4"], "0 < LO < HI"),
    (["--lr_range", "1e-4", "1e-2", "--n_trials", "0"], "at least 1"),
    (["--lr_range", "1e-4", "1e-2", "--seeds", "0", "1"], "--learning_rates"),
    (["--learning_rates", "1e-3", "--learning_rate", "1e-4"], "sets --learning_rate itself"),
    (["--learning_rates", "1e-3", "--seeds", "0", "--seed", "1"], "once"),
])
def test_bad_sweep_arguments(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        _sweep([*argv, "--task", "bit_xor", "--sweep_dir", str(tmp_path / "s")])


def test_a_time_limit_is_refused_because_trials_must_train_equal_steps(tmp_path):
    with pytest.raises(ValueError, match="equal steps"):
        _sweep(["--learning_rates", "1e-3", "--task", "bit_xor", "--max_steps", "5", "--time_limit_minutes", "5",
                "--sweep_dir", str(tmp_path / "s"), "--use_cpu"])


def test_empty_rate_list_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        sweep_main(["--learning_rates", "--task", "bit_xor"])
    assert "expected at least one argument" in capsys.readouterr().err


def test_missing_optuna_says_how_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[sweep\]"'):
        _sweep(["--learning_rates", "1e-3", "--task", "bit_xor", "--sweep_dir", str(tmp_path / "s")])


def test_a_task_without_a_validation_split_is_refused(gpt2_dir, tmp_path, monkeypatch):
    """A task that reports its validation split and streams training data has no rows left to score trials on."""
    from fpt_hf.tasks import get_task

    monkeypatch.setattr(get_task("bit_xor"), "reported_splits", ("validation", "test"))
    with pytest.raises(ValueError, match="no fixed training set"):
        _sweep(["--learning_rates", "1e-3", "--sweep_dir", str(tmp_path / "s"), "--task", "bit_xor", "--streaming_train",
                "--backbone", str(gpt2_dir), "--max_steps", "2", *QUIET])


def test_budget_is_required(gpt2_dir, tmp_path):
    with pytest.raises(ValueError, match="--max_steps"):
        _sweep(["--learning_rates", "1e-3", "--sweep_dir", str(tmp_path / "s"), "--task", "bit_xor", "--backbone", str(gpt2_dir), *QUIET])


def test_plot_collects_several_sweeps(tmp_path):
    def sweep(method, accs):
        rows = [{"learning_rate": lr, "mean": float(np.mean(a)), "std": float(np.std(a, ddof=1)), "n": 2, "seeds": [0, 1], "accuracies": a}
                for lr, a in zip([1e-4, 1e-3, 1e-2], accs)]
        path = tmp_path / f"{method}.json"
        path.write_text(json.dumps({"task": "mnist", "method": method, "split": "validation", "budget": "mnist, 400 steps", "by_learning_rate": rows}))
        return str(path)

    paths = [sweep("fpt", [[0.5, 0.6], [0.8, 0.82], [0.7, 0.75]]), sweep("full", [[0.6, 0.62], [0.7, 0.7], [0.1, 0.1]])]
    sweep_main(["plot", *paths, "--out", str(tmp_path / "fig.png")])
    assert (tmp_path / "fig.png").stat().st_size > 1000
    assert len(plot_sweeps([json.loads(open(p).read()) for p in paths], tmp_path / "again.png").read_bytes()) > 1000


def test_a_diverging_rate_is_recorded_and_the_sweep_goes_on(gpt2_dir, tmp_path, capsys):
    data = _easy_dataset(tmp_path / "easy")
    out = tmp_path / "sweep"
    argv = ["--learning_rates", "1e30", "1e-3", "--sweep_dir", str(out), *_train_argv(gpt2_dir, data, steps=4, extra=["--eval_steps", "2"])]
    summary = _sweep(argv)
    rows = {row["learning_rate"]: row for row in summary["by_learning_rate"]}
    assert rows[1e30]["diverged"] == 1 and rows[1e30]["mean"] is None and rows[1e-3]["diverged"] == 0
    assert summary["best"]["learning_rate"] == 1e-3
    record = json.loads((out / "trials" / "lr1e+30-seed42.json").read_text())
    assert record["accuracy"] is None and "NaN/inf" in record["diverged"]
    printed = capsys.readouterr().out
    assert "diverged at step" in printed and "(+1 diverged)" in printed
    study = optuna.load_study(study_name="seed42", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna-journal.log"))))
    assert {t.params["learning_rate"]: t.value for t in study.trials}[1e30] == 0.0  # complete, ranked last: not retried
    _sweep(argv)
    assert "every trial already finished" in capsys.readouterr().out
    assert (out / "sweep.png").stat().st_size > 1000


def test_train_still_fails_loudly_on_divergence(gpt2_dir, tmp_path):
    from fpt_hf.arguments import parse_args
    from fpt_hf.training import run_training

    data = _easy_dataset(tmp_path / "easy")
    with pytest.raises(FloatingPointError, match="Training diverged"):
        run_training(*parse_args([*_train_argv(gpt2_dir, data, steps=4, extra=["--eval_steps", "2"]), "--learning_rate", "1e30",
                                  "--output_dir", str(tmp_path / "out"), "--results_dir", str(tmp_path / "results")]))


def test_tied_rates_keep_the_one_nearest_the_paper_rate():
    """A sweep where every rate scores the same (remote homology's LSTM at 200 steps: 6.99% at all five) carries no
    signal; the tie goes to the paper's rate, not to the smallest rate swept (which the edge rule would then push lower)."""
    from fpt_hf.sweep_results import best_row, format_table

    def row(rate, mean, diverged=0):
        return {"learning_rate": rate, "mean": mean, "std": None, "n": 1, "diverged": diverged}

    tied = [row(r, 0.0699) for r in (3.33e-6, 1e-5, 3e-5, 1e-4, 3e-4)]
    assert best_row(tied)["learning_rate"] == 3.33e-6  # without a preference: the first, as before
    assert best_row(tied, prefer=1e-4)["learning_rate"] == 1e-4
    assert best_row(tied, prefer=2e-4)["learning_rate"] == 3e-4  # nearest on a log scale
    better = [*tied[:4], row(3e-4, 0.0700)]
    assert best_row(better[::-1], prefer=1e-5)["learning_rate"] == 3e-4  # accuracy first, closeness only breaks ties
    assert best_row([row(1e-3, 0.9, diverged=1), row(1e-4, 0.5)], prefer=1e-3)["learning_rate"] == 1e-4
    marked = [line for line in format_table(tied, "selection", prefer=1e-4).splitlines() if "<- best" in line]
    assert len(marked) == 1 and marked[0].strip().startswith("0.0001")


def test_trials_that_answer_one_class_are_marked():
    """A trial whose last evaluation predicted one class for every row (ListOps' 40-step trials: 16.60% = the share of
    class 0, 15.75% = class 9, 7.50% = class 2) scored a class share, not learning: the table says so."""
    from fpt_hf.sweep_results import format_table, summarize

    def record(rate, seed, accuracy, share):
        point = {"step": 40, "accuracy": accuracy, **({} if share is None else {"top_prediction_share": share})}
        return {"learning_rate": rate, "seed": seed, "accuracy": accuracy, "curve": [point]}

    rows = summarize([record(3e-4, 0, 0.166, 1.0), record(1e-3, 0, 0.1575, 1.0), record(1e-3, 1, 0.30, 0.4),
                      record(3e-3, 0, 0.075, None)])  # None: recorded before the share was measured
    assert [r["one_class"] for r in rows] == [1, 1, 0]
    lines = format_table(rows, "validation").splitlines()[2:]
    assert "(1 predicting one class)" in lines[0] and "(1 predicting one class)" in lines[1] and "one class" not in lines[2]


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("method", ["fpt", "frozen_random", "lstm"])  # frozen_random: its random blocks drawn alike too
def test_a_run_continued_from_a_kept_trial_checkpoint_is_the_uninterrupted_run(gpt2_dir, tmp_path, method):
    """A 6-step trial's checkpoint + 6 more steps (`--continue_trial`) = 12 steps from scratch: the same weights, curve
    and test accuracy, with the trial's evaluation as the curve's first point and the trial's time in the wall time."""
    from fpt_hf.training import main as train_main

    data = _easy_dataset(tmp_path / "easy")
    constant = ["--lr_scheduler_type", "constant", "--eval_strategy", "steps", "--save_steps", "6", "--results_dir", str(tmp_path / "results")]
    out = tmp_path / "sweep"
    _sweep(["--learning_rates", "1e-7", "3e-2", "--sweep_dir", str(out), "--trial_checkpoints", str(tmp_path / "kept"),
            *_train_argv(gpt2_dir, data, steps=6, extra=constant, method=method)])
    record_path = out / "trials" / "lr0.03-seed42.json"
    record = json.loads(record_path.read_text())
    assert record["checkpoint"].startswith(str(tmp_path / "kept")) and (tmp_path / "kept").is_dir()
    assert not list((out / "trials").glob("run-*"))  # checkpoints stay out of the sweep's (curated) folder

    whole = train_main([*_train_argv(gpt2_dir, data, steps=12, extra=constant, method=method), "--learning_rate", "0.03", "--seed", "42",
                        "--output_dir", str(tmp_path / "whole")])
    continued = train_main([*_train_argv(gpt2_dir, data, steps=12, extra=constant, method=method), "--learning_rate", "0.03", "--seed", "42",
                            "--output_dir", str(tmp_path / "continued"), "--continue_trial", str(record_path)])
    assert whole["curve"][0]["accuracy"] == record["curve"][-1]["accuracy"]  # the trial is the run's first 6 steps
    untimed = [[{k: v for k, v in p.items() if k != "eval_runtime_s"} for p in r["curve"]] for r in (continued, whole)]
    assert untimed[0] == untimed[1] and continued["accuracy"] == whole["accuracy"]  # the same evaluations, timed apart
    assert all(p["eval_runtime_s"] > 0 for p in whole["curve"])
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "continued")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert continued["continued_from_trial"]["trial_record"] == str(record_path) and whole["continued_from_trial"] is None
    assert continued["wall_time_s"] >= record["wall_time_s"] > 0  # the trial's seconds are part of the run's
    assert record["checkpoint"] and Path(record["checkpoint"]).is_dir()  # copied, not moved: the sweep's record stays true


def test_then_train_continues_the_best_trial(gpt2_dir, tmp_path, monkeypatch):
    """With kept checkpoints, --then_train at the sweep's own budget only evaluates: the best trial is the run."""
    steps, training_step = [], Trainer.training_step
    monkeypatch.setattr(Trainer, "training_step", lambda self, *a, **k: steps.append(1) or training_step(self, *a, **k))
    data = _easy_dataset(tmp_path / "easy")
    out = tmp_path / "sweep"
    summary = _sweep(["--learning_rates", "1e-7", "3e-2", "--then_train", "--sweep_dir", str(out), "--trial_checkpoints", str(tmp_path / "kept"),
                      *_train_argv(gpt2_dir, data, extra=["--lr_scheduler_type", "constant", "--results_dir", str(tmp_path / "results")])])
    final = json.loads((out / "best-seed42" / "results.json").read_text())
    record = json.loads((out / "trials" / "lr0.03-seed42.json").read_text())
    assert summary["best"]["learning_rate"] == 3e-2 and final["continued_from_trial"]["steps"] == 12 == final["steps"]
    assert final["curve"] == record["curve"]
    assert len(steps) == 2 * 12  # the two trials' steps; the final run trained none (from scratch it would add 12)


@pytest.mark.parametrize("change, message", [
    (["--learning_rate", "0.01"], "learning_rate 0.03 there, 0.01 here"),
    (["--seed", "1"], "seed 42 there, 1 here"),
    (["--lr_scheduler_type", "linear"], "does not depend on --max_steps"),
    (["--max_steps", "3"], "past this run's --max_steps 3"),
    (["--per_device_train_batch_size", "8"], "ran with other training.per_device_train_batch_size"),
    (["--max_grad_norm", "0.5"], "ran with other training.max_grad_norm"),
    (["--task_seed", "1"], "ran with other fpt.task_seed"),
    (["--eval_steps", "3", "--logging_steps", "2"], None),  # how often the run evaluates and logs: allowed
])
def test_continue_trial_refuses_a_run_the_trial_did_not_begin(gpt2_dir, tmp_path, change, message):
    from fpt_hf.training import main as train_main

    data = _easy_dataset(tmp_path / "easy")
    constant = ["--lr_scheduler_type", "constant", "--results_dir", str(tmp_path / "results")]
    out = tmp_path / "sweep"
    _sweep(["--learning_rates", "3e-2", "--sweep_dir", str(out), "--trial_checkpoints", str(tmp_path / "kept"),
            *_train_argv(gpt2_dir, data, steps=6, extra=constant)])
    argv = [*_train_argv(gpt2_dir, data, steps=12, extra=constant), "--learning_rate", "0.03", "--seed", "42",
            "--output_dir", str(tmp_path / "run"), "--continue_trial", str(out / "trials" / "lr0.03-seed42.json")]
    if message is None:
        assert train_main([*argv, *change])["continued_from_trial"]["steps"] == 6
        return
    with pytest.raises(ValueError, match=re.escape(message)):
        train_main([*argv, *change])
    assert not list((tmp_path / "run").glob("checkpoint-*"))  # refused before anything was copied


def test_continue_trial_needs_a_kept_checkpoint(gpt2_dir, tmp_path):
    from fpt_hf.training import main as train_main

    data = _easy_dataset(tmp_path / "easy")
    out = tmp_path / "sweep"
    _sweep(["--learning_rates", "3e-2", "--sweep_dir", str(out), *_train_argv(gpt2_dir, data, steps=6, extra=["--lr_scheduler_type", "constant"])])
    record = out / "trials" / "lr0.03-seed42.json"
    assert json.loads(record.read_text())["checkpoint"] is None
    argv = [*_train_argv(gpt2_dir, data, extra=["--lr_scheduler_type", "constant"]), "--learning_rate", "0.03", "--seed", "42",
            "--output_dir", str(tmp_path / "run"), "--results_dir", str(tmp_path / "results")]
    with pytest.raises(ValueError, match="kept no checkpoint.*--trial_checkpoints"):
        train_main([*argv, "--continue_trial", str(record)])
    with pytest.raises(ValueError, match="not a readable sweep trial record"):
        train_main([*argv, "--continue_trial", str(tmp_path / "missing.json")])
    with pytest.raises(ValueError, match="not both"):
        train_main([*argv, "--continue_trial", str(record), "--resume_from_checkpoint", "true"])


def test_keeping_checkpoints_does_not_split_a_sweep(gpt2_dir, tmp_path):
    """Where a trial's checkpoint goes does not change what it computes: a sweep begun without --trial_checkpoints goes on
    with them (new rates keep theirs), and any other setting change is still refused."""
    data = _easy_dataset(tmp_path / "easy")
    out, constant = tmp_path / "sweep", ["--lr_scheduler_type", "constant"]
    _sweep(["--learning_rates", "1e-7", "--sweep_dir", str(out), *_train_argv(gpt2_dir, data, steps=6, extra=constant)])
    summary = _sweep(["--learning_rates", "1e-7", "3e-2", "--sweep_dir", str(out), "--trial_checkpoints", str(tmp_path / "kept"),
                      *_train_argv(gpt2_dir, data, steps=6, extra=constant)])
    checkpoints = {t["learning_rate"]: t["checkpoint"] for t in summary["trials"]}
    assert checkpoints[1e-7] is None and Path(checkpoints[3e-2]).is_dir()
    with pytest.raises(ValueError, match="other settings"):
        _sweep(["--learning_rates", "1e-7", "--sweep_dir", str(out), *_train_argv(gpt2_dir, data, steps=7, extra=constant)])
    with pytest.raises(ValueError, match="--trial_checkpoints keeps each trial to continue it.*'linear'"):  # before any trial runs
        _sweep(["--learning_rates", "1e-7", "--sweep_dir", str(tmp_path / "other"), "--trial_checkpoints", str(tmp_path / "kept"),
                *_train_argv(gpt2_dir, data, steps=6, extra=["--lr_scheduler_type", "linear"])])
    assert not (tmp_path / "other").exists()


def test_a_trial_record_away_from_its_sweep_is_continued_with_a_warning(gpt2_dir, tmp_path, caplog):
    import shutil

    from fpt_hf.training import main as train_main

    data = _easy_dataset(tmp_path / "easy")
    constant = ["--lr_scheduler_type", "constant", "--results_dir", str(tmp_path / "results")]
    _sweep(["--learning_rates", "3e-2", "--sweep_dir", str(tmp_path / "sweep"), "--trial_checkpoints", str(tmp_path / "kept"),
            *_train_argv(gpt2_dir, data, steps=6, extra=constant)])
    moved = tmp_path / "elsewhere" / "lr0.03-seed42.json"
    moved.parent.mkdir()
    shutil.copy(tmp_path / "sweep" / "trials" / "lr0.03-seed42.json", moved)
    with caplog.at_level("WARNING", logger="fpt_hf"):
        result = train_main([*_train_argv(gpt2_dir, data, steps=12, extra=constant), "--learning_rate", "0.03", "--seed", "42",
                             "--output_dir", str(tmp_path / "run"), "--continue_trial", str(moved)])
    assert result["continued_from_trial"]["steps"] == 6 and "no sweep_settings.json" in caplog.text
