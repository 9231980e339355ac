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

A **Frozen Pretrained Transformer** (Lu et al., 2021) trained with [fpt-hf](https://github.com/fpt-hf/fpt-hf) on
**{task}**: `{backbone}` with its self-attention and feed-forward weights frozen; only the new input layer,
output layer, positional embeddings and layer norms were trained (policy `{method}`). This repository holds only
those trained tensors ({trainable:,} parameters); the backbone is re-attached from its own repository on load.

## Results

| split | accuracy |
|---|---|
| {split} | {accuracy} |

## Load it

```python
from fpt_hf import FPTModel
model = FPTModel.from_pretrained("{repo_id}")
logits = model(inputs=x).logits
```

## Training

{hyperparameters}
"""


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
        base_model=results.get("backbone"),
        tags=["fpt", "frozen-pretrained-transformer", results["task"], results["method"]],
        datasets=["fpt-hf/fpt-tasks"],
        metrics=["accuracy"],
        model_name=repo_id,
        eval_results=eval_results or None,
    )
    hyper = "\n".join(f"- {k}: {v}" for k, v in sorted(results.get("training_args", {}).items()))
    text = _CARD_TEMPLATE.format(
        card_data=data.to_yaml(), title=repo_id.split("/")[-1], task=results["task"], backbone=results.get("backbone"),
        method=results["method"], trainable=results.get("trainable_parameters", 0), split=results.get("eval_split"),
        accuracy="n/a" if accuracy is None else f"{100 * accuracy:.2f}%", repo_id=repo_id,
        hyperparameters=hyper + f"\n- steps: {results.get('steps')}\n- seed: {results.get('seed')}",
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
    build_model_card(results, repo_id).save(folder / "README.md")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        files = [name for name in ("config.json", "model.safetensors", "README.md", "results.json") if (folder / name).exists()]
        commit = api.create_commit(
            repo_id=repo_id, operations=[CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in files],
            commit_message=f"Upload FPT heads ({results.get('task')}, {results.get('method')})",
        )
    except Exception as err:
        raise RuntimeError(f"Pushing {folder} to {repo_id!r} failed ({type(err).__name__}: {err}). The local checkpoint in {folder} is intact.") from err
    logger.info("pushed %s to %s", folder, repo_id)
    return str(getattr(commit, "commit_url", commit))
