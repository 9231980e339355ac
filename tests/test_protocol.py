"""Protocol fidelity: the original code's input init / dropout / preprocessing are reachable, and no run selects its
checkpoint on a split it reports."""

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image
from PIL import Image as PILImage
from transformers import TrainerCallback

from fpt_hf import FPTModel
from fpt_hf.modeling_fpt import PAPER_ORTHOGONAL_GAIN
from fpt_hf.tasks import get_task
from fpt_hf.training import parse_args


# ----------------------------------------------------------------------------- input layer
def test_paper_input_init_column_norms_and_bias(tiny_backbone_dirs):
    default = FPTModel.from_pretrained(tiny_backbone_dirs["gpt2"], input_dim=8, num_labels=3)
    paper = FPTModel.from_pretrained(tiny_backbone_dirs["gpt2"], input_dim=8, num_labels=3, input_init="paper")
    # (hidden, input_dim) with input_dim < hidden: orthogonal init gives orthonormal columns times the gain
    for model, gain in ((default, 1.0), (paper, PAPER_ORTHOGONAL_GAIN)):
        w = model.input_layer.weight.detach()
        torch.testing.assert_close(w.T @ w, gain**2 * torch.eye(8), atol=1e-5, rtol=0)
    assert paper.input_layer.bias.abs().max() == 0  # GPT-2 adds wpe: the original code's zero bias is safe
    assert default.input_layer.bias.abs().max() > 0
    # a RoPE backbone adds no positions before its first RMSNorm: a zero bias would make a 0 token the zero vector
    llama = FPTModel.from_pretrained(tiny_backbone_dirs["llama"], input_dim=1, num_labels=2, input_init="paper")
    assert llama.input_layer.bias.abs().max() > 0
    out = llama(inputs=torch.zeros(2, 10, 1), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in llama.parameters() if p.grad is not None)
    with_table = FPTModel.from_pretrained(tiny_backbone_dirs["llama"], input_dim=1, num_labels=2, input_init="paper", learned_positions=16)
    assert with_table.input_layer.bias.abs().max() == 0


def test_paper_token_embedding_std(tiny_backbone_dirs):
    default = FPTModel.from_pretrained(tiny_backbone_dirs["gpt2"], vocab_size=500, num_labels=3)
    paper = FPTModel.from_pretrained(tiny_backbone_dirs["gpt2"], vocab_size=500, num_labels=3, input_init="paper")
    assert abs(default.input_layer.weight.std().item() - 0.02) < 0.002
    assert abs(paper.input_layer.weight.std().item() - 1.0) < 0.05  # nn.Embedding's own N(0, 1)


@pytest.mark.parametrize("bad", [{"input_init": "xavier"}, {"input_dropout": 1.0}, {"input_dropout": -0.1}, {"input_dropout": "0.1"}])
def test_bad_input_options(gpt2_dir, bad):
    with pytest.raises(ValueError, match="input_init must be one of|input_dropout must be a probability"):
        FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, **bad)


def test_input_dropout_active_in_train_and_off_in_eval(gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, input_dropout=0.5)
    x = torch.randn(3, 7, 4)
    projected = model.input_layer(x)
    model.train()
    embeds = model.backbone_inputs(x)["inputs_embeds"]
    dropped = embeds == 0
    assert 0.3 < dropped.float().mean() < 0.7  # about half the entries dropped ...
    torch.testing.assert_close(embeds[~dropped], 2 * projected[~dropped])  # ... and the rest scaled by 1 / (1 - p)
    model.eval()
    torch.testing.assert_close(model.backbone_inputs(x)["inputs_embeds"], projected)
    torch.testing.assert_close(model(inputs=x).logits, model(inputs=x).logits)


