"""The seven tasks against independent computations, and on the real data when it is present."""

import itertools
import json

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from fpt_hf import FPTModel
from fpt_hf.collator import FPTDataCollator
from fpt_hf.tasks import get_task, list_tasks
from fpt_hf.tasks.images import ImageTransform, augment, patchify
from fpt_hf.tasks.listops import VOCAB, evaluate_tokens, generate_listops, tokenize

SMALL = {"train": 50, "validation": 20, "test": 20}


def test_registry_lists_the_seven_tasks():
    assert list_tasks() == ["bit_memory", "bit_xor", "listops", "mnist", "cifar10", "cifar10_lra", "remote_homology"]
    with pytest.raises(ValueError, match="Unknown task 'cifar100'.*'bit_memory'.*'remote_homology'"):
        get_task("cifar100")


def test_bit_xor_targets_are_numpy_xor():
    ds = get_task("bit_xor").load(seed=3, sizes=SMALL)
    rows = ds["train"][:]
    inputs, labels = np.asarray(rows["inputs"]), np.asarray(rows["labels"])
    assert inputs.shape == (50, 10, 1) and labels.shape == (50, 5)
    assert set(np.unique(inputs)) <= {0, 1}
    np.testing.assert_array_equal(labels, np.logical_xor(inputs[:, :5, 0], inputs[:, 5:, 0]).astype(int))


