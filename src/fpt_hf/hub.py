"""Model cards and pushing trained FPT heads to the Hub."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData

logger = logging.getLogger("fpt_hf")

_CARD_TEMPLATE = """---
{card_data}
---

# {title}

Trained with [fpt-hf](https://github.com/fpt-hf/fpt-hf) on **{task}**: {what} This repository holds
{holds}.

## Results

| split | accuracy |
|---|---|
| {split} | {accuracy} |

## Load it

```python
from fpt_hf import {model_class}
model = {model_class}.from_pretrained("{repo_id}")
logits = model(inputs=x).logits  # x: {inputs}
```

`logits.argmax(-1)` gives class ids; `model.config.id2label` names them.

## Training

{hyperparameters}
"""


# What each method trained, as the card says it (the paper's FPT, its baselines and controls).
_METHOD_TEXT = {
    "fpt": "a **Frozen Pretrained Transformer** (Lu et al., 2021): `{backbone}` with its self-attention and feed-forward weights "
           "frozen; only the new input layer, output layer, position embeddings and layer norms were trained.",
    "full": "the *full transformer* baseline: `{backbone}` with **all** its weights trained, plus new input and output layers.",
    "frozen_random": "the *frozen random* control: a randomly initialised (seeded) `{backbone}` architecture with self-attention and "
                     "feed-forward weights frozen; the input and output layers, position embeddings and layer norms were trained.",
    "output_only": "an output-only (reservoir) model: `{backbone}` and a random input layer frozen; only the output layer was trained.",
    "lstm": "the paper's LSTM baseline (3 layer-normalised LSTM layers), all weights trained; no pretrained backbone.",
}


_TIME_LIMITED = " (fewer than max_steps: its --time_limit_minutes ended training)"


def _base_model(backbone: str | None) -> str | None:
    """The Hub id the card may name as base model: embedded backbones map to theirs; local folders have none."""
    from .backbones import EMBEDDED_BACKBONES

    if backbone in EMBEDDED_BACKBONES:
        return EMBEDDED_BACKBONES[backbone].get("hub_id")
    if backbone is None or Path(backbone).exists() or Path(backbone).is_absolute() or backbone.startswith((".", "~")):
        return None
    return backbone


def _inputs_text(task: str) -> str:
    """What `inputs` a model of this task takes, for the card's example."""
    from .tasks import get_task, list_tasks

    if task in list_tasks():
        return f"{get_task(task).token_layout}, batched (`fpt-hf` task `{task}`)"
    return "(batch, tokens, input_dim) float32 or (batch, tokens) token ids, as in training"


def build_model_card(results: dict, repo_id: str) -> ModelCard:
    """A model card with base model, task, dataset, hyperparameters and a `model-index` with the metric."""
    accuracy = results.get("accuracy")
    eval_results = []
    if accuracy is not None:
        eval_results.append(
            EvalResult(
                task_type="sequence-classification", task_name=results["task"], dataset_type="fpt-hf/fpt-tasks",
                dataset_name=results["task"], dataset_config=results["task"], dataset_split=results.get("eval_split"),
                metric_type="accuracy", metric_value=accuracy,
            )
        )
    data = ModelCardData(
        library_name="fpt-hf",
        base_model=_base_model(results.get("backbone")),
        tags=["fpt", "frozen-pretrained-transformer", results["task"], results["method"]],
        datasets=["fpt-hf/fpt-tasks"],
        metrics=["accuracy"],
        model_name=repo_id,
        eval_results=eval_results or None,
    )
    training_args = dict(results.get("training_args", {}))
    if results["method"] != "lstm" and "compute_dtype" in results:  # fpt-hf's own dtype, not Trainer's bf16 flag
        training_args.pop("bf16", None)
        training_args["compute dtype (frozen backbone)"] = results.get("compute_dtype") or "float32"
    hyper = "\n".join(f"- {k}: {v}" for k, v in sorted(training_args.items()))
    backbone = results.get("backbone")
    shown = backbone if _base_model(backbone) is None or backbone in _base_model(backbone) else f"{backbone} ({_base_model(backbone)})"
    what = _METHOD_TEXT.get(results["method"], "method `{method}`.").format(backbone=shown, method=results["method"])
    holds = ("the whole model" if results["method"] == "lstm" else
             f"only the trained tensors ({results.get('trainable_parameters', 0):,} parameters); the backbone is re-attached from "
             "its own reference on load" if results["method"] != "full" else "the trained tensors, the whole backbone included")
    text = _CARD_TEMPLATE.format(
        card_data=data.to_yaml(), title=repo_id.split("/")[-1], task=results["task"], what=what, holds=holds,
        split=results.get("eval_split"),
        accuracy="n/a" if accuracy is None else f"{100 * accuracy:.2f}%", repo_id=repo_id,
        model_class="LSTMBaseline" if results["method"] == "lstm" else "FPTModel", inputs=_inputs_text(results["task"]),
        hyperparameters=hyper + f"\n- steps: {results.get('steps')}{_TIME_LIMITED if results.get('stopped_by_time_limit') else ''}"
                                f"\n- seed: {results.get('seed')}",
    )
    return ModelCard(text)


def push_checkpoint(folder: str | Path, repo_id: str | None, results: dict | None = None, token: str | None = None, private: bool | None = None) -> str:
    """Write the model card into `folder` and upload the checkpoint files (config, safetensors, card, results).

    A failed push raises `RuntimeError` saying what failed; the local folder is left as it was (plus the card).
    """
    folder = Path(folder)
    if not repo_id:
        raise ValueError("A Hub repository id is needed: --hub_model_id user/name.")
    if not (folder / "config.json").exists() or not (folder / "model.safetensors").exists():
        raise ValueError(f"{folder} is not an FPT checkpoint: expected config.json and model.safetensors.")
    if results is None:
        results_file = folder / "results.json"
        results = json.loads(results_file.read_text()) if results_file.exists() else {"task": "unknown", "method": "unknown"}
    card = str(build_model_card(results, repo_id))
    readme = folder / "README.md"
    if not readme.exists() or "library_name: fpt-hf" in readme.read_text(errors="replace"):
        readme.write_text(card)  # a card of ours (or none yet): keep the local copy in step
    else:
        logger.warning("%s is your own README; it is kept, and the Hub repository gets the model card instead.", readme)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        files = [name for name in ("config.json", "model.safetensors", "results.json") if (folder / name).exists()]
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in files]
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
        commit = api.create_commit(
            repo_id=repo_id, operations=operations,
            commit_message=f"Upload FPT heads ({results.get('task')}, {results.get('method')})",
        )
    except Exception as err:
        raise RuntimeError(f"Pushing {folder} to {repo_id!r} failed ({type(err).__name__}: {err}). The local checkpoint in {folder} is intact.") from err
    logger.info("pushed %s to %s", folder, repo_id)
    return str(getattr(commit, "commit_url", commit))
