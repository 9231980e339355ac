"""Finding a task's data: the Hub id by default, or a local folder of Parquet files in the Hub layout."""

from __future__ import annotations

import os
from pathlib import Path

from datasets import DatasetDict, load_dataset

DATA_DIR_ENV = "FPT_HF_DATA_DIR"  # a folder holding one sub-folder per dataset (mnist/, cifar10/, ...)


def resolve_data_dir(data_dir: str | None, folder: str) -> Path | None:
    """`data_dir` if given, else `$FPT_HF_DATA_DIR/<folder>` if that variable is set, else None (use the Hub)."""
    if data_dir is not None:
        return Path(data_dir)
    root = os.environ.get(DATA_DIR_ENV)
    return Path(root) / folder if root else None


def load_parquet_splits(
    hub_id: str, data_dir: str | None, folder: str, splits: dict[str, str], columns: set[str], required: tuple[str, ...] = ("train", "test"),
) -> DatasetDict:
    """Load `splits` ({our name: file stem}) from `data_dir` (or the Hub) and check the columns and that every `required`
    split is there."""
    local = resolve_data_dir(data_dir, folder)
    if local is None:
        try:
            raw = load_dataset(hub_id)
        except (ConnectionError, OSError) as err:  # offline, or the Hub unreachable (datasets raises both kinds)
            from huggingface_hub import constants

            retries = "" if constants.HF_HUB_OFFLINE else " With no network, HF_HUB_OFFLINE=1 fails at once instead of after the Hub's retries."
            raise ValueError(
                f"Could not load {hub_id!r} from the Hugging Face Hub ({type(err).__name__}: {err}). Offline, point data_dir= "
                f"(--data_dir) or ${DATA_DIR_ENV} at local Parquet files in the Hub layout: data_dir=<folder> holding "
                f"{', '.join(f'{stem}.parquet' for stem in splits.values())} (or data/<split>-*.parquet), or "
                f"${DATA_DIR_ENV}=<root> holding {folder}/ like that; columns {sorted(columns)}. Save them once where the Hub "
                f"is reachable: datasets.load_dataset({hub_id!r}) then .to_parquet(...) per split.{retries}"
            ) from err
        raw = DatasetDict({ours: raw[theirs] for ours, theirs in splits.items() if theirs in raw})
    else:
        files, looked_for = {}, []
        for ours, stem in splits.items():
            candidates = [local / f"{stem}.parquet", *sorted(local.glob(f"data/{stem}-*.parquet")), *sorted(local.glob(f"{stem}-*.parquet"))]
            looked_for.append(str(candidates[0]))
            found = [str(c) for c in candidates if c.exists()]
            if found:
                files[ours] = found
        if not files:
            raise ValueError(
                f"No {folder} data in {local}: looked for {looked_for} (or data/<split>-*.parquet). "
                f"Point data_dir (or ${DATA_DIR_ENV}) at a folder with the Parquet files of the Hub dataset "
                f"{hub_id!r} (e.g. saved with datasets' `push_to_hub`/`to_parquet`), or pass data_dir=None to download it."
            )
        raw = load_dataset("parquet", data_files=files)
    for split, ds in raw.items():
        missing = columns - set(ds.column_names)
        if missing:
            raise ValueError(
                f"The {folder} split {split!r} lacks columns {sorted(missing)}: expected {sorted(columns)}, "
                f"found {ds.column_names}."
            )
    absent = [split for split in required if split not in raw]
    if absent:
        where = f"in {local}" if local is not None else f"on the Hub ({hub_id})"
        raise ValueError(f"The {folder} data {where} lacks the split(s) {[splits[s] for s in absent]} (found {sorted(raw)}); "
                         f"expected {', '.join(f'{splits[s]}.parquet' for s in required)}.")
    return raw