def test_bit_memory_target_is_the_queried_pattern():
    ds = get_task("bit_memory").load(seed=1, sizes=SMALL)
    rows = ds["validation"][:]
    inputs, labels = np.asarray(rows["inputs"]), np.asarray(rows["labels"])
    assert inputs.shape == (20, 120, 50) and labels.shape == (20, 1000)
    bits = inputs.reshape(20, 6, 1000)
    patterns, query = bits[:, :5], bits[:, 5]
    for i in range(20):
        assert set(np.unique(patterns[i])) == {-1, 1}
        known = query[i] != 0
        # the query agrees with exactly one stored pattern on its unmasked bits, and that is the target
        matches = [k for k in range(5) if np.array_equal(patterns[i, k][known], query[i][known])]
        assert len(matches) == 1
        np.testing.assert_array_equal(labels[i], (patterns[i, matches[0]] + 1) // 2)
        assert 0.4 < known.mean() < 0.6  # each bit masked with p = 0.5


@pytest.mark.parametrize("name", ["bit_xor", "bit_memory"])
def test_generated_tasks_are_seeded(name):
    task = get_task(name)
    a, b, c = (task.load(seed=s, sizes=SMALL) for s in (7, 7, 8))
    for split in SMALL:
        np.testing.assert_array_equal(a[split][:]["inputs"], b[split][:]["inputs"])
    assert not np.array_equal(a["train"][:]["inputs"], c["train"][:]["inputs"])
    assert not np.array_equal(a["train"][:]["inputs"], a["test"][:]["inputs"])


def test_bit_stream_is_endless_and_seeded():
    stream = get_task("bit_xor").load(streaming_train=True, sizes=SMALL)["train"]
    first = [r["inputs"] for r in itertools.islice(stream, 2500)]  # crosses chunk boundaries
    again = [r["inputs"] for r in itertools.islice(get_task("bit_xor").load(streaming_train=True, sizes=SMALL)["train"], 2500)]
    assert len(first) == 2500
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    task = get_task("bit_xor")
    other = task.load(**task.load_options(seed=0, streaming_train=True, stream_seed=1), sizes=SMALL)
    assert not np.array_equal(np.stack([r["inputs"] for r in itertools.islice(other["train"], 50)]), np.stack(first[:50]))
    np.testing.assert_array_equal(other["test"][:]["inputs"], task.load(sizes=SMALL)["test"][:]["inputs"])  # same held-out data


def test_streaming_options_are_checked():
    with pytest.raises(ValueError, match="streaming_train applies to tasks generated without end.*mnist is not"):
        get_task("mnist").load_options(streaming_train=True)
    with pytest.raises(ValueError, match="Give train_size or streaming_train, not both"):
        get_task("bit_memory").load_options(streaming_train=True, train_size=100)


# ----------------------------------------------------------------------------- ListOps
def _parse(tokens):
    """An independent recursive-descent parser + evaluator on the token list."""

    def node(i):
        tok = tokens[i]
        if tok.isdigit():
            return int(tok), i + 1
        op, args, i = tok, [], i + 1
        while tokens[i] != "]":
            value, i = node(i)
            args.append(value)
        if op == "[MIN":
            return min(args), i + 1
        if op == "[MAX":
            return max(args), i + 1
        if op == "[MED":
            return int(np.median(args)), i + 1
        return sum(args) % 10, i + 1

    value, end = node(0)
    assert end == len(tokens)
    return value


def test_listops_labels_match_independent_evaluator():
    expressions, labels = generate_listops(200, seed=5, progress=False)
    assert len(set(expressions)) == 200
    for text, label in zip(expressions, labels):
        tokens = text.split()
        assert 500 < len(tokens) < 2000
        assert label == _parse(tokens)
    assert len(set(labels)) == 10


def test_listops_trees_are_the_draws_of_lras_plain_recursion():
    """The generator appends to one list; LRA's recursion returns and concatenates each subtree. Same seed, same trees,
    so ListOps generated before the change (the cache, the committed grid runs) stays the data a run reads."""
    import random

    from fpt_hf.tasks.listops import CLOSE, DIGITS, OPERATORS, generate_tree

    def plain(rng, depth=1):
        if depth < 10 and rng.random() < 0.25:
            tokens = [rng.choice(OPERATORS)]
            for _ in range(rng.randint(2, 10)):
                tokens += plain(rng, depth + 1)
            return tokens + [CLOSE]
        return [rng.choice(DIGITS)]

    ours, reference = random.Random(7), random.Random(7)
    trees = [generate_tree(ours) for _ in range(3000)]
    assert trees == [plain(reference) for _ in range(3000)]
    assert max(len(t) for t in trees) > 500  # long trees, not only digits, were compared


def test_listops_evaluator_and_tokenizer():
    assert evaluate_tokens("[MAX 2 9 [MIN 4 7 ] 0 ]".split()) == 9
    assert evaluate_tokens("[MED 1 8 3 4 ]".split()) == 3
    assert evaluate_tokens("[SM 9 8 [MIN 5 6 ] ]".split()) == 2
    ids = tokenize("[MAX 2 9 ]")
    assert [VOCAB[i] for i in ids] == ["[MAX", "2", "9", "]"]
    assert len(tokenize(["[SM"] + ["1"] * 700 + ["]"], paper_compat=True)) == 512
    assert tokenize("[MAX 2 9 ]", paper_compat=True) == [2, 7, 14]
    for bad, message in [
        ("[MAX 2 9", "not closed"),
        ("[MAX 2 ] ]", "continue after"),
        ("] 1", "unmatched"),
        ("[MAX ]", "no arguments"),
        ("[FOO 1 ]", "Invalid ListOps token '\\[FOO'"),
    ]:
        with pytest.raises(ValueError, match=message):
            evaluate_tokens(bad.split())
    with pytest.raises(ValueError, match="Invalid ListOps token 'x'"):
        tokenize("[MAX x ]")


def test_listops_dataset_cached_and_collated(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_HF_CACHE", str(tmp_path))
    task = get_task("listops")
    ds = task.load(sizes={"train": 30, "validation": 5, "test": 5}, progress=False)
    assert (tmp_path / "listops").exists()
    again = task.load(sizes={"train": 30, "validation": 5, "test": 5}, progress=False)
    np.testing.assert_array_equal(np.concatenate(ds["train"][:]["inputs"]), np.concatenate(again["train"][:]["inputs"]))
    batch = FPTDataCollator()([ds["train"][i] for i in range(4)])
    lengths = batch["attention_mask"].sum(1)
    assert batch["inputs"].shape == (4, int(lengths.max()))
    for i in range(4):
        tokens = [VOCAB[t] for t in batch["inputs"][i, : lengths[i]].tolist()]
        assert evaluate_tokens(tokens) == int(batch["labels"][i])
        assert (batch["inputs"][i, lengths[i]:] == 0).all()
    compat = task.load(sizes={"train": 30, "validation": 5, "test": 5}, progress=False, protocol="paper")
    assert max(len(x) for x in compat["train"][:]["inputs"]) <= 512
    digits = {"id2label": {d: str(d) for d in range(10)}}  # class d is the answer d
    assert task.model_kwargs() == {"vocab_size": 16, "num_labels": 10, **digits}
    assert task.model_kwargs(protocol="paper") == {"vocab_size": 15, "num_labels": 10, **digits}  # pad, 4 operators, 10 digits
    with pytest.raises(ValueError, match="data protocols"):
        task.load(protocol="gpt2")


# ----------------------------------------------------------------------------- images
def test_patchify_reassembles():
    images = torch.randn(3, 32, 32, 3)
    patches = patchify(images, 4)
    assert patches.shape == (3, 64, 48)
    rebuilt = torch.zeros_like(images)
    for t in range(64):  # loop reassembly, independent of the reshape/permute in patchify
        r, c = divmod(t, 8)
        rebuilt[:, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4, :] = patches[:, t].reshape(3, 4, 4, 3)
    assert torch.equal(rebuilt, images)


def test_augmentation_is_random_crop_flip_rotation():
    images = torch.rand(64, 32, 32, 3)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert not torch.allclose(out, images)
    no_rotation = augment(images, torch.Generator().manual_seed(0), max_degrees=0.0)
    # without rotation every output is an exact shifted (and maybe flipped) crop of the zero-padded input
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2), (4, 4, 4, 4))
    for i in range(8):
        target = no_rotation[i].permute(2, 0, 1)
        found = any(
            torch.allclose(cand, target, atol=1e-5)
            for dy in range(9) for dx in range(9)
            for cand in (padded[i, :, dy : dy + 32, dx : dx + 32], padded[i, :, dy : dy + 32, dx : dx + 32].flip(-1))
        )
        assert found


