"""The benchmark's measurements on a tiny backbone (the numbers themselves are in the README)."""

from fpt_hf.benchmark import FAST, REFERENCE, main, worker


def _spec(backbone, setting, mode):
    return {"backbone": backbone, "setting": setting, "mode": mode, "batch": 4, "length": 16, "steps": 1, "threads": 1}


def test_frozen_weights_cost_no_weight_gradient_flops(gpt2_dir):
    train = worker(_spec(gpt2_dir, REFERENCE, "train"))
    inference = worker(_spec(gpt2_dir, REFERENCE, "inference"))
    # forward + input-gradient matmuls only: ~2x the forward (a fully trained model needs ~3x)
    assert 1.8 < train["flops_per_step"] / inference["flops_per_step"] < 2.3
    fast = worker(_spec(gpt2_dir, FAST, "train"))
    # same math in other dtypes; FlopCounterMode counts SDPA and eager attention's bmm slightly differently
    assert 0.8 < fast["flops_per_step"] / train["flops_per_step"] <= 1.0
    assert train["samples_per_s"] > 0 and train["peak_rss_mb"] > 0


def test_bench_command_prints_the_comparison(gpt2_dir, capsys, tmp_path):
    main(["--backbones", gpt2_dir, "--steps", "1", "--batch", "4", "--length", "16", "--threads", "1", "--reservoir", "--checkpointing",
          "--output", str(tmp_path / "bench.md")])
    out = capsys.readouterr().out
    assert "| train | samples/s |" in out and "| inference | peak RSS MB |" in out and "% of bf16" in out
    assert "fpt-hf + full checkpointing" in out
    assert "cached epoch s" in out
    assert (tmp_path / "bench.md").read_text().strip() == out.strip()


def test_selective_checkpointing_opt_out(gpt2_dir, capsys):
    held = {mode: worker(_spec(gpt2_dir, dict(FAST, checkpointing=mode), "train"))["held_mb"] for mode in (False, "selective")}
    assert held["selective"] < held[False]
    main(["--backbones", gpt2_dir, "--steps", "1", "--batch", "4", "--length", "16", "--threads", "1", "--no-selective"])
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
