"""Trainer-based training end to end on tiny backbones: metrics, results JSON, resume, accumulation, DDP, push."""

import itertools
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from transformers import TrainerCallback

from fpt_hf import FPTModel
from fpt_hf.training import main, parse_args, run_training

REPO = Path(__file__).resolve().parents[1]


def _args(tmp_path, backbone, *extra, task="bit_xor", method="full"):
    return [
        "--task", task, "--backbone", backbone, "--method", method, "--preset", "cpu", "--use_cpu",
        "--output_dir", str(tmp_path / "out"), "--results_dir", str(tmp_path / "results"),
        "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false", *extra,
    ]


def test_bit_xor_reaches_100_percent(gpt2_dir, tmp_path):
    results = main(_args(tmp_path, gpt2_dir, "--max_steps", "300", "--learning_rate", "3e-3", "--per_device_train_batch_size", "32",
                         "--train_size", "2000", "--eval_steps", "100", "--save_steps", "100"))
    assert results["accuracy"] == 1.0
    (path,) = (tmp_path / "results").glob("*.json")
    assert path.name == f"bit_xor-full-{os.path.basename(gpt2_dir)}-300steps-seed42.json"
    written = json.loads(path.read_text())
    assert written["accuracy"] == 1.0 and written["steps"] == 300 and written["world_size"] == 1
    assert written["trainable_parameters"] > 0 and written["hardware"]["cpu_count"] >= 1
    assert written["hardware"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # what sets a CPU run's speed
    # the saved best model reproduces the reported metric through the CLI's evaluate path
    from fpt_hf.evaluation import evaluate_checkpoint

    assert evaluate_checkpoint(str(tmp_path / "out"), "bit_xor")["accuracy"] == 1.0


@pytest.mark.skipif(not (SHARED_DATA / "mnist").exists(), reason=f"real MNIST not found at {SHARED_DATA / 'mnist'}")
def test_mnist_end_to_end(gpt2_dir, tmp_path):
    # 500 steps gave 0.39-0.55 across seeds and machines (a marginal pass); 1,000 steps gave 0.72-0.74 on seeds 42/0/1
    results = main(_args(tmp_path, gpt2_dir, "--data_dir", str(SHARED_DATA / "mnist"), "--max_steps", "1000", "--learning_rate", "2e-3",
                         "--per_device_train_batch_size", "32", "--eval_strategy", "no", "--save_strategy", "no",
                         "--load_best_model_at_end", "false", "--per_device_eval_batch_size", "500", task="mnist", method="full"))
    assert results["eval_split"] == "test" and results["accuracy"] > 0.5  # chance is 0.1


def test_listops_lstm_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_HF_CACHE", str(tmp_path / "cache"))
    results = main(_args(tmp_path, "unused", "--max_steps", "20", "--train_size", "200", "--lstm_hidden_size", "16",
                         "--eval_steps", "20", "--save_steps", "20", "--per_device_eval_batch_size", "256", task="listops", method="lstm"))
    assert results["backbone"] is None and 0.0 <= results["accuracy"] <= 1.0 and results["steps"] == 20


def test_paper_preset_streams_the_bit_tasks_and_sink_tokens_reach_the_model(gpt2_dir, tmp_path):
    assert parse_args(["--task", "bit_memory", "--preset", "paper", "--use_cpu"])[0].streaming_train
    assert not parse_args(["--task", "bit_memory", "--preset", "paper", "--train_size", "5000", "--use_cpu"])[0].streaming_train
    assert not parse_args(["--task", "mnist", "--preset", "paper", "--use_cpu"])[0].streaming_train
    assert not parse_args(["--task", "bit_memory", "--preset", "cpu", "--use_cpu"])[0].streaming_train
    with pytest.raises(ValueError, match="streaming_train applies to tasks generated without end"):
        parse_args(["--task", "mnist", "--streaming_train", "true", "--use_cpu"])
    with pytest.raises(ValueError, match="cannot cache a --streaming_train stream"):
        parse_args(["--task", "bit_xor", "--method", "output_only", "--cache_features", "true", "--streaming_train", "true", "--use_cpu"])
    from datasets import IterableDataset

    from fpt_hf.tasks import get_task
    from fpt_hf.training import load_task_data

    args, _ = parse_args(["--task", "bit_xor", "--streaming_train", "true", "--use_cpu"])
    streams = [load_task_data(get_task("bit_xor"), args, 0, None, training_seed=s)["train"] for s in (0, 0, 1)]
    assert all(isinstance(stream, IterableDataset) for stream in streams)
    heads = [[row["inputs"].tolist() for row in itertools.islice(stream, 20)] for stream in streams]
    assert heads[0] == heads[1] != heads[2]  # the training seed draws the stream
    results = main(_args(tmp_path, gpt2_dir, "--streaming_train", "true", "--sink_tokens", "1",
                         "--max_steps", "20", "--eval_steps", "20", "--save_steps", "20"))
    assert results["steps"] == 20 and results["fpt_args"]["streaming_train"] and results["sink_tokens"] == 1
    assert (tmp_path / "results" / f"bit_xor-full-{os.path.basename(gpt2_dir)}-sink1-stream-20steps-seed42.json").exists()
    assert FPTModel.from_pretrained(tmp_path / "out").config.sink_tokens == 1  # the trained model has its sink token


def test_preset_defaults_are_overridden_by_flags():
    args, training_args = parse_args(["--task", "mnist", "--preset", "paper", "--learning_rate", "5e-4", "--use_cpu"])
    assert training_args.learning_rate == 5e-4
    assert training_args.max_grad_norm == 1.0 and training_args.lr_scheduler_type == "constant"
    assert training_args.per_device_train_batch_size == 4 and training_args.max_steps == 50000  # the original run.py batch
    _, homology = parse_args(["--task", "remote_homology", "--preset", "paper", "--use_cpu"])
    assert homology.learning_rate == 1e-4
    with pytest.raises(ValueError, match="Unknown method 'adapter'"):
        parse_args(["--task", "mnist", "--method", "adapter"])
    with pytest.raises(ValueError, match="Unknown task 'imagenet'"):
        parse_args(["--task", "imagenet"])
    from fpt_hf.training import resolve_compute_dtype

    assert resolve_compute_dtype("float32") is None and resolve_compute_dtype("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="compute_dtype must be 'auto'"):
        resolve_compute_dtype("fp8")
    from fpt_hf.training import resolve_attn_implementation

    assert resolve_attn_implementation("auto", 64, use_cpu=True) == "eager"
    assert resolve_attn_implementation("auto", 1024, use_cpu=True) == "sdpa"
    assert resolve_attn_implementation("sdpa", 64, use_cpu=True) == "sdpa"


def test_use_cpu_defaults_to_true_only_without_an_accelerator(gpt2_dir, tmp_path, monkeypatch):
    """A CPU machine trains without `--use_cpu` and without torch's pinned-memory warning; where an accelerator
    exists nothing changes, and an explicit flag wins either way."""
    quiet = ["--report_to", "none", "--disable_tqdm", "true"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = main(["--task", "bit_xor", "--backbone", gpt2_dir, "--preset", "cpu", "--max_steps", "2", "--train_size", "32",
                        "--output_dir", str(tmp_path / "out"), "--results_dir", str(tmp_path / "results"), *quiet])
    assert results["steps"] == 2
    assert not [w for w in caught if "pin_memory" in str(w.message)]
    assert parse_args(["--task", "bit_xor", *quiet])[1].use_cpu is (not torch.accelerator.is_available())
    assert parse_args(["--task", "bit_xor", "--use_cpu", "false", *quiet])[1].use_cpu is False
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    assert parse_args(["--task", "bit_xor", *quiet])[1].use_cpu is False
    assert parse_args(["--task", "bit_xor", "--use_cpu", *quiet])[1].use_cpu is True


class _Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 25:
            raise KeyboardInterrupt("simulated kill")


class _Pause(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 5:
            time.sleep(1.0)


def test_resume_after_kill_gives_the_same_result(gpt2_dir, tmp_path):
    common = ["--max_steps", "40", "--eval_steps", "20", "--save_steps", "20", "--learning_rate", "3e-3", "--train_size", "500"]
    straight = run_training(*parse_args(_args(tmp_path / "a", gpt2_dir, *common)))
    with pytest.raises(KeyboardInterrupt):
        run_training(*parse_args(_args(tmp_path / "b", gpt2_dir, *common)), callbacks=[_Crash(), _Pause()])
    checkpoint = tmp_path / "b" / "out" / "checkpoint-20"
    assert (checkpoint / "model.safetensors").exists()
    resumed = run_training(*parse_args(_args(tmp_path / "b", gpt2_dir, *common, "--resume_from_checkpoint", str(checkpoint))))
    assert resumed["steps"] == straight["steps"] == 40
    assert resumed["metrics"]["test_loss"] == pytest.approx(straight["metrics"]["test_loss"], rel=1e-5)
    assert resumed["accuracy"] == straight["accuracy"]
    # wall time: the killed process's seconds up to checkpoint-20 (its 1 s pause included) plus the resumed process's
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    before = state["stateful_callbacks"]["WallClock"]["attributes"]["elapsed_before_s"]
    assert before >= 1.0
    assert resumed["wall_time_s"] == pytest.approx(before + resumed["wall_time_this_process_s"], abs=0.2)
    assert straight["wall_time_s"] == pytest.approx(straight["wall_time_this_process_s"], abs=0.2)


class _KillAfterTraining(TrainerCallback):
    def on_train_end(self, args, state, control, **kwargs):
        raise KeyboardInterrupt("simulated kill during the held-out evaluation")


def test_a_run_killed_after_its_last_checkpoint_resumes_to_evaluate_only(gpt2_dir, tmp_path):
    """Killed between its final checkpoint and the held-out pass (as a session's end can cut the CPU grid's long test
    evaluations), the resumed run trains no step and reports what the uninterrupted run reports."""
    common = ["--max_steps", "20", "--eval_steps", "10", "--save_steps", "10", "--learning_rate", "3e-3", "--train_size", "200"]
    straight = run_training(*parse_args(_args(tmp_path / "a", gpt2_dir, *common)))
    with pytest.raises(KeyboardInterrupt):
        run_training(*parse_args(_args(tmp_path / "b", gpt2_dir, *common)), callbacks=[_KillAfterTraining()])
    assert (tmp_path / "b" / "out" / "checkpoint-20" / "trainer_state.json").exists() and not list((tmp_path / "b" / "results").glob("*.json"))
    steps = []
    resumed = run_training(*parse_args(_args(tmp_path / "b", gpt2_dir, *common, "--resume_from_checkpoint", "true")),
                           callbacks=[type("Count", (TrainerCallback,), {"on_step_end": lambda self, *a, **k: steps.append(1)})()])
    assert steps == [] and resumed["steps"] == straight["steps"] == 20
    assert resumed["metrics"]["test_loss"] == pytest.approx(straight["metrics"]["test_loss"], rel=1e-5)
    assert resumed["accuracy"] == straight["accuracy"]
    assert [p["accuracy"] for p in resumed["curve"]] == [p["accuracy"] for p in straight["curve"]]
    assert resumed["train_loss"] is None and resumed["wall_time_s"] > resumed["wall_time_this_process_s"]


def test_heads_only_trainer_checkpoints(gpt2_dir, tmp_path):
    run_training(*parse_args(_args(tmp_path, gpt2_dir, "--max_steps", "10", "--eval_steps", "10", "--save_steps", "10", method="fpt")))
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "out" / "checkpoint-10" / "model.safetensors")
    model = FPTModel.from_pretrained(tmp_path / "out")
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}


def _one_step_loss_and_params(gpt2_dir, tmp_path, batch, accumulation, *extra):
    model_holder = {}

    class Grab(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            model_holder["params"] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            model_holder["loss"] = state.log_history[0]["loss"]
            model_holder["checkpointing"] = any(getattr(m, "gradient_checkpointing", False) for m in model.modules())

    args = _args(tmp_path, gpt2_dir, "--max_steps", "1", "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps",
                 str(accumulation), "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                 "--train_size", "64", "--max_grad_norm", "0", "--dataloader_drop_last", "true", *extra, method="fpt")
    run_training(*parse_args(args), callbacks=[Grab()])
    return model_holder


def test_gradient_checkpointing_gives_the_same_step(gpt2_dir, tmp_path):
    plain = _one_step_loss_and_params(gpt2_dir, tmp_path / "plain", 16, 1, "--compute_dtype", "float32", "--selective_checkpointing", "false")
    assert not plain["checkpointing"]
    for mode, flags in {"selective": ("--selective_checkpointing", "true"), "full": ("--activation_checkpointing", "true")}.items():
        recomputed = _one_step_loss_and_params(gpt2_dir, tmp_path / mode, 16, 1, "--compute_dtype", "float32", *flags)
        assert recomputed["checkpointing"], mode
        assert recomputed["loss"] == pytest.approx(plain["loss"], rel=1e-6), mode
        for name, value in plain["params"].items():
            torch.testing.assert_close(recomputed["params"][name], value, atol=1e-6, rtol=1e-5, msg=f"{mode}: {name}")
    # the presets: never full recomputation (1.35x slower on CIFAR-10 LRA); selective only above 256 tokens, where
    # activations grow and its per-op cost is small (7-12% of a short bf16 CPU step)
    for task, selective in {"cifar10_lra": True, "listops": True, "remote_homology": True, "mnist": False, "bit_memory": False}.items():
        for preset in ("cpu", "paper"):
            fpt_args, training_args = parse_args(["--task", task, "--preset", preset, "--use_cpu"])
            assert not training_args.activation_checkpointing and fpt_args.selective_checkpointing == selective, (task, preset)
    assert parse_args(["--task", "mnist", "--preset", "cpu", "--selective_checkpointing", "true"])[0].selective_checkpointing


def test_gradient_accumulation_does_not_scale_the_loss(gpt2_dir, tmp_path):
    plain = _one_step_loss_and_params(gpt2_dir, tmp_path / "plain", 16, 1)
    accumulated = _one_step_loss_and_params(gpt2_dir, tmp_path / "acc", 4, 4)
    assert accumulated["loss"] == pytest.approx(plain["loss"], rel=1e-4)
    for name, value in plain["params"].items():
        torch.testing.assert_close(accumulated["params"][name], value, atol=1e-5, rtol=1e-4)


DDP_SCRIPT = """
import json, os, sys
import datasets
import fpt_hf.training as training

original = datasets.Dataset.__getitems__

def recording_getitems(self, keys):
    if len(self) == 256:  # the training split
        with open(os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.jsonl"), "a") as f:
            f.write(json.dumps([int(k) for k in keys]) + "\\n")
    return original(self, keys)

datasets.Dataset.__getitems__ = recording_getitems
training.run_training(*training.parse_args(sys.argv[2:]))
"""


def _launch_two_processes(script, *args, timeout):
    """`accelerate launch` of `script args` on two CPU processes (examples/accelerate_configs/cpu_2proc.yaml)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "examples" / "accelerate_configs" / "cpu_2proc.yaml")]
    return subprocess.run([*launcher, str(script), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_two_process_ddp(gpt2_dir, tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    record = tmp_path / "record"
    record.mkdir()
    args = _args(tmp_path, gpt2_dir, "--max_steps", "6", "--eval_steps", "6", "--save_steps", "6", "--train_size", "256",
                 "--ddp_backend", "gloo", "--ddp_find_unused_parameters", "false", method="fpt")
    proc = _launch_two_processes(script, str(record), *args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["world_size"] == 2
    assert len(list((tmp_path / "results").glob("*.json"))) == 1
    seen = {rank: [i for line in (record / f"rank{rank}.jsonl").read_text().splitlines() for i in json.loads(line)] for rank in (0, 1)}
    assert min(len(seen[0]), len(seen[1])) >= 6 * 16  # 6 steps of 16 rows on each rank (plus prefetch)
    assert not set(seen[0]) & set(seen[1])  # disjoint shards of the training set


DDP_DEADLINE_SCRIPT = """
import os, sys
import fpt_hf.callbacks as callbacks
import fpt_hf.training as training

if os.environ["RANK"] == "1":  # this process's own clock would train for another hour
    class LateClock(callbacks.StopAtTimeLimit):
        def __init__(self, deadline):
            super().__init__(deadline + 3600)
    training.StopAtTimeLimit = LateClock
training.run_training(*training.parse_args(sys.argv[1:]))
"""


def test_two_processes_stop_at_the_time_limit_together(gpt2_dir, tmp_path):
    """Each process reads the main process's clock: with rank 1's own deadline an hour later, both still stop after the
    first step (a process training on alone would wait forever for the other's gradients)."""
    script = tmp_path / "ddp_deadline.py"
    script.write_text(DDP_DEADLINE_SCRIPT)
    args = _args(tmp_path, gpt2_dir, "--max_steps", "500", "--train_size", "256", "--time_limit_minutes", "0.0001",
                 "--ddp_backend", "gloo", "--ddp_find_unused_parameters", "false", method="fpt")
    proc = _launch_two_processes(script, *args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["world_size"] == 2 and results["steps"] == 1 and results["stopped_by_time_limit"] is True


def _patch_hub(monkeypatch, tmp_path, fail=False):
    from huggingface_hub import HfApi

    committed = tmp_path / "committed"
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["repo"] = repo_id
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, repo_id, operations, **kwargs):
        if fail:
            raise ConnectionError("Hub unreachable")
        committed.mkdir(exist_ok=True)
        for op in operations:
            target = committed / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            source = op.path_or_fileobj
            target.write_bytes(Path(source).read_bytes() if isinstance(source, (str, Path)) else source)
        calls["commit"] = [op.path_in_repo for op in operations]
        return "https://huggingface.co/commit/fake"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr(HfApi, "_validate_yaml", lambda self, content, **kwargs: None)  # a Hub endpoint
    return committed, calls


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU has no denormal flushing (x86 with SSE3 only)")
@pytest.mark.parametrize("flush", [True, False])
def test_training_flushes_subnormal_floats_as_asked(gpt2_dir, tmp_path, flush):
    """--flush_denormal (default on) sets the process's flushing: subnormal floats (below 1.18e-38), which made an LSTM
    step ~10x as slow (benchmarks/denormal_steps.py), compute as zero; off, they keep their value."""
    from fpt_hf.training import build_trainer

    try:
        argv = _args(tmp_path, gpt2_dir, "--max_steps", "1", "--train_size", "8", *(() if flush else ("--flush_denormal", "false")))
        args, training_args = parse_args(argv)
        assert args.flush_denormal is flush
        build_trainer(args, training_args)
        subnormal = torch.tensor([1e-40], dtype=torch.float64).float() * 1.0
        assert (subnormal.item() == 0.0) is flush and (flush or 0 < subnormal.item() < torch.finfo(torch.float32).tiny)
    finally:
        torch.set_flush_denormal(False)


def test_push_to_hub_with_model_card(gpt2_dir, tmp_path, monkeypatch):
    committed, calls = _patch_hub(monkeypatch, tmp_path)
    results = main(_args(tmp_path, gpt2_dir, "--max_steps", "10", "--eval_steps", "10", "--save_steps", "10", "--train_size", "200",
                         "--push_to_hub", "--hub_model_id", "someone/fpt-xor", method="fpt"))
    assert calls["repo"] == "someone/fpt-xor"
    assert sorted(calls["commit"]) == ["README.md", "config.json", "model.safetensors", "results.json"]
    from huggingface_hub import ModelCard

    card = ModelCard.load(committed / "README.md")
    assert card.data.library_name == "fpt-hf" and card.data.base_model is None  # a local folder is no Hub base model
    assert card.data.eval_results[0].metric_value == results["accuracy"]
    assert 'FPTModel.from_pretrained("someone/fpt-xor")' in card.text
    from fpt_hf.evaluation import evaluate_checkpoint

    assert evaluate_checkpoint(str(committed), "bit_xor")["accuracy"] == results["accuracy"]
    assert os.path.getsize(committed / "model.safetensors") < 100_000


def test_failed_push_keeps_local_results(gpt2_dir, tmp_path, monkeypatch):
    _patch_hub(monkeypatch, tmp_path, fail=True)
    with pytest.raises(RuntimeError, match="Pushing .* to 'someone/fpt-xor' failed .*Hub unreachable.*intact"):
        main(_args(tmp_path, gpt2_dir, "--max_steps", "5", "--eval_steps", "5", "--save_steps", "5", "--train_size", "100",
                   "--push_to_hub", "--hub_model_id", "someone/fpt-xor", method="fpt"))
    assert (tmp_path / "out" / "results.json").exists() and (tmp_path / "out" / "model.safetensors").exists()
    assert len(list((tmp_path / "results").glob("*.json"))) == 1


def test_foreign_and_corrupt_checkpoints(gpt2_dir, tmp_path):
    from fpt_hf.evaluation import evaluate_checkpoint

    with pytest.raises(ValueError, match="holds a 'gpt2' model, not an fpt-hf checkpoint"):
        evaluate_checkpoint(gpt2_dir, "bit_xor")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        evaluate_checkpoint(str(tmp_path), "bit_xor")
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=16, num_labels=10)
    model.save_pretrained(tmp_path / "mnist_model")
    with pytest.raises(ValueError, match="does not fit task 'bit_xor'"):
        evaluate_checkpoint(str(tmp_path / "mnist_model"), "bit_xor")


def test_cached_features_train_the_same_head_as_the_backbone_path(gpt2_dir, tmp_path):
    heads = {}

    class Grab(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            heads[args.output_dir] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            # output_only: no backward through the backbone, so no selective checkpointing either
            assert not any(getattr(m, "gradient_checkpointing", False) for m in model.modules())

    flags = ("--max_steps", "20", "--per_device_train_batch_size", "8", "--train_size", "64", "--eval_steps", "10", "--save_steps", "10",
             "--compute_dtype", "float32", "--seed", "3")
    direct = run_training(*parse_args(_args(tmp_path / "direct", gpt2_dir, *flags, method="output_only")), callbacks=[Grab()])
    cached = run_training(*parse_args(_args(tmp_path / "cached", gpt2_dir, *flags, "--cache_features", "true", method="output_only")),
                          callbacks=[Grab()])
    (a, b) = heads.values()
    assert a.keys() == b.keys() == {"head.proj.weight", "head.proj.bias"}
    step = {(run, n): FPTModel.from_pretrained(tmp_path / run / "out" / f"checkpoint-{n}").head.proj.weight for run in ("direct", "cached") for n in (10, 20)}
    torch.testing.assert_close(step["cached", 20], step["direct", 20], rtol=1e-5, atol=1e-6)
    assert not torch.equal(step["direct", 10], step["direct", 20])  # the head did train
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert cached["accuracy"] == direct["accuracy"]
    assert cached["metrics"]["test_loss"] == pytest.approx(direct["metrics"]["test_loss"], rel=1e-5)
    # the saved checkpoint is a normal FPT checkpoint: it evaluates on raw inputs
    from fpt_hf.evaluation import evaluate_checkpoint

    assert evaluate_checkpoint(str(tmp_path / "cached" / "out"), "bit_xor")["accuracy"] == cached["accuracy"]


def test_cache_features_needs_output_only_and_no_augmentation():
    with pytest.raises(ValueError, match="needs --method output_only"):
        parse_args(["--task", "bit_xor", "--method", "fpt", "--cache_features", "true"])
    with pytest.raises(ValueError, match="freeze one random augmentation"):
        parse_args(["--task", "cifar10", "--method", "output_only", "--cache_features", "true"])


def test_user_runs_never_write_the_curated_results_folder(gpt2_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / f"bit_xor-fpt-{os.path.basename(gpt2_dir)}-4steps-seed42.json").write_text('{"task": "stale"}')
    results = main(["--task", "bit_xor", "--backbone", gpt2_dir, "--method", "fpt", "--preset", "cpu", "--use_cpu", "--max_steps", "4",
                    "--train_size", "64", "--eval_steps", "4", "--save_steps", "4", "--report_to", "none", "--disable_tqdm", "true"])
    assert results["steps"] == 4
    assert [p.name for p in (tmp_path / "outputs" / "results").iterdir()] == [f"bit_xor-fpt-{os.path.basename(gpt2_dir)}-4steps-seed42.json"]
    assert [p.name for p in (tmp_path / "results").iterdir()] == [f"bit_xor-fpt-{os.path.basename(gpt2_dir)}-4steps-seed42.json"]
    assert (tmp_path / "results" / f"bit_xor-fpt-{os.path.basename(gpt2_dir)}-4steps-seed42.json").read_text() == '{"task": "stale"}'


def _user_parquet(folder, inputs, labels, splits=("train", "test")):
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    for split in splits:
        datasets.Dataset.from_dict({"x": inputs, "y": labels}).to_parquet(folder / f"{split}.parquet")
    return str(folder)


@pytest.mark.parametrize("kind", ["continuous", "token_ids"])
def test_train_on_your_own_parquet_dataset(gpt2_dir, tmp_path, kind):
    import numpy as np

    rng = np.random.default_rng(0)
    if kind == "continuous":
        inputs = rng.normal(size=(80, 6, 3)).astype("float32").tolist()
        labels = [int(np.mean(x) > 0) for x in inputs]
    else:
        inputs = [rng.integers(1, 9, size=rng.integers(3, 12)).tolist() for _ in range(80)]
        labels = [int(len(x) > 7) for x in inputs]
    folder = _user_parquet(tmp_path / "my_data", inputs, labels)
    results = main(["--dataset", folder, "--input_column", "x", "--label_column", "y", "--backbone", gpt2_dir, "--preset", "cpu",
                    "--use_cpu", "--max_steps", "20", "--eval_steps", "10", "--save_steps", "10", "--output_dir", str(tmp_path / "out"),
                    "--results_dir", str(tmp_path / "results"), "--report_to", "none", "--disable_tqdm", "true"])
    assert results["task"] == "my_data" and results["steps"] == 20 and results["num_labels"] == 2 and 0 <= results["accuracy"] <= 1
    model = FPTModel.from_pretrained(tmp_path / "out")
    assert (model.config.input_dim, model.config.vocab_size) == ((3, None) if kind == "continuous" else (None, 9))
    from fpt_hf.cli import main as cli

    cli(["evaluate", str(tmp_path / "out"), "--dataset", folder, "--input_column", "x", "--label_column", "y"])  # same data, same number
    from fpt_hf.evaluation import evaluate_checkpoint

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = evaluate_checkpoint(str(tmp_path / "out"), dataset=folder, input_column="x", label_column="y")
    assert not [w for w in caught if "pin_memory" in str(w.message)]  # no pinned memory asked of a machine without an accelerator
    assert again["task"] == "my_data" and again["split"] == "test" and again["accuracy"] == results["accuracy"]


def test_your_own_dataset_refuses_bad_columns_clearly(tmp_path):
    good = _user_parquet(tmp_path / "good", [[[0.0, 1.0]], [[1.0, 0.0]]], [0, 1])
    cases = [
        (["--dataset", good, "--input_column", "pixels"], r"split 'train' has no column 'pixels' \(columns: \['x', 'y'\]\); name yours with --input_column"),
        (["--dataset", good, "--input_column", "x"], r"has no column 'labels'"),
        (["--dataset", _user_parquet(tmp_path / "ragged", [[[0.0, 1.0]], [[1.0, 0.0, 2.0]]], [0, 1]), "--input_column", "x", "--label_column", "y"],
         r"row 1: every row must have the same kind and feature size; seen \[2, 3\] features per token"),
        (["--dataset", _user_parquet(tmp_path / "nan", [[[0.0, 1.0]], [[1.0, 0.0], [2.0, float("nan")]]], [0, 1]), "--input_column", "x",
          "--label_column", "y"], r"split 'train' row 1: inputs must be finite, got nan at token 1, feature 1"),
        (["--dataset", _user_parquet(tmp_path / "inf", [[[float("-inf"), 1.0]], [[1.0, 0.0]]], [0, 1]), "--input_column", "x",
          "--label_column", "y"], r"split 'train' row 0: inputs must be finite, got -inf at token 0, feature 0"),
        (["--dataset", _user_parquet(tmp_path / "floats", [[[0.0]], [[1.0]]], [0.5, 1.0]), "--input_column", "x", "--label_column", "y"],
         r"labels \('y'\) must be integer class ids, got Value\('float64'"),
        (["--dataset", _user_parquet(tmp_path / "notest", [[[0.0]], [[1.0]]], [0, 1], splits=("train",)), "--input_column", "x", "--label_column", "y"],
         r"needs 'train' and 'test' splits \(optionally 'validation'\); it has \['train'\]"),
        (["--dataset", good, "--task", "bit_xor"], r"Give --task .* or --dataset .*, exactly one"),
        ([], r"Give --task .* or --dataset .*, exactly one"),
    ]
    for argv, message in cases:
        with pytest.raises(ValueError, match=message):
            parse_args([*argv, "--use_cpu"])


def test_a_time_limit_ends_training_early_and_still_evaluates_and_writes_results(gpt2_dir, tmp_path):
    """With --time_limit_minutes spent before the first step ends (data preparation counts), training stops after one
    step of the 300 asked for; the run still evaluates on the held-out split and writes a results JSON that says so."""
    results = main(_args(tmp_path, gpt2_dir, "--max_steps", "300", "--train_size", "200", "--time_limit_minutes", "0.0001"))
    assert results["steps"] == 1 and results["stopped_by_time_limit"] is True
    assert results["training_args"]["max_steps"] == 300 and 0.0 <= results["accuracy"] <= 1.0
    assert results["metrics"]["test_samples_per_second"] > 0  # the held-out split was evaluated
    (path,) = (tmp_path / "results").glob("*.json")
    assert path.name.endswith("-1steps-seed42.json") and json.loads(path.read_text())["stopped_by_time_limit"] is True
    untimed = main(_args(tmp_path / "b", gpt2_dir, "--max_steps", "3", "--train_size", "200", "--time_limit_minutes", "60"))
    assert untimed["steps"] == 3 and untimed["stopped_by_time_limit"] is False
    for bad in ("0", "-1", "nan"):
        with pytest.raises(ValueError, match="positive number of minutes"):
            parse_args(["--task", "bit_xor", "--time_limit_minutes", bad, "--use_cpu"])


def test_wall_clock_reads_what_a_checkpoint_recorded(tmp_path):
    """A checkpoint's recorded seconds start the clock; a checkpoint from before the clock existed, or a folder that is not
    a readable checkpoint, starts it at 0 (the resume itself refuses the latter with its own error)."""
    from fpt_hf.callbacks import WallClock

    assert WallClock.from_checkpoint(None).elapsed_before_s == 0.0
    assert WallClock.from_checkpoint(str(tmp_path)).elapsed_before_s == 0.0  # no trainer_state.json
    (tmp_path / "trainer_state.json").write_text("{not json")
    assert WallClock.from_checkpoint(str(tmp_path)).elapsed_before_s == 0.0
    (tmp_path / "trainer_state.json").write_text(json.dumps({"global_step": 20, "stateful_callbacks": {}}))
    assert WallClock.from_checkpoint(str(tmp_path)).elapsed_before_s == 0.0
    recorded = WallClock(12.5, started=time.time() - 2.0).state()
    (tmp_path / "trainer_state.json").write_text(json.dumps({"stateful_callbacks": {"WallClock": recorded}}))
    clock = WallClock.from_checkpoint(str(tmp_path), started=time.time() - 3.0)
    assert recorded["attributes"]["elapsed_before_s"] == pytest.approx(14.5, abs=0.2)
    assert clock.elapsed() == pytest.approx(17.5, abs=0.2)


def test_held_out_rows_are_evaluated_longest_first_with_the_same_predictions(gpt2_dir, tmp_path):
    """Sorting held-out rows by length cuts the padding an evaluation computes and changes no prediction: every row's
    prediction equals the one computed on that row alone (no padding at all), and the accuracy is the same."""
    from datasets import Dataset, DatasetDict
    from transformers import Trainer, TrainingArguments

    from fpt_hf.collator import FPTDataCollator
    from fpt_hf.training import longest_first, make_compute_metrics, preprocess_logits_for_metrics

    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 60, (64,), generator=generator).tolist()
    rows = {"inputs": [torch.randint(1, 16, (n,), generator=generator).tolist() for n in lengths],
            "labels": torch.randint(0, 3, (64,), generator=generator).tolist(), "length": lengths, "row": list(range(64))}
    data = DatasetDict({"train": Dataset.from_dict(rows), "validation": Dataset.from_dict(rows)})
    ordered = longest_first(data)
    assert ordered["train"]["row"] == rows["row"]  # the Trainer's sampler orders training rows
    assert ordered["validation"]["length"] == sorted(lengths, reverse=True)
    assert sorted(ordered["validation"]["row"]) == rows["row"]  # nothing lost, nothing repeated

    def padded_tokens(split, batch=8):
        sizes = split["length"]
        return sum(len(sizes[i:i + batch]) * max(sizes[i:i + batch]) for i in range(0, len(sizes), batch))
    assert padded_tokens(ordered["validation"]) < 0.75 * padded_tokens(data["validation"])

    model = FPTModel.from_pretrained(gpt2_dir, vocab_size=16, num_labels=3).eval()
    alone = {}
    with torch.no_grad():
        for row, inputs in zip(rows["row"], rows["inputs"]):
            alone[row] = int(model(inputs=torch.tensor([inputs])).logits.argmax(-1))
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=8, report_to="none",
                                                          use_cpu=True),
                      data_collator=FPTDataCollator(), compute_metrics=make_compute_metrics(),
                      preprocess_logits_for_metrics=preprocess_logits_for_metrics)
    for split in (data["validation"], ordered["validation"]):
        output = trainer.predict(split.remove_columns(["length", "row"]))
        assert dict(zip(split["row"], output.predictions.tolist())) == alone
    expected = sum(alone[r] == label for r, label in zip(rows["row"], rows["labels"])) / 64
    assert trainer.evaluate(ordered["validation"].remove_columns(["length", "row"]))["eval_accuracy"] == pytest.approx(expected)


def test_accuracy_metric_reports_the_share_of_the_most_predicted_class():
    from fpt_hf.training import make_compute_metrics

    class Pred:  # what the Trainer passes: predictions (argmax ids) and label_ids
        def __init__(self, predictions, label_ids):
            self.predictions, self.label_ids = np.array(predictions), np.array(label_ids)

    compute = make_compute_metrics()
    constant = compute(Pred([3, 3, 3, 3], [3, 0, 1, 3]))
    assert constant == {"accuracy": 0.5, "top_prediction_share": 1.0}  # a constant predictor scores its class's share
    assert compute(Pred([0, 1, 1, 2], [0, 1, 2, 2])) == {"accuracy": 0.75, "top_prediction_share": 0.5}
    # multi-output rows (bit tasks): every kept output counts, ignored (-100) positions do not
    assert compute(Pred([[1, 0, 1], [1, 1, 0]], [[1, -100, 1], [0, 1, -100]])) == {"accuracy": 0.75, "top_prediction_share": 1.0}
    with pytest.raises(ValueError, match="all 4 references are -100"):
        compute(Pred([1, 0, 1, 1], [-100, -100, -100, -100]))


def test_your_own_class_label_names_reach_the_model(tmp_path):
    """A ClassLabel's names become the model's id2label, and its class count the head's, even where no row holds the
    last class; data without a ClassLabel keeps numbered classes."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    from fpt_hf import LSTMConfig
    from fpt_hf.tasks.user_data import DatasetTask

    features = Features({"inputs": Sequence(Value("int64")), "labels": ClassLabel(names=["neg", "pos", "unsure"])})
    rows = {"inputs": [[1, 2], [3], [2, 2, 1]], "labels": [0, 1, 0]}
    DatasetDict({s: Dataset.from_dict(rows, features=features) for s in ("train", "test")}).save_to_disk(tmp_path / "named")
    task = DatasetTask(str(tmp_path / "named"))
    assert task.num_labels == 3 and task.model_kwargs() == {"vocab_size": 4, "num_labels": 3, "id2label": {0: "neg", 1: "pos", 2: "unsure"}}
    assert LSTMConfig(hidden_size=8, **task.model_kwargs()).label2id["unsure"] == 2
    plain = _user_parquet(tmp_path / "plain", [[1, 2], [3]], [0, 1])
    assert "id2label" not in DatasetTask(plain, input_column="x", label_column="y").model_kwargs()


@pytest.mark.skipif(not (SHARED_DATA / "cifar10").exists(), reason=f"real CIFAR-10 not found at {SHARED_DATA / 'cifar10'}")
def test_resumed_cifar_run_augments_as_the_uninterrupted_one(gpt2_dir, tmp_path, monkeypatch):
    """CIFAR-10 augments on the fly; the resumed Trainer skips trained batches without transforming them, so the
    augmentation stream is replayed (`RestartAugmentation`): 3 steps + 3 resumed steps = 6 straight steps, weight for weight.
    Without the replay (the stream restarting from its seed) the weights differ."""
    import shutil

    from fpt_hf.callbacks import RestartAugmentation
    from fpt_hf.training import build_trainer

    def trainer(out):
        argv = _args(out, gpt2_dir, "--data_dir", str(SHARED_DATA / "cifar10"), "--max_steps", "6", "--save_steps", "3",
                     "--per_device_train_batch_size", "4", "--eval_strategy", "no", "--load_best_model_at_end", "false",
                     "--learning_rate", "1e-2", task="cifar10", method="fpt")
        fpt_args, training_args = parse_args(argv)
        return build_trainer(fpt_args, training_args)[0]

    def resumed_weights(name):
        run = trainer(tmp_path / name)
        shutil.copytree(tmp_path / "straight" / "out" / "checkpoint-3", tmp_path / name / "out" / "checkpoint-3")
        run.train(resume_from_checkpoint=str(tmp_path / name / "out" / "checkpoint-3"))
        return {k: v.detach().clone() for k, v in run.model.named_parameters() if v.requires_grad}

    straight = trainer(tmp_path / "straight")
    assert any(isinstance(c, RestartAugmentation) for c in straight.callback_handler.callbacks)
    straight.train()
    expected = {k: v.detach().clone() for k, v in straight.model.named_parameters() if v.requires_grad}
    resumed = resumed_weights("resumed")
    assert expected.keys() == resumed.keys() and all(torch.equal(expected[k], resumed[k]) for k in expected)
    monkeypatch.setattr(RestartAugmentation, "trained_batch_sizes", lambda self, *a: [])  # restart without the replay
    unreplayed = resumed_weights("unreplayed")
    assert not all(torch.equal(expected[k], unreplayed[k]) for k in expected)


def test_most_common_class_share_reads_stored_labels_without_the_transform():
    """Image tasks store `label` and build `labels` on access; the floor is read from the stored column (it was None)."""
    from datasets import Dataset

    from fpt_hf.training import most_common_class_share

    split = Dataset.from_dict({"pixels": [b"x"] * 5, "label": [3, 3, 3, 1, 0]})

    def transform(batch):
        raise AssertionError("the transform must not run to count labels")

    split.set_transform(transform)
    assert most_common_class_share(split) == 0.6
    assert most_common_class_share(Dataset.from_dict({"labels": [[1, 0], [1, -100]]})) == pytest.approx(2 / 3)
    assert most_common_class_share(Dataset.from_dict({"inputs": [1, 2]})) is None


def test_results_name_the_cpu_features_that_set_speed_and_bf16_numerics(tmp_path):
    from fpt_hf.training import cpu_model_and_flags

    cpu = "processor\t: 0\nmodel name\t: Xeon Test\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nmodel name\t: Xeon Test\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
    (tmp_path / "cpuinfo").write_text(cpu)
    assert cpu_model_and_flags(str(tmp_path / "cpuinfo")) == ("Xeon Test", ["avx512_bf16", "avx512f", "avx2"])  # no AMX here
    assert cpu_model_and_flags(str(tmp_path / "absent"))[1] is None  # unreadable: unknown, not "none of them"
    if os.path.exists("/proc/cpuinfo"):  # this machine, parsed independently
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":")[1].split()
        assert cpu_model_and_flags()[1] == [f for f in ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2") if f in flags]