needs_mnist = pytest.mark.skipif(not (SHARED_DATA / "mnist").exists(), reason=f"real MNIST not found at {SHARED_DATA / 'mnist'}")
needs_cifar = pytest.mark.skipif(not (SHARED_DATA / "cifar10").exists(), reason=f"real CIFAR-10 not found at {SHARED_DATA / 'cifar10'}")
needs_homology = pytest.mark.skipif(
    not (SHARED_DATA / "remote_homology").exists(), reason=f"real remote homology not found at {SHARED_DATA / 'remote_homology'}"
)


@needs_mnist
def test_mnist_real_data():
    ds = get_task("mnist").load(SHARED_DATA / "mnist", validation_size=0)
    assert {k: len(v) for k, v in ds.items()} == {"train": 60000, "test": 10000}
    train = ds["train"].with_format(None)
    counts = np.bincount(train["label"][:], minlength=10)
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train["label"][:10] == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    batch = ds["train"][:2]
    assert batch["inputs"].shape == (2, 64, 16)
    # tokens reassemble into the (padded, normalised) original image
    raw = np.frombuffer(train[0]["pixels"], np.uint8).reshape(28, 28) / 255.0
    image = np.zeros((32, 32))
    for t in range(64):
        r, c = divmod(t, 8)
        image[4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = batch["inputs"][0, t].numpy().reshape(4, 4)
    np.testing.assert_allclose(image[2:30, 2:30] * 0.3081 + 0.1307, raw, atol=1e-5)
    unpadded = get_task("mnist").load(SHARED_DATA / "mnist", pad_to_32=False)
    assert unpadded["test"][:1]["inputs"].shape == (1, 49, 16)
    held_out = get_task("mnist").load(SHARED_DATA / "mnist")
    assert {k: len(v) for k, v in held_out.items()} == {"train": 55000, "validation": 5000, "test": 10000}
    from fpt_hf.training import most_common_class_share

    assert most_common_class_share(held_out["test"]) == 0.1135  # digit 1: 1,135 of the 10,000 test images (read untransformed)


def _pixel_batch(rng, n, shape=(8, 8, 3)):
    return {"pixels": [rng.integers(0, 256, shape, dtype=np.uint8).tobytes() for _ in range(n)], "label": list(range(n))}


def test_restarted_augmentation_replays_skipped_batches():
    """`restart(sizes)` puts the stream where an uninterrupted one is after batches of those sizes, whatever was drawn
    before; `restart()` puts it at the start (what a resumed run and each sweep trial rely on)."""
    rng = np.random.default_rng(0)
    batches = [_pixel_batch(rng, n) for n in (4, 4, 2, 4)]

    def transform():
        return ImageTransform((8, 8, 3), patch=4, mean=[0.5] * 3, std=[0.25] * 3, augment=True, seed=3)

    fresh = transform()
    outputs = [fresh(b)["inputs"] for b in batches]
    resumed = transform()
    for _ in range(3):  # draws made before training (or by an earlier trial) must not matter
        resumed(batches[0])
    assert not torch.equal(resumed(batches[3])["inputs"], outputs[3])  # without the restart, other draws
    resumed.restart([4, 4, 2])
    assert torch.equal(resumed(batches[3])["inputs"], outputs[3])
    resumed.restart()
    assert torch.equal(resumed(batches[0])["inputs"], outputs[0])
    plain = ImageTransform((8, 8, 3), patch=4, mean=[0.5] * 3, std=[0.25] * 3, augment=False, seed=3)
    plain.restart([4, 4])  # no augmentation: nothing to replay, same tokens
    assert torch.equal(plain(batches[0])["inputs"], ImageTransform((8, 8, 3), 4, [0.5] * 3, [0.25] * 3)(batches[0])["inputs"])


def test_trained_batch_sizes_follow_the_trainer_epochs():
    from types import SimpleNamespace

    from fpt_hf.callbacks import RestartAugmentation

    callback = RestartAugmentation(transform=None, num_rows=10)  # batches of 4: 4, 4, 2 per epoch

    def sizes(step, accumulation=1, drop_last=False):
        args = SimpleNamespace(gradient_accumulation_steps=accumulation, per_device_train_batch_size=4, dataloader_drop_last=drop_last)
        return callback.trained_batch_sizes(args, SimpleNamespace(global_step=step), batches_per_epoch=2 if drop_last else 3)

    assert sizes(5) == [4, 4, 2, 4, 4]
    # accumulation 2: an epoch of 3 batches is 2 optimizer steps (2 batches, then the last 1)
    assert sizes(5, accumulation=2) == [4, 4, 2, 4, 4, 2, 4, 4]
    assert sizes(3, drop_last=True) == [4, 4, 4]


@needs_cifar
def test_cifar_real_data():
    task = get_task("cifar10")
    ds = task.load(SHARED_DATA / "cifar10", validation_size=0)
    labels = ds["train"].with_format(None)["label"][:]
    assert np.bincount(labels).tolist() == [5000] * 10
    assert np.bincount(ds["test"].with_format(None)["label"][:]).tolist() == [1000] * 10
    a, b = ds["train"][:4]["inputs"], ds["train"][:4]["inputs"]
    assert a.shape == (4, 64, 48) and not torch.equal(a, b)  # augmented afresh on every access
    t1, t2 = ds["test"][:4]["inputs"], ds["test"][:4]["inputs"]
    assert torch.equal(t1, t2)  # no augmentation outside train
    # the augmentation stream follows augment_seed (training scripts: the training seed); the data stays put
    def first_batch(augment_seed):
        return task.load(SHARED_DATA / "cifar10", validation_size=0, augment_seed=augment_seed)["train"][:4]["inputs"]

    assert torch.equal(first_batch(1), first_batch(1)) and not torch.equal(first_batch(1), first_batch(2))
    lra = get_task("cifar10_lra").load(SHARED_DATA / "cifar10", validation_size=0)
    x = lra["test"][:2]["inputs"]
    assert x.shape == (2, 1024, 1)
    raw = np.frombuffer(lra["test"].with_format(None)[0]["pixels"], np.uint8).reshape(32, 32, 3) / 255.0
    gray = raw @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(x[0, :, 0].numpy() * 0.2388 + 0.4808, gray.reshape(-1), atol=1e-5)


@needs_homology
def test_remote_homology_real_data():
    task = get_task("remote_homology")
    ds = task.load(SHARED_DATA / "remote_homology", too_long="truncate")
    assert {k: len(v) for k, v in ds.items()} == {"train": 12312, "validation": 736, "test": 718}
    assert len(set(ds["train"].with_format(None)["labels"][:]) | set(ds["validation"].with_format(None)["labels"][:]) | set(ds["test"].with_format(None)["labels"][:])) == 1195
    assert max(ds["train"].with_format(None)["length"][:]) == 1024
    dropped = task.load(SHARED_DATA / "remote_homology")
    assert {k: len(v) for k, v in dropped.items()} == {"train": 12305, "validation": 734, "test": 718}
    with pytest.raises(ValueError, match="too_long must be 'drop' or 'truncate'"):
        task.load(SHARED_DATA / "remote_homology", too_long="cut")


@pytest.mark.parametrize("task", ["mnist", "cifar10", "remote_homology"])
def test_hub_data_offline_says_how_to_point_at_local_parquet(task, monkeypatch):
    monkeypatch.delenv("FPT_HF_DATA_DIR", raising=False)  # tests run with HF_DATASETS_OFFLINE=1: the Hub is out of reach
    with pytest.raises(ValueError, match=r"Could not load .* from the Hugging Face Hub .*Offline, point data_dir= \(--data_dir\) "
                                         r"or \$FPT_HF_DATA_DIR at local Parquet files .*train\.parquet"):
        get_task(task).load()


def test_hub_data_unreachable_without_offline_mode_names_the_switch_that_skips_the_retries(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("FPT_HF_DATA_DIR", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # datasets itself stays offline (HF_DATASETS_OFFLINE=1): no network used
    with pytest.raises(ValueError, match=r"HF_HUB_OFFLINE=1 fails at once instead of after the Hub's retries\.$"):
        get_task("mnist").load()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError) as offline:
        get_task("mnist").load()
    assert "HF_HUB_OFFLINE" not in str(offline.value)  # already offline: nothing to add


def test_missing_data_dir_says_what_was_looked_for(tmp_path):
    with pytest.raises(ValueError, match=r"No mnist data in .*train.parquet.*ylecun/mnist"):
        get_task("mnist").load(tmp_path)


def test_wrong_columns_and_sizes(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"picture": [b"x"], "label": [0]}).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(ValueError, match=r"lacks columns \['image'\]"):
        get_task("mnist").load(tmp_path)
    from PIL import Image

    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    datasets.Dataset.from_dict({"image": [Image.new("L", (20, 20))] * 2, "label": [0, 1]}, features=features).to_parquet(tmp_path / "train.parquet")
    datasets.Dataset.from_dict({"image": [Image.new("L", (20, 20))] * 2, "label": [0, 1]}, features=features).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(ValueError, match="mnist images must be 28x28, got 20x20"):
        get_task("mnist").load(tmp_path, validation_size=0)


@pytest.mark.parametrize("name", ["bit_memory", "bit_xor", "listops", "mnist", "cifar10", "cifar10_lra", "remote_homology"])
def test_model_kwargs_build_a_model(name, gpt2_dir, tmp_path, monkeypatch):
    from fpt_hf import FPTModel

    task = get_task(name)
    model = FPTModel.from_pretrained(gpt2_dir, **task.model_kwargs())
    assert model.config.num_labels == task.num_labels
    assert task.recipe.learning_rate in (1e-3, 1e-4)


def test_load_options_check_what_the_task_supports():
    assert get_task("listops").load_options(seed=3, train_size=10, max_length=1024) == {"seed": 3, "sizes": {"train": 10}, "max_length": 1024}
    assert get_task("remote_homology").load_options(seed=3) == {}  # not seeded
    assert get_task("mnist").load_options(max_length=64) == {}  # fits: nothing to truncate
    with pytest.raises(ValueError, match="train_size applies to generated tasks; mnist has a fixed training set"):
        get_task("mnist").load_options(train_size=10)
    with pytest.raises(ValueError, match="cifar10_lra needs 1024 tokens but the model takes at most 512"):
        get_task("cifar10_lra").load_options(max_length=512)


@needs_mnist
def test_published_images_are_the_unaugmented_tokens():
    from fpt_hf.publish import task_dataset

    published = task_dataset("mnist", SHARED_DATA / "mnist")["test"]
    on_access = get_task("mnist").load(SHARED_DATA / "mnist")["test"]
    np.testing.assert_allclose(published[:3]["inputs"], on_access[:3]["inputs"].numpy(), atol=1e-6)
    assert published.features["inputs"].shape == (64, 16)


def test_models_of_a_task_name_its_classes(gpt2_dir, tmp_path):
    """`model_kwargs()` carries the task's class names as `id2label`, so a trained checkpoint (and its Hub copy) says
    "cat", not LABEL_3; tasks whose classes are only numbered (folds, bits) add nothing."""
    from fpt_hf import LSTMBaseline, LSTMConfig

    cifar = get_task("cifar10")
    model = FPTModel.from_pretrained(gpt2_dir, **cifar.model_kwargs())
    assert model.config.id2label[3] == "cat" and model.config.label2id["truck"] == 9 and model.config.num_labels == 10
    model.save_pretrained(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["id2label"]["0"] == "airplane"
    assert FPTModel.from_pretrained(tmp_path / "ckpt").config.id2label == model.config.id2label
    assert LSTMBaseline(LSTMConfig(hidden_size=8, **get_task("cifar10_lra").model_kwargs())).config.id2label[9] == "truck"
    assert "id2label" not in get_task("remote_homology").model_kwargs() and "id2label" not in get_task("bit_xor").model_kwargs()
