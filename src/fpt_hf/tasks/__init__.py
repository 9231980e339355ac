"""The seven FPT tasks: `get_task(name)` -> a `Task` that loads its `DatasetDict` and knows its model spec."""

from .base import PaperRecipe, Task, TaskRegistry
from .bits import BitMemory, BitXOR
from .homology import RemoteHomology
from .images import CIFAR10, CIFAR10LRA, MNIST
from .listops import ListOps

_REGISTRY = TaskRegistry()
for _task in (BitMemory(), BitXOR(), ListOps(), MNIST(), CIFAR10(), CIFAR10LRA(), RemoteHomology()):
    _REGISTRY.register(_task)


def get_task(name: str) -> Task:
    """The task called `name` (see `list_tasks()`)."""
    return _REGISTRY.get(name)


def list_tasks() -> list[str]:
    """Names of all tasks, in the paper's order."""
    return list(_REGISTRY.tasks)


__all__ = ["PaperRecipe", "Task", "get_task", "list_tasks"]
