"""The benchmark's measurements on a tiny backbone (the numbers themselves are in the README)."""

import re

import pytest
import torch

from fpt_hf.benchmark import FAST, REFERENCE, main, worker


def _spec(backbone, setting, mode):
    return {"backbone": backbone, "setting": setting, "mode": mode, "batch": 4, "length": 16, "steps": 1, "threads": 1}


def test_frozen_weights_cost_no_weight_gradient_flops(gpt2_dir):
    train = worker(_spec(gpt2_dir, REFERENCE, "train"))
    inference = worker(_spec(gpt2_dir, REFERENCE, "inference"))
    # forward + input-gradient matmuls only: ~2x the forward (a fully trained model needs ~3x)
    assert 1.8 < train["flops_per_step"] / inference["flops_per_step"] < 2.3
    fast = worker(_spec(gpt2_dir, dict(FAST, prune_final_block=False), "train"))
    # same math in other dtypes; FlopCounterMode counts SDPA and eager attention's bmm slightly differently
    assert 0.8 < fast["flops_per_step"] / train["flops_per_step"] <= 1.0
    pruned = worker(_spec(gpt2_dir, FAST, "train"))  # the final block (of 2) only at the read position: well under the full step
    assert pruned["flops_per_step"] < 0.75 * fast["flops_per_step"]
    assert train["samples_per_s"] > 0 and train["peak_rss_mb"] > 0


def test_bench_command_prints_the_comparison(gpt2_dir, capsys, tmp_path):
    main(["--backbones", gpt2_dir, "--steps", "1", "--repeats", "1", "--batch", "4", "--length", "16", "--threads", "1", "--reservoir", "--checkpointing",
          "--output", str(tmp_path / "bench.md")])
    out = capsys.readouterr().out
    assert "| train | samples/s |" in out and "| inference | peak RSS MB |" in out and "% of bf16" in out
    assert "fpt-hf + full checkpointing" in out
    assert "cached epoch s" in out
    assert (tmp_path / "bench.md").read_text().strip() == out.strip()


def test_selective_checkpointing_opt_out(gpt2_dir, capsys):
    held = {mode: worker(_spec(gpt2_dir, dict(FAST, checkpointing=mode), "train"))["held_mb"] for mode in (False, "selective")}
    assert held["selective"] < held[False]
    main(["--backbones", gpt2_dir, "--steps", "1", "--repeats", "1", "--batch", "4", "--length", "16", "--threads", "1", "--no-selective"])
    out = capsys.readouterr().out
    assert "'checkpointing': False" in out and "'checkpointing': 'selective'" not in out
    assert "| train | activations held for backward MB |" in out


