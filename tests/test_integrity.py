"""No silent wrong results, no lost work: every bad input is refused with a message that names it (issue classes 1-8)."""

import json

import numpy as np
import pytest
import torch

from fpt_hf import FPTModel, LSTMBaseline, LSTMConfig


@pytest.fixture(scope="module")
def continuous(gpt2_dir):
    return FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3).eval()


@pytest.fixture(scope="module")
def tokens_mode(gpt2_dir):
    return FPTModel.from_pretrained(gpt2_dir, input_dim=1, num_labels=2, output_mode="tokens", num_output_tokens=3).eval()


@pytest.fixture(scope="module")
def token_ids(gpt2_dir):
    return FPTModel.from_pretrained(gpt2_dir, vocab_size=20, num_labels=3).eval()


# ----------------------------------------------------------------------------- 1. inputs that would change the answer
@pytest.mark.parametrize("mask, message", [
    (torch.tensor([[1, 1, 2, 0]]), r"only 0 \(padding\) and 1 \(real token\), got values \[0, 1, 2\]"),
    (torch.tensor([[1.0, 0.5, 0.0, 0.0]]), r"only 0 \(padding\) and 1 \(real token\), got values \[0.0, 0.5, 1.0\]"),
    (torch.tensor([[-1, 1, 1, 1]]), r"got values \[-1, 1\]"),
])
def test_masks_other_than_zero_one_are_refused(continuous, mask, message):
    with pytest.raises(ValueError, match=message):
        continuous(inputs=torch.randn(1, 4, 4), attention_mask=mask)


def test_float_and_bool_masks_of_zeros_and_ones_give_the_int_mask_answer(continuous):
    x, mask = torch.randn(2, 5, 4), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    reference = continuous(inputs=x, attention_mask=mask).logits
    for other in (mask.float(), mask.bool(), mask.int()):
        torch.testing.assert_close(continuous(inputs=x, attention_mask=other).logits, reference)


@pytest.mark.parametrize("mask, message", [
    (torch.tensor([[0, 0, 1, 1, 1, 1]]), "needs right padding"),  # left padding: the last k positions would be padding
    (torch.tensor([[1, 1, 0, 0, 0, 0]]), "a row has only 2 real tokens"),  # the index would wrap around into padding
])
def test_tokens_mode_refuses_left_padding_and_short_rows(tokens_mode, mask, message):
    with pytest.raises(ValueError, match=message):
        tokens_mode(inputs=torch.randn(1, 6, 1), attention_mask=mask)


def test_all_ignored_labels_are_refused(continuous):
    with pytest.raises(ValueError, match=r"Every label is -100 \(ignored\): the loss would be NaN"):
        continuous(inputs=torch.randn(2, 3, 4), labels=torch.tensor([-100, -100]))
    assert torch.isfinite(continuous(inputs=torch.randn(2, 3, 4), labels=torch.tensor([-100, 1])).loss)


def test_overflowing_finite_inputs_are_reported_not_returned_as_nan(gpt2_dir):
    model = LSTMBaseline(LSTMConfig(input_dim=4, num_labels=3, hidden_size=8, num_layers=1)).eval()
    with torch.no_grad():
        model.input_layer.weight.fill_(1e38)  # stands in for weights or inputs that overflow
    with pytest.raises(ValueError, match=r"NaN/inf logits from finite inputs \(largest \|input\| 1e\+30\)"):
        model(inputs=torch.full((1, 2, 4), 1e30))


def test_nan_cached_features_are_refused(gpt2_dir):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3, policy="output_only")
    features = torch.randn(2, model.backbone.config.hidden_size)
    features[0, 0] = float("nan")
    with pytest.raises(ValueError, match="Cached features contain NaN or inf"):
        model(features=features)
    with pytest.raises(ValueError, match="Every label is -100"):
        model(features=torch.randn(2, model.backbone.config.hidden_size), labels=torch.tensor([-100, -100]))


# ----------------------------------------------------------------------------- 8. dtypes and empty batches: clear errors
@pytest.mark.parametrize("make, message", [
    (lambda: torch.randn(2, 3, 4, dtype=torch.float64), r"must be float32 \(the input layer's dtype\), got torch.float64"),
    (lambda: torch.randn(2, 3, 4).half(), r"must be float32 .* got torch.float16"),
    (lambda: torch.zeros(0, 3, 4), r"inputs is empty \(shape \(0, 3, 4\)\)"),
    (lambda: torch.zeros(2, 0, 4), r"inputs is empty \(shape \(2, 0, 4\)\)"),
    (lambda: [[1.0]], "inputs must be a torch.Tensor, got list"),
])
def test_unusable_continuous_inputs(continuous, make, message):
    with pytest.raises(ValueError, match=message):
        continuous(inputs=make())


