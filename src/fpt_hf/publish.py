"""The publishable dataset repository (`task_datasets/`): build each task's Parquet files, push to the Hub."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi

from .tasks import get_task

FIRST_CONFIG = "bit_xor"  # the first `configs:` entry of task_datasets/README.md (small, generated)


def task_dataset(name: str, data_dir: str | None = None, train_size: int | None = None):
    """A task's splits in their published, model-ready form (images as unaugmented patch tokens)."""
    task = get_task(name)
    options = task.load_options(train_size=train_size)
    if task.materializable:
        options["materialize"] = True
    return task.load(data_dir, **options)


def build_task_dataset(name: str, out: str | Path = "task_datasets", data_dir: str | None = None, train_size: int | None = None) -> Path:
    """Write `out/data/<task>/<split>-00000-of-00001.parquet` (the layout the dataset card's `configs:` names)."""
    get_task(name)  # an unknown name (e.g. "../x") is refused before any folder is made
    folder = Path(out) / "data" / name
    first = Path(out) / "data" / FIRST_CONFIG
    if name != FIRST_CONFIG and not first.exists():
        # datasets infers the file format of a card's configs from the first one, so it must exist
        build_task_dataset(FIRST_CONFIG, out)
    folder.mkdir(parents=True, exist_ok=True)
    for split, ds in task_dataset(name, data_dir, train_size).items():
        ds.with_format(None).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    return folder


def push_task_datasets(repo_id: str, tasks: list[str], out: str | Path = "task_datasets", data_dir: str | None = None,
                       train_size: int | None = None, token: str | None = None) -> str:
    """Build `tasks` under `out` and upload the card plus their Parquet files to the Hub dataset `repo_id`."""
    out = Path(out)
    if not (out / "README.md").exists():
        raise ValueError(f"{out} has no dataset card (README.md); run from the fpt-hf repository root or pass out=.")
    for name in tasks:
        build_task_dataset(name, out, data_dir, train_size)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    files = [out / "README.md", *sorted(p for name in tasks for p in (out / "data" / name).glob("*.parquet"))]
    commit = api.create_commit(
        repo_id=repo_id, repo_type="dataset",
        operations=[CommitOperationAdd(path_in_repo=f.relative_to(out).as_posix(), path_or_fileobj=str(f)) for f in files],
        commit_message=f"Upload FPT task configs: {', '.join(tasks)}",
    )
    return str(getattr(commit, "commit_url", commit))