def test_grad_agreement_compares_every_trainable_tensor(gpt2_dir, capsys, load_script):
    from fpt_hf import FPTModel
    from fpt_hf.tasks import get_task

    load_script("benchmarks/grad_agreement.py").main(["--backbone", gpt2_dir, "--task", "bit_xor", "--layers", "2", "--batch", "8"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "cosine" not in line]
    trainable = {n for n, p in FPTModel.from_pretrained(gpt2_dir, **get_task("bit_xor").model_kwargs()).named_parameters() if p.requires_grad}
    assert {row[0][2:] for row in rows} == trainable
    for _, cosine, ratio in rows:  # bf16 vs fp32 on a tiny random backbone: same direction, same size
        assert float(cosine) > 0.99 and abs(float(ratio.rstrip(" |")) - 1) < 0.1
    with pytest.raises(SystemExit):
        load_script("benchmarks/grad_agreement.py").main(["--backbone", gpt2_dir, "--task", "bit_xor", "--batch", "20000"])
    assert "--batch must be between 1 and the 10000 rows of bit_xor's training split, got 20000" in capsys.readouterr().err


def test_attention_sink_profile_matches_attention_computed_by_hand(gpt2_dir, capsys, load_script):
    import torch

    from fpt_hf import FPTModel
    from fpt_hf.collator import FPTDataCollator
    from fpt_hf.tasks import get_task

    script = load_script("benchmarks/attention_sink.py")
    task = get_task("bit_xor")
    model = FPTModel.from_pretrained(gpt2_dir, num_backbone_layers=1, sink_tokens=1, **task.model_kwargs()).eval()
    test = task.load(sizes={"train": 1, "test": 4, "validation": 1})["test"]
    batch = FPTDataCollator()([test[i] for i in range(4)])
    rows = script.sink_profile(model, batch)
    assert [row["hidden_states"] for row in rows] == [0, 1]  # the embeddings, then the one block
    # GPT-2 block 1 by hand: embeddings + wpe -> ln_1 -> q, k -> causal softmax; the 10 input tokens' share to the sink
    block, config = model.backbone.h[0], model.backbone.config
    with torch.no_grad():
        x = model.backbone_inputs(batch["inputs"])["inputs_embeds"]
        x = x + model.backbone.wpe(torch.arange(x.shape[1]))
        q, k, _ = block.attn.c_attn(block.ln_1(x)).split(config.n_embd, dim=-1)
        heads = lambda t: t.view(*t.shape[:2], config.n_head, -1).transpose(1, 2)  # noqa: E731
        scores = heads(q) @ heads(k).transpose(-1, -2) / (config.n_embd // config.n_head) ** 0.5
        causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
        weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    assert abs(rows[1]["attention_to_first"] - weights[:, :, 1:, 0].mean().item()) < 1e-5
    assert abs(rows[0]["first_norm"] - x[:, 0].norm(dim=-1).mean().item()) < 1e-4
    assert abs(rows[0]["median_norm"] - x[:, 1:].norm(dim=-1).median().item()) < 1e-4
    script.main(["--backbone", gpt2_dir, "--task", "bit_xor", "--layers", "1", "--batch", "4"])
    out = capsys.readouterr().out
    assert "position 0 is the first input token" in out and out.count("\n| ") == 1 + len(rows)


def test_bit_memory_error_report_matches_a_loop_over_patches(load_script):
    import numpy as np

    from fpt_hf.tasks.bits import generate_bit_memory

    script = load_script("benchmarks/bit_memory_errors.py")
    data = generate_bit_memory(6, seed=3)
    inputs, labels = data["inputs"], data["labels"]
    predictions = labels.copy()
    stored = inputs[:, :100].reshape(6, 5, 20, 50)
    query = inputs[:, 100:]
    queried = [next(k for k in range(5) if (stored[r, k].reshape(-1) == 2 * labels[r] - 1).all()) for r in range(6)]
    other = (queried[0] + 1) % 5  # row 0, patch 2: the masked bits read from another pattern
    patch = predictions[0].reshape(20, 50)[2]
    masked = query[0, 2] == 0
    patch[masked] = (stored[0, other, 2][masked] + 1) // 2
    predictions[3, 7] ^= 1  # row 3, patch 0: one flipped bit

    report = script.error_report(inputs, labels, predictions)
    wrong_bits = int((predictions != labels).sum())
    assert report["wrong_bits"] == wrong_bits > 1 and report["accuracy"] == 1 - wrong_bits / labels.size
    assert report["wrong_patches"] == 2 and report["patches"] == 120 and report["perfect_rows"] == 4 / 6
    assert report["retrieved_from_another_pattern"] == 1
    assert report["patch_error_rate_by_position"][0] == report["patch_error_rate_by_position"][2] == 1 / 6
    margins, unmasked = [], []
    for r in range(6):
        for p in range(20):
            agree = [int(sum(int(q) * int(s) for q, s in zip(query[r, p], stored[r, k, p]))) for k in range(5)]
            unmasked.append(sum(int(q != 0) for q in query[r, p]))
            margins.append(agree[queried[r]] - max(a for k, a in enumerate(agree) if k != queried[r]))
    assert report["margin"]["all"] == np.mean(margins) and report["unmasked_bits"]["all"] == np.mean(unmasked)
    assert report["margin"]["wrong"] == np.mean([margins[0 * 20 + 2], margins[3 * 20 + 0]])
    assert sum(row["patches"] for row in report["wrong_patch_error_rate_by_margin"]) == 120
    assert sum(row["wrong"] for row in report["wrong_patch_error_rate_by_margin"]) == 2
    first = report["first_patch_bit_error_by_queried_pattern"][queried[3]]
    assert first == np.mean([(predictions[r, :50] != labels[r, :50]).mean() for r in range(6) if queried[r] == queried[3]])
    with pytest.raises(ValueError, match=r"labels and predictions must be \(6, 1000\)"):
        script.error_report(inputs, labels, predictions[:, :500])


def test_bit_memory_errors_command_on_a_checkpoint(gpt2_dir, tmp_path, capsys, load_script):
    import numpy as np
    import torch
    from transformers import AutoConfig, GPT2LMHeadModel

    from fpt_hf import FPTModel
    from fpt_hf.tasks import get_task

    config = AutoConfig.from_pretrained(gpt2_dir, n_positions=128, n_layer=1)  # bit memory has 120 tokens
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2-128")
    task = get_task("bit_memory")
    FPTModel.from_pretrained(tmp_path / "gpt2-128", **task.model_kwargs()).save_pretrained(tmp_path / "ckpt")
    script = load_script("benchmarks/bit_memory_errors.py")
    report = script.main(["--checkpoint", str(tmp_path / "ckpt"), "--rows", "3"])
    out = capsys.readouterr().out
    assert report["patches"] == 60 and f"wrong patches {report['wrong_patches']} of 60" in out
    # an untrained head: about half the bits wrong, as the model's own logits say
    test = task.load(seed=0, sizes={"train": 1, "validation": 1})["test"]
    logits = FPTModel.from_pretrained(tmp_path / "ckpt")(inputs=torch.as_tensor(np.asarray(test["inputs"][:3])).float()).logits
    assert report["accuracy"] == (logits.argmax(-1).reshape(3, -1).numpy() == np.asarray(test["labels"][:3])).mean()
    with pytest.raises(SystemExit):
        script.main(["--checkpoint", str(tmp_path / "ckpt"), "--rows", "0"])
    assert "--rows must be between 1 and the 1000 rows of the test split, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("checkpointing", ["none", "selective", "full"])
def test_profile_step_breaks_a_step_down_by_category(gpt2_dir, capsys, load_script, checkpointing):
    script = load_script("benchmarks/profile_step.py")
    script.main(["--backbone", gpt2_dir, "--layers", "2", "--length", "32", "--batch", "2", "--attn", "sdpa", "--checkpointing", checkpointing])
    rows = {line.split(" | ")[0][2:]: float(line.split(" | ")[2].rstrip("% |")) for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "category" not in line}
    assert "matmul" in rows and "attention kernel" in rows and sum(rows.values()) == pytest.approx(100, abs=3)
    assert script.category("aten::addmm") == "matmul" and script.category("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention kernel"
    with pytest.raises(SystemExit):
        script.main(["--backbone", gpt2_dir, "--length", "0"])


def test_bench_pairs_alternate_and_ratios_are_per_pair(monkeypatch):
    """Rounds run reference, fast, reference, fast, ...; medians and min-max are taken over the pairs' own ratios."""
    from fpt_hf import benchmark

    calls = []
    speeds = iter([1.0, 3.0, 2.0, 4.0, 1.0, 5.0])  # reference / fast of three rounds: ratios 3.0, 2.0, 5.0

    def fake(spec):
        calls.append((spec["mode"], spec["setting"]["name"]))
        if spec["mode"] == "inference":
            return {"error": f"{spec['setting']['name']} (inference, b) failed: RuntimeError: boom"}
        s = next(speeds)
        return {"samples_per_s": s, "peak_rss_mb": 100 * s, "flops_per_s": 1e9 * s, "matmul_peak": {"float32": {"median": 2e9},
                "bfloat16": {"median": 1e10}}, "warmup_s": [2.0, 1.0], "step_times": [1.0]}

    monkeypatch.setattr(benchmark, "run_worker", fake)
    rows = benchmark.compare(["b"], 4, 16, 1, 1, [FAST], repeats=3)
    assert [name for mode, name in calls if mode == "train"] == [REFERENCE["name"], FAST["name"]] * 3
    stats = benchmark.summarize(rows[0]["runs"], "samples_per_s")
    assert stats[FAST["name"]]["ratio"] == (3.0, 2.0, 5.0) and stats[FAST["name"]]["value"] == (4.0, 3.0, 5.0)
    assert stats["reference"]["value"] == (1.0, 1.0, 2.0)
    table = benchmark.format_table(rows, [FAST])
    assert "| b | train | samples/s | 1.0 (1.0-2.0) | 4.0 (3.0-5.0) | 3.00x (2.00-5.00) |" in table
    assert "| b | train | first warm-up step / timed step | 2.00x |" in table
    assert "error: fpt-hf (inference, b) failed: RuntimeError: boom" in table  # which configuration failed, and why
    assert "| b | inference | samples/s | failed | failed | failed |" in table


def test_matmul_peak_reports_median_and_spread():
    from fpt_hf.probes import matmul_peak

    peak = matmul_peak(torch.float32, (64, 32, 48), repeats=3, calls=2)
    assert peak["min"] <= peak["median"] <= peak["max"] and peak["min"] > 0


def test_scaling_repeats_round_robin_with_medians(monkeypatch):
    from fpt_hf import benchmark

    order, times = [], iter([1.0, 2.0, 3.0, 4.0])

    def fake(spec):
        order.append((spec["batch"], spec["length"]))
        t = next(times)
        return {"step_s": t, "samples_per_s": spec["batch"] / t, "peak_rss_mb": 100.0}

    monkeypatch.setattr(benchmark, "run_worker", fake)
    table = benchmark.scaling("b", [64, 128], [8], 1, 1, FAST, repeats=2)
    assert order == [(8, 64), (8, 128), (8, 64), (8, 128)]  # every shape once per round
    assert "| 8 | 64 | 2.000 (1.000-3.000) | 5.3 (2.7-8.0) | 100 |" in table


@pytest.mark.parametrize("causal", [True, False])
def test_cpu_attention_flops_match_the_formula_by_hand(causal):
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from fpt_hf.probes import count_cpu_kernel_flops

    count_cpu_kernel_flops()
    count_cpu_kernel_flops()  # idempotent
    b, h, t, d = 2, 3, 64, 16
    q, k, v = (torch.randn(b, h, t, d, requires_grad=True) for _ in range(3))
    with FlopCounterMode(display=False) as forward:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    with FlopCounterMode(display=False) as backward:
        out.sum().backward()
    full = 2 * (2 * b * h * t * t * d)  # q @ k^T and p @ v
    assert forward.get_total_flops() == (full // 2 if causal else full)
    assert backward.get_total_flops() == (5 * full // 2 // 2 if causal else 5 * full // 2)  # dv, dp, dq, dk + recomputed scores


def test_cpu_lstm_flops_match_an_lstm_written_in_matmuls():
    """The formula for oneDNN's fused LSTM layer against torch's own mm counts of the same LSTM written step by step."""
    from torch.utils.flop_counter import FlopCounterMode

    from fpt_hf.probes import count_cpu_kernel_flops

    count_cpu_kernel_flops()
    b, t, i, h = 3, 7, 5, 8
    lstm = torch.nn.LSTM(i, h, batch_first=True)
    x = torch.randn(b, t, i, requires_grad=True)
    with FlopCounterMode(display=False) as fused_forward:
        out = lstm(x)[0]
    with FlopCounterMode(display=False) as fused_backward:
        out.sum().backward()

    def by_hand():
        state, cell, outputs = torch.zeros(b, h, requires_grad=True), torch.zeros(b, h), []
        for step in range(t):
            gates = x[:, step] @ lstm.weight_ih_l0.T + state @ lstm.weight_hh_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0
            in_gate, forget, candidate, out_gate = gates.chunk(4, dim=1)
            cell = forget.sigmoid() * cell + in_gate.sigmoid() * candidate.tanh()
            state = out_gate.sigmoid() * cell.tanh()
            outputs.append(state)
        return torch.stack(outputs, 1)

    with FlopCounterMode(display=False) as manual_forward:
        manual = by_hand()
    with FlopCounterMode(display=False) as manual_backward:
        manual.sum().backward()
    torch.testing.assert_close(manual, out)  # the same LSTM
    assert fused_forward.get_total_flops() == manual_forward.get_total_flops() == 2 * b * t * 4 * h * (i + h)
    assert fused_backward.get_total_flops() == manual_backward.get_total_flops()


def test_attention_kernels_script_times_every_kernel_and_dtype(capsys, load_script):
    script = load_script("benchmarks/attention_kernels.py")
    script.main(["--batch", "1", "--heads", "2", "--length", "32", "--head_dim", "8", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("causal SDPA forward + backward, 1 x 2 x 32 x 8")
    assert [line.split(":")[0] for line in lines[1:]] == ["bfloat16 flash", "bfloat16 math", "float32 flash", "float32 math"]
    assert all(float(line.split(": ")[1].removesuffix(" s")) > 0 for line in lines[1:])


def test_eval_order_benchmark_measures_each_arm_and_agrees_on_accuracy(gpt2_dir, load_script, tmp_path, capsys):
    from test_protocol import _homology_folder

    bench = load_script("benchmarks/eval_order.py")
    folder = _homology_folder(tmp_path, rows=(40, 40, 10))
    out = bench.main(["--task", "remote_homology", "--data_dir", str(folder), "--backbone", str(gpt2_dir), "--layers", "1",
                      "--rows", "24", "--rounds", "1"])
    arms = {"as stored", "longest first", "grouped sampler"}
    assert set(out["padding"]) == set(out["padding_whole_split"]) == set(out["seconds"]) == arms
    assert len(set(out["accuracy"].values())) == 1  # the order changes no prediction
    whole = out["padding_whole_split"]
    assert 1.0 <= whole["longest first"] < whole["as stored"] and whole["longest first"] <= whole["grouped sampler"]
    assert "longest first: padding" in capsys.readouterr().out


def test_checkpointing_overhead_runs_in_the_dtype_and_attention_asked_for(capsys, load_script):
    script = load_script("benchmarks/checkpointing_overhead.py")
    medians = script.main(["--steps", "1", "--layers", "2", "--compute_dtype", "bfloat16", "--attn", "eager"])
    assert set(medians) == {"none", "selective", "full"} and all(t > 0 for t in medians.values())
    assert "tiny, 2 blocks, batch 4 x 8 tokens, cpu, bfloat16, eager attention" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        script.main(["--compute_dtype", "float16"])
    assert "invalid choice: 'float16'" in capsys.readouterr().err


def test_eval_batch_benchmark_times_each_batch_size_on_the_same_rows(gpt2_dir, load_script, capsys):
    """Each batch size evaluates the same seeded rows (so they agree on accuracy), and every arm is timed each round."""
    result = load_script("benchmarks/eval_batch.py").main([
        "--task", "bit_xor", "--backbone", gpt2_dir, "--layers", "2", "--rows", "24", "--batches", "4", "24", "--rounds", "2"])
    assert set(result["seconds"]) == {4, 24} and all(s > 0 for s in result["seconds"].values())
    assert result["rows"] == 24 and result["accuracy"][4] == result["accuracy"][24]
    assert "batch    4:" in capsys.readouterr().out
    for batches in (["8", "8"], ["0", "8"]):
        with pytest.raises(SystemExit):
            load_script("benchmarks/eval_batch.py").main(["--task", "bit_xor", "--backbone", gpt2_dir, "--batches", *batches])
        assert "--batches needs distinct batch sizes of at least 1" in capsys.readouterr().err


def test_time_evaluations_interleaves_the_arms_and_takes_the_median():
    from fpt_hf.probes import time_evaluations

    calls = []

    class Arm:
        def __init__(self, name, accuracy):
            self.name, self.accuracy = name, accuracy

        def evaluate(self, rows):
            calls.append((self.name, rows))
            return {"eval_accuracy": self.accuracy}

    seconds, accuracy = time_evaluations({"a": (Arm("a", 0.5), "rows-a"), "b": (Arm("b", 0.25), "rows-b")}, rounds=3)
    assert calls == [("a", "rows-a"), ("b", "rows-b")] * 3  # A B A B A B, each arm on its own rows
    assert accuracy == {"a": 0.5, "b": 0.25} and set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())


def test_lstm_bf16_times_both_steps_and_compares_every_gradient(capsys, load_script):
    from fpt_hf.baselines import LSTMBaseline, LSTMConfig
    from fpt_hf.tasks import get_task

    script = load_script("benchmarks/lstm_bf16.py")
    script.main(["--task", "bit_xor", "--batch", "8", "--rounds", "2", "--hidden_size", "16"])
    out = capsys.readouterr().out
    assert "bit_xor, batch 8 x 10 tokens, LSTM 3 x 16" in out and "subnormals flushed" in out
    assert re.search(r"fp32 [0-9.]+ s/step, bf16 autocast [0-9.]+ s/step: [0-9.]+x", out)
    names = [n for n, _ in LSTMBaseline(LSTMConfig(hidden_size=16, **get_task("bit_xor").model_kwargs())).named_parameters()]
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines() if line.startswith("| ") and "tensor" not in line}
    assert sorted(rows) == sorted(names) and all(0.5 < cosine <= 1.0 for cosine in rows.values())  # bf16 noise is large at width 16
    with pytest.raises(SystemExit):
        script.main(["--task", "bit_xor", "--rounds", "0"])