def test_integer_widths_are_cast_losslessly_and_bools_refused(continuous, token_ids):
    x = torch.randn(2, 3, 4)
    reference = continuous(inputs=x, labels=torch.tensor([0, 2])).loss
    for dtype in (torch.int32, torch.int16, torch.uint8):
        assert continuous(inputs=x, labels=torch.tensor([0, 2], dtype=dtype)).loss == reference
    with pytest.raises(ValueError, match="labels must be an integer tensor of class ids, got torch.bool"):
        continuous(inputs=x, labels=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="labels must be an integer tensor of class ids, got torch.float32"):
        continuous(inputs=x, labels=torch.tensor([0.0, 2.0]))
    ids = torch.tensor([[1, 5, 19]])
    reference = token_ids(inputs=ids).logits
    for dtype in (torch.int32, torch.uint8):
        torch.testing.assert_close(token_ids(inputs=ids.to(dtype)).logits, reference)
    with pytest.raises(ValueError, match="takes integer token ids .* got a torch.bool tensor"):
        token_ids(inputs=ids.bool())


# ----------------------------------------------------------------------------- 2. configurations that cannot be right
@pytest.mark.parametrize("kwargs, message", [
    ({"num_labels": 0}, r"num_labels must be an int >= 2 .* got 0"),
    ({"num_labels": -3}, r"num_labels must be an int >= 2 .* got -3"),
    ({"num_labels": 1}, r"cross-entropy over one class is always 0\), got 1"),
    ({"num_labels": 2, "output_mode": "tokens", "num_output_tokens": 0}, r"num_output_tokens must be a positive int, got 0"),
    ({"num_labels": 2, "output_mode": "tokens", "predictions_per_token": 0}, r"predictions_per_token must be a positive int, got 0"),
    ({"num_label": 3}, r"Unknown FPTConfig argument\(s\) 'num_label' \(did you mean 'num_labels'\?\)"),
    ({"num_labels": 3, "polcy": "full"}, r"'polcy' \(did you mean 'policy'\?\)"),
])
def test_impossible_configs_are_refused(gpt2_dir, kwargs, message):
    from fpt_hf import FPTConfig

    with pytest.raises(ValueError, match=message):
        FPTModel.from_pretrained(gpt2_dir, input_dim=4, **kwargs)
    with pytest.raises(ValueError, match=message):
        FPTConfig(input_dim=4, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_layers": 0}, "LSTMConfig num_layers must be a positive int, got 0"),
    ({"hidden_size": 0}, "LSTMConfig hidden_size must be a positive int, got 0"),
    ({"num_labels": 1}, "num_labels must be an int >= 2"),
    ({"num_layer": 2}, r"Unknown LSTMConfig argument\(s\) 'num_layer' \(did you mean 'num_layers'\?\)"),
])
def test_impossible_lstm_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTMConfig(input_dim=4, **{"num_labels": 3, **kwargs})


def test_saved_configs_still_load(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3, output_mode="mean")
    model.save_pretrained(tmp_path / "m")
    assert FPTModel.from_pretrained(tmp_path / "m").config.num_labels == 3
    lstm = LSTMBaseline(LSTMConfig(input_dim=4, num_labels=5, hidden_size=8, num_layers=1))
    lstm.save_pretrained(tmp_path / "l")
    assert LSTMBaseline.from_pretrained(tmp_path / "l").config.num_labels == 5


# ----------------------------------------------------------------------------- 3. checkpoint integrity
@pytest.fixture
def saved_heads(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3)
    model.save_pretrained(tmp_path / "heads")
    return tmp_path / "heads"


def _edit_checkpoint(folder, config=None, tensors=None):
    import json

    from safetensors.torch import load_file, save_file

    if config:
        path = folder / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    if tensors:
        state = load_file(folder / "model.safetensors")
        save_file({**state, **tensors}, folder / "model.safetensors")


