"""The paper-table GPU grid (examples/paper_table_gpu.py): the plan, and the whole path on CPU with a tiny backbone."""

import json

import pytest


def test_plan_fits_the_budget_and_scales_with_throughput(load_script):
    grid = load_script("examples/paper_table_gpu.py")
    cells = grid.plan(20)
    assert len(cells) == 28 and all(c.steps >= grid.MIN_STEPS for c in cells)
    overhead = 0.3 * len(cells)
    assert sum(c.train_minutes + c.eval_minutes for c in cells) + overhead == pytest.approx(20, rel=1e-6)
    by = {(c.task, c.method): c for c in cells}
    assert by["listops", "full"].steps == int(by["listops", "fpt"].steps / 1.5)  # full pays for weight gradients
    assert by["mnist", "fpt"].learning_rate == pytest.approx(min(1e-3 * (128 / 4) ** 0.5, 3e-3), rel=0.05)
    assert by["remote_homology", "fpt"].learning_rate == pytest.approx(1e-4 * (32 / 4) ** 0.5, rel=0.05)
    faster = {(c.task, c.method): c.steps for c in grid.plan(20, tokens_per_second=2 * grid.H100_TOKENS_PER_SECOND)}
    assert all(faster[k] >= 2 * by[k].steps - 1 for k in faster)
    with pytest.raises(ValueError, match="does not cover evaluation and start-up"):
        grid.plan(1)
    with pytest.raises(ValueError, match="must be positive"):
        grid.plan(0)


def test_the_documented_grid_fits_25_minutes_on_an_h100_by_its_estimate(load_script):
    grid = load_script("examples/paper_table_gpu.py")
    cells = grid.plan(18)  # docs/gpu.md: 18 minutes of grid, ~3 for the machine's start, transfers and install
    assert all(c.steps >= grid.MIN_STEPS for c in cells) and sum(c.train_minutes + c.eval_minutes for c in cells) + 0.3 * 28 + 3 <= 25


def test_dry_run_prints_the_plan_only(load_script, capsys, tmp_path):
    grid = load_script("examples/paper_table_gpu.py")
    assert grid.main(["--dry_run", "--results_dir", str(tmp_path / "r")]) == []
    out = capsys.readouterr().out
    assert "| listops | fpt | 32 |" in out and "estimated total" in out and not (tmp_path / "r").exists()


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
