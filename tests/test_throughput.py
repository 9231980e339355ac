"""Long-sequence throughput: length-grouped batching (seeded, reproducible, little padding) and the task benchmark."""

import pytest

from fpt_hf.benchmark_tasks import format_report, summarize, worker
from fpt_hf.training import build_trainer, parse_args


@pytest.fixture(scope="module")
def long_llama(tmp_path_factory):
    """A tiny Llama with room for ListOps' 2000 tokens (the shared tiny backbones have 64 positions)."""
    import torch
    from transformers import AutoModel, LlamaConfig

    path = tmp_path_factory.mktemp("long_llama")
    torch.manual_seed(0)
    AutoModel.from_config(LlamaConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                                      intermediate_size=32, max_position_embeddings=2048, vocab_size=32)).save_pretrained(path)
    return str(path)


def _listops_trainer(backbone, tmp_path, seed, *extra):
    args, training_args = parse_args([
        "--task", "listops", "--backbone", str(backbone), "--preset", "cpu", "--use_cpu", "--train_size", "400", "--seed", str(seed),
        "--per_device_train_batch_size", "8", "--output_dir", str(tmp_path / f"out{seed}"), "--report_to", "none", *extra,
    ])
    trainer, _, _ = build_trainer(args, training_args)
    return trainer


def _epoch_batches(trainer):
    from transformers import set_seed

    set_seed(trainer.args.seed)  # what Trainer.train does before it draws the order
    return [batch for batch in trainer.get_train_dataloader()]


def test_variable_length_tasks_batch_by_length_reproducibly(long_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_HF_CACHE", str(tmp_path / "cache"))
    grouped = _listops_trainer(long_llama, tmp_path, 0)
    assert grouped.args.train_sampling_strategy == "group_by_length" and grouped.args.per_device_eval_batch_size == 8
    first, again = _epoch_batches(grouped), _epoch_batches(_listops_trainer(long_llama, tmp_path, 0))
    other = _epoch_batches(_listops_trainer(long_llama, tmp_path, 1))
    assert all((a["inputs"] == b["inputs"]).all() for a, b in zip(first, again))  # the same seed, the same order
    assert any(a["inputs"].shape != b["inputs"].shape or (a["inputs"] != b["inputs"]).any() for a, b in zip(first, other))
    rows = sorted(tuple(r.tolist()) for b in first for r, m in zip(b["inputs"], b["attention_mask"]) for r in [r[m.bool()]])
    assert len(rows) == 400  # every training row exactly once per epoch

    def efficiency(batches):
        return sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["inputs"].numel() for b in batches)

    plain = _epoch_batches(_listops_trainer(long_llama, tmp_path, 0, "--train_sampling_strategy", "random"))
    assert efficiency(first) > 0.9 > efficiency(plain)  # grouped batches carry little padding


def test_task_benchmark_worker_counts_what_the_trainer_fed(gpt2_dir):
    spec = {"task": "bit_xor", "backbone": str(gpt2_dir), "layers": None, "batch": 4, "data_root": None, "steps": 3, "warmup": 1,
            "threads": 1, "seed": 0, "flags": ["--train_size", "64"]}
    result = worker(spec)
    assert result["batch"] == 4 and result["padding_efficiency"] == 1.0 and result["train_rows"] == 64
    other = worker({**spec, "flags": [*spec["flags"], "--selective_checkpointing", "false"]})
    assert other["warm_rows"] == result["warm_rows"] and result["train_tokens"] is None  # fixed-length rows: no length column
    assert result["real_tokens_per_s"] == pytest.approx(10 * result["samples_per_s"])  # bit XOR rows are 10 tokens
    assert result["step_s"] == pytest.approx(4 / result["samples_per_s"])
    assert result["flops_per_token"] > 0 and 0 < result["peak_share"] and result["matmul_dtype"] in ("float32", "bfloat16")


def test_task_benchmark_worker_times_the_lstm_baseline(gpt2_dir):
    """`--method lstm` has no backbone and computes in fp32: the worker times it all the same (the grid plans its runs)."""
    spec = {"task": "bit_xor", "backbone": str(gpt2_dir), "layers": None, "batch": 4, "data_root": None, "steps": 2, "warmup": 1,
            "threads": 1, "seed": 0, "flags": ["--train_size", "64", "--method", "lstm"]}
    result = worker(spec)
    assert result["batch"] == 4 and result["matmul_dtype"] == "float32" and result["step_s"] > 0
    hidden, layers = 768, 3  # LSTMConfig's defaults; the input layer maps each token to `hidden` first
    lstm_flops = 3 * layers * 2 * 4 * hidden * (hidden + hidden)  # forward + backward (2x), per token
    assert result["flops_per_token"] >= lstm_flops and result["peak_share"] > 0  # the fused LSTM kernels are counted
    row = summarize("bit_xor", {"previous": [result], "current": [result]})
    assert row["current_peak_share"][0] > 0 and row["ceiling_ratio"] is not None and row["ratio"][0] == 1.0
    assert "| bit_xor | current |" in format_report([row], {**spec, "repeats": 1}) and "failed" not in format_report([row], {**spec, "repeats": 1})
    assert result["step_s"] == pytest.approx(4 / result["samples_per_s"])