def test_a_changed_weight_anywhere_is_caught(gpt2_dir, saved_heads, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from fpt_hf.backbones import fingerprint

    changed = tmp_path / "changed_backbone"
    shutil.copytree(gpt2_dir, changed)
    state = load_file(changed / "model.safetensors")
    name = next(k for k, v in state.items() if v.numel() > 2048 and "mlp" in k)
    edited = state[name].clone()
    edited.view(-1)[1] += 1.0  # index 1 is not among the 1024 values the old fingerprint sampled
    save_file({**state, name: edited}, changed / "model.safetensors")
    assert fingerprint([(name, state[name])], legacy=True) == fingerprint([(name, edited)], legacy=True)  # the old check missed it
    with pytest.raises(ValueError, match="does not have the weights these heads were trained on"):
        FPTModel.from_pretrained(saved_heads, backbone=str(changed))
    assert FPTModel.from_pretrained(saved_heads, backbone=str(gpt2_dir)) is not None


@pytest.mark.parametrize("edit, message", [
    ({"config": {"backbone_fingerprint": None}}, "has no backbone_fingerprint in its config.json"),
    ({"tensors": {"backbone.h.0.attn.c_attn.weight": torch.zeros(32, 96)}}, "holds frozen backbone tensors"),
    ({"tensors": {"head.proj.bias": torch.tensor([0.0, float("nan"), 0.0])}}, "tensor head.proj.bias holds NaN or inf values"),
])
def test_tampered_checkpoints_are_refused(saved_heads, edit, message):
    _edit_checkpoint(saved_heads, **edit)
    with pytest.raises(ValueError, match=message):
        FPTModel.from_pretrained(saved_heads)


def test_a_shard_index_may_not_point_outside_the_checkpoint(saved_heads, tmp_path):
    import json

    (saved_heads / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    (saved_heads / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"head.proj.weight": "../elsewhere.safetensors"}}))
    with pytest.raises(ValueError, match=r"names shards outside the checkpoint folder: \['../elsewhere.safetensors'\]"):
        FPTModel.from_pretrained(saved_heads)


def test_legacy_fingerprints_still_verify(gpt2_dir, saved_heads):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3)
    _edit_checkpoint(saved_heads, config={"backbone_fingerprint": model.frozen_fingerprint(legacy=True)})
    assert FPTModel.from_pretrained(saved_heads).config.backbone_fingerprint.startswith("v2:")
    _edit_checkpoint(saved_heads, config={"backbone_fingerprint": "0123456789abcdef"})
    with pytest.raises(ValueError, match="does not have the weights"):
        FPTModel.from_pretrained(saved_heads)


# ----------------------------------------------------------------------------- 3-4. resuming and run lengths
def _train_argv(gpt2_dir, tmp_path, *extra, method="fpt"):
    return ["--task", "bit_xor", "--backbone", gpt2_dir, "--method", method, "--preset", "cpu", "--use_cpu", "--train_size", "64",
            "--eval_steps", "4", "--save_steps", "4", "--output_dir", str(tmp_path / "out"), "--results_dir", str(tmp_path / "results"),
            "--report_to", "none", "--disable_tqdm", "true", *extra]


def test_resuming_checks_method_backbone_and_length(gpt2_dir, tmp_path):
    from fpt_hf.training import main

    main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "8"))
    checkpoint = str(tmp_path / "out" / "checkpoint-8")
    with pytest.raises(ValueError, match=r"trained with policy='fpt', this run has policy='frozen_random'"):
        main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "12", "--resume_from_checkpoint", checkpoint,
                         method="frozen_random"))
    from tiny_backbones import save_tiny_backbone

    same_shapes = save_tiny_backbone("gpt2", tmp_path / "other_gpt2", seed=99)  # another backbone, the same shapes
    with pytest.raises(ValueError, match=r"trained with backbone_fingerprint='v2:[0-9a-f]+', this run has backbone_fingerprint="):
        main(_train_argv(same_shapes, tmp_path, "--max_steps", "12", "--resume_from_checkpoint", checkpoint))
    with pytest.raises(ValueError, match=r"at step 8 with --max_steps 4: it is already past the end"):
        main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "4", "--resume_from_checkpoint", checkpoint))
    with pytest.raises(ValueError, match="--max_steps 0 would train nothing"):
        main(_train_argv(gpt2_dir, tmp_path / "zero", "--max_steps", "0"))
    resumed = main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "12", "--resume_from_checkpoint", "true"))
    assert resumed["steps"] == 12