def test_paper_preset_is_the_original_recipe():
    args, training_args = parse_args(["--task", "mnist", "--preset", "paper", "--use_cpu"])
    assert (args.input_init, args.input_dropout, args.compute_dtype) == ("paper", 0.1, "float32")
    assert training_args.per_device_train_batch_size == 4 and training_args.learning_rate == 1e-3
    assert training_args.max_grad_norm == 1.0 and training_args.lr_scheduler_type == "constant" and training_args.weight_decay == 0
    tokens, _ = parse_args(["--task", "listops", "--preset", "paper", "--use_cpu"])
    assert tokens.input_init == "paper" and tokens.input_dropout == 0.0  # the original drops out Linear inputs only
    lra, _ = parse_args(["--task", "cifar10_lra", "--preset", "paper", "--use_cpu"])
    assert lra.augment is True
    assert parse_args(["--task", "cifar10_lra", "--preset", "cpu", "--use_cpu"])[0].augment is None
    assert parse_args(["--task", "mnist", "--preset", "paper", "--input_init", "default", "--use_cpu"])[0].input_init == "default"
    with pytest.raises(ValueError, match="data protocols"):
        parse_args(["--task", "bit_xor", "--data_protocol", "paper", "--use_cpu"])
    with pytest.raises(ValueError, match="augment applies to the image tasks"):
        from fpt_hf.training import load_task_data

        args, _ = parse_args(["--task", "bit_xor", "--augment", "true", "--use_cpu"])
        load_task_data(get_task("bit_xor"), args, 0, None)


# ----------------------------------------------------------------------------- images
def _cifar_folder(path, n_train=40, n_test=10):
    rng = np.random.default_rng(0)
    features = Features({"img": Image(), "label": ClassLabel(num_classes=10)})
    for split, n in (("train", n_train), ("test", n_test)):
        images = [PILImage.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]
        Dataset.from_dict({"img": images, "label": [i % 10 for i in range(n)]}, features=features).to_parquet(path / f"{split}.parquet")
    return path


def test_cifar10_lra_augmentation_changes_training_rows_only(tmp_path):
    folder = _cifar_folder(tmp_path)
    task = get_task("cifar10_lra")
    plain = task.load(str(folder), validation_size=10)
    augmented = task.load(str(folder), validation_size=10, augment=True)
    paper = task.load(str(folder), validation_size=10, protocol="paper")
    for split in ("validation", "test"):
        np.testing.assert_array_equal(plain[split][:]["inputs"], augmented[split][:]["inputs"])
    assert not np.allclose(plain["train"][:]["inputs"], augmented["train"][:]["inputs"])
    assert not np.allclose(plain["train"][:]["inputs"], paper["train"][:]["inputs"])  # the original code augments LRA
    # the original's preprocessing: luma 0.2989/0.587/0.114, then (x - 0.5) / 0.5
    raw = np.frombuffer(paper["test"].with_format(None)[0]["pixels"], dtype=np.uint8).reshape(32, 32, 3) / 255
    expected = ((raw @ np.array([0.2989, 0.587, 0.114])) - 0.5) / 0.5
    np.testing.assert_allclose(np.asarray(paper["test"][0]["inputs"]).reshape(32, 32), expected, atol=1e-5)


def test_paper_image_preprocessing(tmp_path):
    folder = _cifar_folder(tmp_path)
    task = get_task("cifar10")
    default, paper = task.load(str(folder), validation_size=10), task.load(str(folder), validation_size=10, protocol="paper")
    raw = np.frombuffer(paper["test"].with_format(None)[0]["pixels"], dtype=np.uint8).reshape(32, 32, 3) / 255
    for ds, std in ((default, (0.2470, 0.2435, 0.2616)), (paper, (0.2023, 0.1994, 0.2010))):
        first_patch = np.asarray(ds["test"][0]["inputs"])[0].reshape(4, 4, 3)
        np.testing.assert_allclose(first_patch, (raw[:4, :4] - np.array([0.4914, 0.4822, 0.4465])) / np.array(std), atol=1e-5)
    mnist = get_task("mnist")
    assert mnist.transform_kwargs(protocol="paper") == {"patch": 4, "mean": [0.0], "std": [1.0], "pad_to": None}  # 49 tokens in [0, 1]
    assert mnist.transform_kwargs()["pad_to"] == 32 and mnist.augmented("paper") is False and task.augmented("paper") is True


