import os

# Read at import time by huggingface_hub / transformers: fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from tiny_backbones import TINY_FAMILIES, save_tiny_backbone  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_backbone_dirs(tmp_path_factory):
    """Family name -> folder holding a tiny randomly initialised backbone of that architecture."""
    root = tmp_path_factory.mktemp("backbones")
    return {family: save_tiny_backbone(family, root / family) for family in TINY_FAMILIES}


@pytest.fixture(scope="session")
def gpt2_dir(tiny_backbone_dirs):
    return tiny_backbone_dirs["gpt2"]


@pytest.fixture
def load_script():
    """Import a repository script (e.g. "examples/reproduce_table.py") as a module, to call its functions."""
    import importlib.util

    def load(relative_path: str):
        import sys

        path = Path(__file__).resolve().parents[1] / relative_path
        if str(path.parent) not in sys.path:  # as `python <script>` does: the script imports its sibling modules
            sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses in the script look their module up there
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