def test_resuming_refuses_settings_the_trainer_would_override(gpt2_dir, tmp_path):
    """A resumed Trainer restores the checkpoint's optimizer and schedule: resumed with --learning_rate 1e-4, a 1e-2 run
    trained on at 1e-2 (every logged rate) while its results JSON recorded 1e-4. Such a change is now refused; the same
    settings resume, and so does a checkpoint written before the settings (or the wall clock) were recorded."""
    from fpt_hf.training import main

    main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "8", "--learning_rate", "1e-2"))
    checkpoint = tmp_path / "out" / "checkpoint-8"
    with pytest.raises(ValueError, match=r"other training settings \(learning_rate=0.01 there, 0.0001 here\): the Trainer restores"):
        main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "12", "--learning_rate", "1e-4", "--resume_from_checkpoint", "true"))
    with pytest.raises(ValueError, match=r"per_device_train_batch_size=16 there, 8 here.* seed=42 there, 1 here"):
        main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "12", "--learning_rate", "1e-2", "--per_device_train_batch_size", "8",
                         "--seed", "1", "--resume_from_checkpoint", "true"))
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    del state["stateful_callbacks"]["RunSettings"], state["stateful_callbacks"]["WallClock"]  # as an older checkpoint has it
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    resumed = main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "12", "--learning_rate", "1e-2", "--eval_steps", "2",
                               "--resume_from_checkpoint", "true"))
    assert resumed["steps"] == 12 and resumed["training_args"]["learning_rate"] == 0.01


# ----------------------------------------------------------------------------- 6. lost work
def test_a_second_run_into_the_same_output_dir_is_refused(gpt2_dir, tmp_path):
    from fpt_hf.training import main

    first = main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "4"))
    before = (tmp_path / "out" / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match=r"--output_dir .*out already holds a run \(checkpoint-4, config.json, model.safetensors, results.json\)"):
        main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "4", "--learning_rate", "5e-2"))
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == before  # nothing was touched
    again = main(_train_argv(gpt2_dir, tmp_path, "--max_steps", "4", "--overwrite_output_dir", "true", "--learning_rate", "5e-2"))
    assert again["steps"] == first["steps"] == 4


# ----------------------------------------------------------------------------- 5. model cards that say what ran
@pytest.mark.parametrize("method, says, never", [
    ("fpt", "self-attention and feed-forward weights frozen", "all** its weights"),
    ("full", "with **all** its weights trained", "weights frozen"),
    ("output_only", "only the output layer was trained", "layer norms were trained"),
    ("lstm", "LSTM baseline", "frozen"),
])
def test_model_cards_describe_the_method_that_ran(method, says, never):
    from fpt_hf.hub import build_model_card

    results = {"task": "mnist", "method": method, "backbone": None if method == "lstm" else "smollm2-135m", "accuracy": 0.9,
               "eval_split": "test", "compute_dtype": "bfloat16", "training_args": {"bf16": False, "learning_rate": 0.001}}
    card = build_model_card(results, "me/model")
    assert says in card.text and never not in card.text
    # transformer runs state fpt-hf's compute dtype, not the Trainer's bf16 flag (which an LSTM run does use)
    assert ("- compute dtype (frozen backbone): bfloat16" in card.text) == ("bf16: False" not in card.text) == (method != "lstm")
    assert card.data.base_model == (None if method == "lstm" else "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert build_model_card({**results, "backbone": "/home/me/models/gpt2"}, "me/m").data.base_model is None
    assert build_model_card({**results, "backbone": "openai-community/gpt2"}, "me/m").data.base_model == "openai-community/gpt2"
    # the card's example loads the class that ran (an LSTM checkpoint is no FPTModel) and says what inputs it takes
    assert f'{"LSTMBaseline" if method == "lstm" else "FPTModel"}.from_pretrained("me/model")' in card.text
    assert "# x: 64 tokens x 16 (4x4 patches of the 32x32-padded image)" in card.text
    assert "# x: (batch, tokens, input_dim) float32" in build_model_card({**results, "task": "my_data"}, "me/m").text
    # a run its time limit ended says so beside its steps
    assert "- steps: 40\n" in build_model_card({**results, "steps": 40, "stopped_by_time_limit": False}, "me/m").text
    assert "- steps: 40 (fewer than max_steps: its --time_limit_minutes ended training)" in build_model_card(
        {**results, "steps": 40, "stopped_by_time_limit": True}, "me/m").text


def test_an_lstm_checkpoint_is_no_backbone(tmp_path):
    """FPTModel.from_pretrained(lstm folder) read it as a backbone and failed on a missing input_dim."""
    LSTMBaseline(LSTMConfig(input_dim=3, num_labels=2, hidden_size=8)).save_pretrained(tmp_path / "lstm")
    with pytest.raises(ValueError, match=r"holds an LSTM baseline checkpoint, not a backbone .* LSTMBaseline.from_pretrained"):
        FPTModel.from_pretrained(tmp_path / "lstm")
    from transformers import AutoModel

    assert isinstance(AutoModel.from_pretrained(tmp_path / "lstm"), LSTMBaseline)


def test_pushing_keeps_a_users_own_readme(gpt2_dir, tmp_path, monkeypatch):
    from test_training import _patch_hub

    from fpt_hf.hub import push_checkpoint

    committed, _ = _patch_hub(monkeypatch, tmp_path)
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3)
    model.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "README.md").write_text("# my notes\n")
    push_checkpoint(tmp_path / "ckpt", "me/model", {"task": "mnist", "method": "fpt", "backbone": gpt2_dir})
    assert (tmp_path / "ckpt" / "README.md").read_text() == "# my notes\n"
    assert "library_name: fpt-hf" in (committed / "README.md").read_text()