# ----------------------------------------------------------------------------- checkpoint selection
def _homology_folder(path, rows=(60, 20, 20)):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "valid", "test_fold_holdout"), rows):
        primary = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), rng.integers(5, 30))) for _ in range(n)]
        Dataset.from_dict({"id": [f"{split}{i}" for i in range(n)], "primary": primary, "fold": [f"f{i % 3}" for i in range(n)],
                           "fold_label": [i % 3 for i in range(n)], "length": [len(p) for p in primary]}).to_parquet(path / f"{split}.parquet")
    return path


class _SeenEvalRows(TrainerCallback):
    """Record the rows the Trainer evaluates on while training (checkpoint selection), not in the final reports."""

    def __init__(self):
        self.rows, self.training = set(), False

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False

    def on_evaluate(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.training:
            self.rows |= {tuple(np.asarray(row["inputs"]).ravel().tolist()) for row in eval_dataloader.dataset}


def test_homology_reports_validation_and_fold_holdout_and_selects_on_neither(gpt2_dir, tmp_path):
    from fpt_hf.training import run_training

    folder = _homology_folder(tmp_path)
    seen = _SeenEvalRows()
    args, training_args = parse_args([
        "--task", "remote_homology", "--data_dir", str(folder), "--backbone", str(gpt2_dir), "--method", "fpt", "--preset", "cpu",
        "--use_cpu", "--max_steps", "6", "--eval_steps", "3", "--save_steps", "3", "--output_dir", str(tmp_path / "out"),
        "--results_dir", str(tmp_path / "results"), "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
    ])
    results = run_training(args, training_args, callbacks=[seen])
    assert set(results["accuracy_by_split"]) == {"validation", "test"} and results["accuracy"] == results["accuracy_by_split"]["validation"]
    assert results["selection_split"] == "selection" and "test_accuracy" in results["metrics"]
    data = get_task("remote_homology").load(str(folder))
    reported = {tuple(np.asarray(r["inputs"]).ravel().tolist()) for split in ("validation", "test") for r in data[split]}
    train = {tuple(np.asarray(r["inputs"]).ravel().tolist()) for r in data["train"]}
    assert seen.rows and seen.rows <= train and not seen.rows & reported
    assert set(results["most_common_class_share"]) == {"selection", "validation", "test"}
    counts = np.bincount(data["validation"]["labels"])
    assert results["most_common_class_share"]["validation"] == pytest.approx(counts.max() / counts.sum())


def test_other_tasks_select_on_validation_and_report_test(gpt2_dir, tmp_path):
    seen = _SeenEvalRows()
    from fpt_hf.training import run_training

    args, training_args = parse_args([
        "--task", "bit_xor", "--backbone", str(gpt2_dir), "--method", "fpt", "--preset", "cpu", "--use_cpu", "--train_size", "64",
        "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--output_dir", str(tmp_path / "out"),
        "--results_dir", str(tmp_path / "results"), "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
    ])
    results = run_training(args, training_args, callbacks=[seen])
    assert results["selection_split"] == "validation" and set(results["accuracy_by_split"]) == {"test"}
    assert [p["step"] for p in results["curve"]] == [2, 4]  # the learning curve: one point per evaluation on the selection split
    assert all(0 <= p["accuracy"] <= 1 and 0 < p["top_prediction_share"] <= 1 for p in results["curve"])
    data = get_task("bit_xor").load(sizes={"train": 64})
    for split in ("validation", "test"):  # the one-class floor, counted independently over every output bit
        bits = np.concatenate([np.asarray(r["labels"]).ravel() for r in data[split]])
        assert results["most_common_class_share"][split] == pytest.approx(max(bits.mean(), 1 - bits.mean()))
    assert seen.rows == {tuple(np.asarray(r["inputs"]).ravel().tolist()) for r in data["validation"]}
