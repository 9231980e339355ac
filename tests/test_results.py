import json

import numpy as np
import pytest

from fpt_hf.results import bar_chart, collect, markdown_table, seed_summary


def _write(folder, name, **fields):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(fields))


def test_table_aggregates_seeds_and_shows_paper(tmp_path):
    for seed, acc in enumerate([0.98, 0.99, 0.97]):
        _write(tmp_path, f"mnist-fpt-smollm2-135m-seed{seed}.json", task="mnist", method="fpt", backbone="smollm2-135m", accuracy=acc, steps=1500, seed=seed)
    _write(tmp_path, "bit_xor-lstm-lstm-seed0.json", task="bit_xor", method="lstm", backbone=None, accuracy=0.5, steps=500, seed=0)
    groups = collect(tmp_path)
    table = markdown_table(groups)
    values = 100 * np.array([0.98, 0.99, 0.97])
    assert f"| mnist | fpt | smollm2-135m | 3 | 1500 | {values.mean():.2f} ± {values.std(ddof=1):.2f} | 98.0 |" in table
    assert "| bit_xor | lstm | LSTM | 1 | 500 | 50.00 (1 seed) | 50.1 |" in table
    assert table.index("bit_xor") < table.index("mnist")  # the paper's task order
    _write(tmp_path, "mnist-fpt-smollm2-135m-25000steps-seed0.json", task="mnist", method="fpt", backbone="smollm2-135m", accuracy=0.99, steps=25000, seed=0)
    table = markdown_table(collect(tmp_path))  # a longer run is its own row, not averaged with the short ones
    assert "| mnist | fpt | smollm2-135m | 1 | 25000 | 99.00 (1 seed) | 98.0 |" in table
    assert f"| mnist | fpt | smollm2-135m | 3 | 1500 | {values.mean():.2f} ± {values.std(ddof=1):.2f} | 98.0 |" in table
    png = bar_chart(groups, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert seed_summary([{"accuracy": 0.5}]) == (50.0, None, 1)  # one seed: no error bar, no "± 0.00"
    mean, std, n = seed_summary([{"accuracy": 0.98}, {"accuracy": 0.99}, {"accuracy": 0.97}])
    assert (round(mean, 6), round(std, 6), n) == (98.0, 1.0, 3)


def test_table_names_the_gpu_of_gpu_runs(tmp_path):
    for gpu, acc in [("NVIDIA H100 80GB HBM3", 0.33), ("NVIDIA H200", 0.35)]:
        _write(tmp_path, f"listops-fpt-{gpu[-4:]}.json", task="listops", method="fpt", backbone="smollm2-135m", accuracy=acc,
               steps=537, seed=0, hardware={"gpu": gpu, "gpu_count": 1})
    _write(tmp_path, "listops-fpt-cpu.json", task="listops", method="fpt", backbone="smollm2-135m", accuracy=0.31, steps=537,
           seed=0, hardware={"gpu": None, "cpu": "x"})
    table = markdown_table(collect(tmp_path))
    assert "| listops | fpt | smollm2-135m, H100 80GB HBM3 | 1 | 537 | 33.00 (1 seed) | 38.4 |" in table
    assert "| listops | fpt | smollm2-135m, H200 | 1 | 537 | 35.00 (1 seed) | 38.4 |" in table
    assert "| listops | fpt | smollm2-135m | 1 | 537 | 31.00 (1 seed) | 38.4 |" in table  # a CPU run: no device in its label


def test_foreign_json_is_rejected(tmp_path):
    _write(tmp_path, "other.json", foo=1)
    with pytest.raises(ValueError, match="not an fpt-hf results file"):
        collect(tmp_path)


def test_grid_skips_only_a_finished_run_of_the_same_length(tmp_path, load_script):
    finished_result = load_script("examples/reproduce_table.py").finished_result
    run = ["--task", "bit_xor", "--method", "fpt", "--backbone", "smollm2-135m", "--seed", "0", "--preset", "cpu",
           "--use_cpu", "--output_dir", str(tmp_path / "out")]
    _write(tmp_path, "bit_xor-fpt-smollm2-135m-200steps-seed0.json", task="bit_xor")
    assert finished_result(run, tmp_path) is None  # the cpu preset's 500 steps were not run yet
    assert finished_result(run + ["--max_steps", "200"], tmp_path).name == "bit_xor-fpt-smollm2-135m-200steps-seed0.json"
    assert finished_result([*run[:7], "1", *run[8:], "--max_steps", "200"], tmp_path) is None  # other seed
    _write(tmp_path, "bit_xor-fpt-smollm2-135m-500steps-seed0.json", task="bit_xor")
    assert finished_result(run, tmp_path).name == "bit_xor-fpt-smollm2-135m-500steps-seed0.json"
    run_output_dir = load_script("examples/reproduce_table.py").run_output_dir
    assert run_output_dir(run) == "outputs/grid/bit_xor-fpt-smollm2-135m-500steps-seed0"
    assert run_output_dir(run + ["--max_steps", "200"]) == "outputs/grid/bit_xor-fpt-smollm2-135m-200steps-seed0"  # its own folder


def test_sink_token_runs_are_their_own_file_and_row(tmp_path):
    from fpt_hf.arguments import parse_args
    from fpt_hf.results import results_filename

    argv = ["--task", "bit_memory", "--backbone", "smollm2-135m", "--num_backbone_layers", "6", "--use_cpu"]
    plain, _ = parse_args(argv)
    sink, _ = parse_args(argv + ["--sink_tokens", "1"])
    positions, _ = parse_args(argv + ["--sink_tokens", "1", "--learned_positions", "121", "--streaming_train"])
    assert results_filename("bit_memory", plain, 4000, 0) == "bit_memory-fpt-smollm2-135m-L6-4000steps-seed0.json"
    assert results_filename("bit_memory", sink, 4000, 0) == "bit_memory-fpt-smollm2-135m-L6-sink1-4000steps-seed0.json"
    assert results_filename("bit_memory", positions, 4000, 0) == "bit_memory-fpt-smollm2-135m-L6-sink1-pos121-stream-4000steps-seed0.json"
    common = dict(task="bit_memory", method="fpt", backbone="smollm2-135m", num_backbone_layers=6, steps=4000, seed=0)
    _write(tmp_path, "a.json", accuracy=0.99, **common)
    _write(tmp_path, "b.json", accuracy=1.0, sink_tokens=1, **common)
    _write(tmp_path, "c.json", accuracy=0.995, sink_tokens=1, fpt_args={"streaming_train": True}, **common)
    _write(tmp_path, "d.json", accuracy=0.997, sink_tokens=1, fpt_args={"streaming_train": True, "learned_positions": 121}, **common)
    table = markdown_table(collect(tmp_path))
    assert "| bit_memory | fpt | smollm2-135m (first 6 layers) + 1 sink token, streamed data | 1 | 4000 | 99.50 (1 seed) | 100 |" in table
    assert "| smollm2-135m (first 6 layers) + 1 sink token + 121 learned positions, streamed data | 1 | 4000 | 99.70 (1 seed) |" in table
    assert "| bit_memory | fpt | smollm2-135m (first 6 layers) | 1 | 4000 | 99.00 (1 seed) | 100 |" in table
    assert "| bit_memory | fpt | smollm2-135m (first 6 layers) + 1 sink token | 1 | 4000 | 100.00 (1 seed) | 100 |" in table


def test_protocol_choices_are_their_own_file_and_row(tmp_path):
    from fpt_hf.arguments import parse_args
    from fpt_hf.results import results_filename

    paper, _ = parse_args(["--task", "cifar10_lra", "--preset", "paper", "--data_protocol", "paper", "--use_cpu"])
    assert results_filename("cifar10_lra", paper, 100, 0) == "cifar10_lra-fpt-smollm2-135m-paperinit-drop0.1-paperdata-aug-100steps-seed0.json"
    listops, _ = parse_args(["--task", "listops", "--preset", "paper", "--use_cpu"])
    assert results_filename("listops", listops, 100, 0) == "listops-fpt-smollm2-135m-paperinit-100steps-seed0.json"
    common = dict(task="cifar10_lra", method="fpt", backbone="smollm2-135m", steps=100, seed=0)
    _write(tmp_path, "a.json", accuracy=0.4, fpt_args={"input_init": "paper", "input_dropout": 0.1, "data_protocol": "paper", "augment": True}, **common)
    _write(tmp_path, "b.json", accuracy=0.3, **common)
    table = markdown_table(collect(tmp_path))
    assert "| smollm2-135m, original input init, input dropout 0.1, original preprocessing, augmented | 1 | 100 | 40.00 (1 seed) |" in table
    assert "| cifar10_lra | fpt | smollm2-135m | 1 | 100 | 30.00 (1 seed) |" in table


def test_sink_tokens_are_for_transformer_methods():
    from fpt_hf.training import parse_args

    with pytest.raises(ValueError, match="--sink_tokens applies to transformer backbones"):
        parse_args(["--task", "bit_xor", "--method", "lstm", "--sink_tokens", "1", "--use_cpu"])


def test_a_run_with_other_settings_does_not_overwrite_a_result(tmp_path, caplog):
    from fpt_hf.results import results_path

    name = "bit_memory-fpt-smollm2-135m-4000steps-seed0.json"
    run = {"task": "bit_memory", "accuracy": 0.99, "training_args": {"learning_rate": 1e-3, "seed": 0},
           "fpt_args": {"task": "bit_memory", "results_dir": "results", "data_dir": None}}
    assert results_path(tmp_path, name, run) == tmp_path / name  # nothing there yet
    _write(tmp_path, name, **run)
    # the same command again (even with another results or data folder) replaces its own file
    moved = {**run, "accuracy": 0.98, "fpt_args": {**run["fpt_args"], "results_dir": "elsewhere", "data_dir": "/data"}}
    assert results_path(tmp_path, name, moved) == tmp_path / name
    other_lr = {**run, "training_args": {"learning_rate": 2e-3, "seed": 0}}
    with caplog.at_level("WARNING", logger="fpt_hf"):
        assert results_path(tmp_path, name, other_lr) == tmp_path / name.replace(".json", "-2.json")
    assert "holds a run with other settings" in caplog.text
    _write(tmp_path, name.replace(".json", "-2.json"), **other_lr)
    assert results_path(tmp_path, name, other_lr) == tmp_path / name.replace(".json", "-2.json")
    other_task_seed = {**run, "fpt_args": {**run["fpt_args"], "task_seed": 1}}
    assert results_path(tmp_path, name, other_task_seed) == tmp_path / name.replace(".json", "-3.json")
    (tmp_path / "x.json").write_text("not json")  # a foreign file is never replaced
    assert results_path(tmp_path, "x.json", run) == tmp_path / "x-2.json"


def test_homology_rows_show_validation_and_fold_holdout(tmp_path):
    for seed, (valid, test) in enumerate([(0.12, 0.10), (0.14, 0.12)]):
        _write(tmp_path, f"h{seed}.json", task="remote_homology", method="fpt", backbone="smollm2-135m", steps=100, seed=seed,
               accuracy=valid, eval_split="validation", accuracy_by_split={"validation": valid, "test": test})
    table = markdown_table(collect(tmp_path))
    assert "| remote_homology | fpt | smollm2-135m | 2 | 100 | 13.00 ± 1.41; test: 11.00 ± 1.41 | 12.7 |" in table