# ----------------------------------------------------------------------------- 4. runs and data that report something else
def test_listops_data_dir_is_read_never_written_and_must_match(tmp_path, monkeypatch):
    from fpt_hf.tasks import get_task

    monkeypatch.setenv("FPT_HF_CACHE", str(tmp_path / "cache"))
    task = get_task("listops")
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ValueError, match="ListOps data_dir .*no_such_folder' does not exist"):
        task.load(str(missing), sizes={"train": 20, "validation": 5, "test": 5}, progress=False)
    assert not missing.exists()  # nothing was generated into it
    task.load(sizes={"train": 20, "validation": 5, "test": 5}, progress=False)
    (cached,) = (tmp_path / "cache" / "listops").iterdir()
    assert len(task.load(str(cached), sizes={"train": 20, "validation": 5, "test": 5}, progress=False)["train"]) == 20
    for other in ({"seed": 1}, {"sizes": {"train": 40}}):
        with pytest.raises(ValueError, match=r"holds data generated with .* not the requested"):
            task.load(str(cached), progress=False, **{"sizes": {"train": 20, "validation": 5, "test": 5}, **other})


def test_homology_says_which_rows_it_left_out(tmp_path, caplog):
    from test_protocol import _homology_folder

    from fpt_hf.tasks import get_task

    folder = _homology_folder(tmp_path)
    task = get_task("remote_homology")
    with caplog.at_level("WARNING", logger="fpt_hf"):
        data = task.load(str(folder), max_length=20)
    assert sum(task.dropped_rows.values()) > 0 and len(data["validation"]) == 20 - task.dropped_rows["validation"]
    assert "dropped" in caplog.text and "its accuracy covers the other" in caplog.text


def test_empty_protein_sequences_fail_at_load(tmp_path):
    from datasets import Dataset

    from fpt_hf.tasks import get_task

    for split in ("train", "valid", "test_fold_holdout"):
        Dataset.from_dict({"primary": ["ACD", ""], "fold_label": [0, 1]}).to_parquet(tmp_path / f"{split}.parquet")
    with pytest.raises(ValueError, match=r"remote_homology 'train' row 1 has an empty protein sequence"):
        get_task("remote_homology").load(str(tmp_path))


# ----------------------------------------------------------------------------- 7-8. paths and unclear errors
def test_dataset_build_refuses_path_like_task_names(tmp_path):
    from fpt_hf.publish import build_task_dataset

    with pytest.raises(ValueError, match=r"Unknown task '../../escape'"):
        build_task_dataset("../../escape", tmp_path / "out")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--task", "mnist", "--preset", "fast"], r"Unknown preset 'fast': expected one of \['cpu', 'paper'\]"),
    (["--task", "mnist", "--num_backbone_layers", "2.5"], r"argument --num_backbone_layers.*: invalid int value: '2.5'"),
])
def test_cli_argument_errors_name_the_flag(argv, message, capsys):
    import re

    from fpt_hf.arguments import parse_args

    with pytest.raises((ValueError, SystemExit)) as info:
        parse_args([*argv, "--use_cpu"])
    said = str(info.value) if info.type is ValueError else capsys.readouterr().err  # argparse reports type errors itself
    assert re.search(message, said), said