def test_task_benchmark_report_medians_ratios_and_failures():
    def run(samples, tokens_per_sample=100.0, efficiency=1.0, train_tokens=None, peak_share=0.5):
        return {"samples_per_s": samples, "real_tokens_per_s": samples * tokens_per_sample, "padding_efficiency": efficiency,
                "train_rows": 3600, "train_tokens": train_tokens, "peak_share": peak_share}

    # variable-length rows: the ratio is of real tokens/s (grouped batches may draw other lengths than random ones)
    listops = {"previous": [run(1.0, 100, 0.6, 360_000), run(2.0, 100, 0.6, 360_000), run(1.5, 100, 0.6, 360_000)],
               "current": [run(1.0, 300, 0.98, 360_000), run(2.0, 200, 0.98, 360_000), run(2.0, 375, 0.98, 360_000)]}
    lra = {"previous": [run(1.0)], "current": [run(2.0, peak_share=0.25)]}
    homology = {"previous": [run(1.0)], "current": [{"error": "remote_homology with current defaults failed: ['boom']"}]}
    rows = [summarize("listops", listops), summarize("cifar10_lra", lra), summarize("remote_homology", homology)]
    assert rows[0]["ratio_metric"] == "real_tokens_per_s" and rows[1]["ratio_metric"] == "samples_per_s"
    assert rows[0]["ratio"] == (3.0, 2.0, 5.0)  # median, min, max of the per-pair token-rate ratios 3.0, 2.0, 5.0
    assert rows[0]["previous_epoch_h"] == pytest.approx(360_000 / 150.0 / 3600)  # the epoch's real tokens / median tokens/s
    assert rows[1]["ratio"] == (2.0, 2.0, 2.0) and rows[1]["current_epoch_h"] == pytest.approx(3600 / 2.0 / 3600)
    report = format_report(rows, {"backbone": "b", "layers": 6, "threads": 1, "steps": 4, "warmup": 1, "repeats": 3})
    assert report.splitlines()[-1] == "task throughput vs previous defaults: listops 3.00x, cifar10_lra 2.00x, remote_homology failed"
    assert "listops: current / previous real tokens/s: 3.00x (2.00-5.00x over pairs)" in report
    assert "error: remote_homology with current defaults failed: ['boom']" in report
    # at 25% of the matmul peak, the current step's FLOPs at 100% would run 4x faster: 8x the previous rate
    assert rows[1]["ceiling_ratio"] == (8.0, 8.0, 8.0) and rows[2]["ceiling_ratio"] is None
    assert "cifar10_lra: ceiling (the current step's FLOPs all at the matmul peak) / previous: 8.00x" in report
    assert "| cifar10_lra | current | 2.00 (2.00-2.00) | 200 (200-200) | 1.00 (1.00-1.00) | 25 (25-25) | 0.5 |" in report


def test_task_benchmark_bad_input(capsys):
    from fpt_hf.benchmark_tasks import main

    for argv, message in ((["--task", "listops", "--steps", "0"], "--steps must be at least 1"), (["--layers", "2"], "--task needs"),
                          (["--task", "listops", "--warmup", "0"], "--warmup must be at least 1")):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown task 'imagenet'"):
        main(["--task", "imagenet"])


@pytest.mark.parametrize("task, method, batch", [("cifar10_lra", "lstm", 32), ("cifar10_lra", "fpt", 8), ("listops", "lstm", 8),
                                                 ("mnist", "lstm", 64)])
def test_cpu_preset_evaluates_the_lstm_on_long_fixed_length_rows_in_larger_batches(task, method, batch, tmp_path):
    """The cpu preset's evaluation batch: 8 on long inputs, 32 for the LSTM where rows are long and of one length."""
    _, training_args = parse_args(["--task", task, "--method", method, "--preset", "cpu", "--output_dir", str(tmp_path)])
    assert training_args.per_device_eval_batch_size == batch
    _, overridden = parse_args(["--task", task, "--method", method, "--preset", "cpu", "--output_dir", str(tmp_path),
                                "--per_device_eval_batch_size", "5"])
    assert overridden.per_device_eval_batch_size == 5


def test_lstm_predicts_the_same_in_batches_of_8_and_32():
    """The larger batch changes no logit beyond float rounding (LSTM rows are independent; fixed-length rows pad nothing)."""
    import torch

    from fpt_hf.baselines import LSTMBaseline, LSTMConfig

    torch.manual_seed(0)
    model = LSTMBaseline(LSTMConfig(input_dim=1, num_labels=10, hidden_size=32, num_layers=2, max_length=64)).eval()
    inputs, mask = torch.rand(32, 64, 1), torch.ones(32, 64, dtype=torch.long)
    with torch.no_grad():
        whole = model(inputs, mask).logits
        in_eights = torch.cat([model(inputs[i:i + 8], mask[i:i + 8]).logits for i in range(0, 32, 8)])
    torch.testing.assert_close(whole, in_eights, rtol=1e-5, atol=1e-6)
    assert (whole.argmax(-1) == in_eights.argmax(-1)).all()