@pytest.mark.parametrize("value", [2.5, "3", True, 0])
def test_non_integer_layer_and_position_counts(gpt2_dir, value):
    for name in ("num_backbone_layers", "learned_positions"):
        with pytest.raises(ValueError, match=f"{name} must be a positive int"):
            FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=2, **{name: value})


def test_unknown_split_and_missing_split_files(gpt2_dir, tmp_path):
    from datasets import Dataset

    from fpt_hf.evaluation import evaluate_checkpoint
    from fpt_hf.tasks import get_task

    FPTModel.from_pretrained(gpt2_dir, **get_task("bit_xor").model_kwargs()).save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match=r"bit_xor has no split 'holdout': its splits are \['test', 'train', 'validation'\]"):
        evaluate_checkpoint(str(tmp_path / "ckpt"), "bit_xor", split="holdout")
    Dataset.from_dict({"image": [b"x"], "label": [0]}).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(ValueError, match=r"lacks the split\(s\) \['test'\] \(found \['train'\]\); expected train.parquet, test.parquet"):
        get_task("mnist").load(str(tmp_path))


def test_corrupt_checkpoint_files_name_the_file(gpt2_dir, tmp_path):
    model = FPTModel.from_pretrained(gpt2_dir, input_dim=4, num_labels=3)
    model.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"ckpt/config.json is not a valid config.json"):
        FPTModel.from_pretrained(tmp_path / "ckpt")
    model.save_pretrained(tmp_path / "ckpt2")
    (tmp_path / "ckpt2" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"Could not read .*ckpt2/model.safetensors: not a valid safetensors file"):
        FPTModel.from_pretrained(tmp_path / "ckpt2")


def test_results_files_of_simultaneous_runs_never_collide(tmp_path):
    """Eight runs with different settings finishing at once each get their own file (the name is claimed atomically)."""
    from concurrent.futures import ThreadPoolExecutor

    from fpt_hf.results import results_path, write_json

    def finish(lr):
        result = {"task": "bit_xor", "method": "fpt", "accuracy": 1.0, "training_args": {"learning_rate": lr}, "fpt_args": {}}
        path = results_path(tmp_path, "bit_xor-fpt-x-10steps-seed0.json", result)
        write_json(path, result)
        return path

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(finish, [10.0 ** -k for k in range(1, 9)]))
    assert len(set(paths)) == 8 and len(list(tmp_path.glob("*.json"))) == 8


# ----------------------------------------------------------------------------- property-based: the checks and the collator
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2), min_size=5, max_size=5), min_size=1, max_size=3))
def test_any_mask_is_accepted_exactly_when_it_is_a_valid_padding_mask(continuous, rows):
    mask = torch.tensor(rows)
    valid = bool(((mask == 0) | (mask == 1)).all()) and bool((mask.sum(-1) > 0).all())
    try:
        out = continuous(inputs=torch.randn(len(rows), 5, 4), attention_mask=mask)
        assert valid and torch.isfinite(out.logits).all()
    except ValueError:
        assert not valid


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(2, 6), min_size=1, max_size=4), st.integers(0, 3), st.booleans())
def test_tokens_mode_reads_exactly_the_last_real_tokens(tokens_mode, lengths, extra, left):
    """Accepted batches give the same logits as each row run alone; left padding and short rows are refused."""
    width = max(lengths) + extra
    x = torch.randn(len(lengths), width, 1)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        if left:
            mask[i, width - n:] = 1
        else:
            mask[i, :n] = 1
    should_fail = min(lengths) < 3 or (left and width > min(lengths))
    try:
        out = tokens_mode(inputs=x, attention_mask=mask).logits
    except ValueError:
        assert should_fail
        return
    assert not should_fail
    for i, n in enumerate(lengths):
        alone = tokens_mode(inputs=x[i:i + 1, :n] if not left else x[i:i + 1, width - n:]).logits
        torch.testing.assert_close(out[i:i + 1], alone, atol=1e-4, rtol=1e-4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 15), min_size=1, max_size=12), min_size=1, max_size=6), st.sampled_from([None, 4, 8]))
def test_collator_pads_every_row_exactly(rows, multiple):
    from fpt_hf.collator import FPTDataCollator

    batch = FPTDataCollator(pad_to_multiple_of=multiple)([{"inputs": r, "labels": i % 3} for i, r in enumerate(rows)])
    longest = max(map(len, rows))
    width = longest if multiple is None else -(-longest // multiple) * multiple
    assert batch["inputs"].shape == (len(rows), width) and batch["inputs"].dtype == torch.long
    assert batch["attention_mask"].sum(-1).tolist() == [len(r) for r in rows]
    for i, r in enumerate(rows):
        assert batch["inputs"][i, :len(r)].tolist() == r and not batch["inputs"][i, len(r):].any()
    assert batch["labels"].tolist() == [i % 3 for i in range(len(rows))]


def test_collator_refuses_ragged_continuous_rows():
    from fpt_hf.collator import FPTDataCollator

    with pytest.raises(ValueError, match=r"share one \(tokens, features\) shape .* \[\(3, 2\), \(3, 4\)\]"):
        FPTDataCollator()([{"inputs": torch.zeros(3, 2), "labels": 0}, {"inputs": torch.zeros(3, 4), "labels": 1}])


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"inputs": [1, 2], "labels": 0.7}, {"inputs": [3], "labels": 2.0}], r"labels \(class indices\) must be integers, got torch.float64 values such as \[0.7\]"),
        ([{"inputs": [1, 2], "labels": float("nan")}], r"labels .* must be integers, got torch.float64 values such as \[nan\]"),
        ([{"inputs": [1, 2], "labels": 0}, {"inputs": [1.5, 2.0], "labels": 1}], r"token-id inputs \(1-D rows\) must be integers, .* \[1.5\]"),
        ([{"inputs": [1, 2], "labels": [0, 1]}, {"inputs": [1], "labels": [1]}], r"labels must have one shape .* \[\(1,\), \(2,\)\]"),
        ([{"inputs": 5, "labels": 0}], r"1-D token ids or 2-D \(tokens, features\); got shapes \[\(\)\]"),
    ],
)
def test_collator_refuses_what_a_cast_would_change(rows, message):
    """Before: labels 0.7 -> 0 and token ids 1.5 -> 1 by `.long()`, silently."""
    from fpt_hf.collator import FPTDataCollator

    with pytest.raises(ValueError, match=message):
        FPTDataCollator()(rows)


def test_collator_keeps_lossless_casts():
    from fpt_hf.collator import FPTDataCollator

    batch = FPTDataCollator()([{"inputs": np.array([1.0, 2.0]), "labels": 1.0}, {"inputs": [3], "labels": True}])
    assert batch["inputs"].tolist() == [[1, 2], [3, 0]] and batch["inputs"].dtype == torch.long
    assert batch["labels"].tolist() == [1, 1] and batch["labels"].dtype == torch.long
    continuous = FPTDataCollator()([{"inputs": np.full((2, 3), 0.5, dtype=np.float64), "labels": 2}])
    assert continuous["inputs"].dtype == torch.float32 and continuous["inputs"].eq(0.5).all()


@pytest.mark.parametrize("config_class", ["FPTConfig", "LSTMConfig"])
def test_class_names_and_num_labels_must_agree(config_class):
    """transformers alone keeps `num_labels` and swaps the given names for LABEL_0.. with a warning."""
    import fpt_hf

    make = (lambda **kw: fpt_hf.FPTConfig(backbone="gpt2", input_dim=3, **kw)) if config_class == "FPTConfig" else \
        (lambda **kw: LSTMConfig(input_dim=3, **kw))
    with pytest.raises(ValueError, match=r"num_labels=4 but id2label names 3 classes \(\['a', 'b', 'c'\]"):
        make(num_labels=4, id2label={0: "a", 1: "b", 2: "c"})
    with pytest.raises(ValueError, match=r"id2label must name the classes 0..1, got keys \[0, 2\]"):
        make(id2label={0: "a", 2: "c"})
    with pytest.raises(ValueError, match=r"id2label must name the classes 0..1, got keys \['a', 'b'\]"):
        make(id2label={"a": "x", "b": "y"})
    named = make(id2label={"0": "no", "1": "yes"})  # keys as a config.json holds them
    assert named.num_labels == 2 and named.id2label == {0: "no", 1: "yes"} and named.label2id == {"no": 0, "yes": 1}


@pytest.mark.parametrize("output_mode", ["last", "first", "mean"])
@pytest.mark.parametrize("continuous", [False, True])
def test_lstm_reads_padded_rows_as_the_rows_alone(output_mode, continuous):
    """The LSTM reads every position: left padding (or a gap) used to feed its state and change the answer, quietly.
    Now any padding layout gives each row's answer on the row alone, as FPT does."""
    torch.manual_seed(0)
    kind = {"input_dim": 3} if continuous else {"vocab_size": 10}
    model = LSTMBaseline(LSTMConfig(num_labels=3, hidden_size=8, output_mode=output_mode, **kind)).eval()
    rows = [torch.randn(n, 3) if continuous else torch.randint(1, 10, (n,)) for n in (3, 5, 2)]
    masks = [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 0, 0, 1, 0]]  # left padding, none, a gap and right padding
    batch = torch.zeros(3, 5, 3) if continuous else torch.zeros(3, 5, dtype=torch.long)
    for row, mask, values in zip(batch, masks, rows):
        row[torch.tensor(mask).bool()] = values
    with torch.no_grad():
        together = model(inputs=batch, attention_mask=torch.tensor(masks)).logits
        for i, values in enumerate(rows):
            torch.testing.assert_close(together[i], model(inputs=values.unsqueeze(0)).logits[0], atol=1e-6, rtol=1e-5)


def test_evaluation_uses_the_data_protocol_the_checkpoint_was_trained_with(tmp_path, monkeypatch):
    """MNIST under protocol 'paper' is 49 raw patches, under 'default' 64 normalised ones, with the same input_dim: a
    checkpoint evaluated under the other one gave a quietly lower accuracy. The recorded protocol is now the default,
    and another one is refused."""
    from fpt_hf.evaluation import checked_data_protocol, evaluate_checkpoint

    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "results.json").write_text(json.dumps({"task": "mnist", "fpt_args": {"data_protocol": "paper"}}))
    assert checked_data_protocol(str(tmp_path / "paper"), None) == "paper"
    assert checked_data_protocol(str(tmp_path / "paper"), "paper") == "paper"
    assert checked_data_protocol(str(tmp_path), None) == "default"  # nothing recorded (e.g. a Hub id)
    assert checked_data_protocol(str(tmp_path), "paper") == "paper"
    with pytest.raises(ValueError, match=r"trained with data protocol 'paper' \(its results.json\); evaluating it with 'default'"):
        evaluate_checkpoint(str(tmp_path / "paper"), "mnist", data_protocol="default")
    import huggingface_hub

    def from_the_hub(repo_id, filename, **kwargs):  # a repository `fpt-hf push` wrote holds the run's results.json
        assert (repo_id, filename) == ("someone/fpt-mnist", "results.json")
        return str(tmp_path / "paper" / "results.json")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", from_the_hub)
    assert checked_data_protocol("someone/fpt-mnist", None) == "paper"
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert checked_data_protocol("someone/fpt-mnist", None) == "default"  # nothing to go by
    (tmp_path / "paper" / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"results.json is not a results JSON fpt-hf wrote"):
        checked_data_protocol(str(tmp_path / "paper"), None)


def test_evaluation_reads_the_data_of_the_seed_the_checkpoint_was_trained_on(gpt2_dir, tmp_path, monkeypatch):
    """A run with --task_seed 3 reports on seed 3's held-out data; evaluating it on seed 0's gave another number."""
    import fpt_hf.evaluation as evaluation
    from fpt_hf.tasks import get_task

    FPTModel.from_pretrained(gpt2_dir, **get_task("bit_xor").model_kwargs()).save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "results.json").write_text(json.dumps({"fpt_args": {"task_seed": 3, "data_protocol": "default"}}))
    seeds = []

    def recording(task, args, seed, max_length, training_seed=None):
        seeds.append((seed, args.task_seed))
        raise RuntimeError("seen")

    monkeypatch.setattr(evaluation, "load_task_data", recording)
    reads, read = [], evaluation.recorded_fpt_args
    monkeypatch.setattr(evaluation, "recorded_fpt_args", lambda path: reads.append(path) or read(path))
    for asked, used in ((None, 3), (5, 5)):
        with pytest.raises(RuntimeError, match="seen"):
            evaluation.evaluate_checkpoint(str(tmp_path / "ckpt"), "bit_xor", task_seed=asked)
        assert seeds.pop() == (used, used)
    assert len(reads) == 2  # results.json read once per evaluation (for a Hub id, one download)
    from fpt_hf.cli import main as cli

    with pytest.raises(RuntimeError, match="seen"):
        cli(["evaluate", str(tmp_path / "ckpt"), "--task", "bit_xor", "--task_seed", "7"])
    assert seeds.pop() == (7, 7)
