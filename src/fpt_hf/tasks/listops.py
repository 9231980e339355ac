"""ListOps (Long Range Arena): our own generator, a tokenizer that keeps the brackets, and an evaluator.

An expression is a tree of operators over digits, written with an opening token per operator and `]`
closing it: `[MAX 2 9 [MIN 4 7 ] 0 ]` = 9. LRA's string form also wraps its binarised tree in
parentheses; those carry no information beyond the brackets and are not emitted here.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value, load_from_disk

from ..backbones import cache_dir
from .base import PaperRecipe, Task, split_seeds

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
DIGITS = tuple(str(d) for d in range(10))
PAD = "<pad>"
RECIPE_FILE = "fpt_hf_listops.json"  # beside generated data: the seed and sizes it was generated with
VOCAB = (PAD, *OPERATORS, CLOSE, *DIGITS)
TOKEN_TO_ID = {token: i for i, token in enumerate(VOCAB)}
# The original FPT code kept only alphanumeric characters: "[MAX" -> "MAX", "]" dropped.
PAPER_VOCAB = (PAD, "MIN", "MAX", "MED", "SM", *DIGITS)
PAPER_TOKEN_TO_ID = {token: i for i, token in enumerate(PAPER_VOCAB)}

_APPLY = {
    "[MIN": min,
    "[MAX": max,
    "[MED": lambda values: int(statistics.median(values)),
    "[SM": lambda values: sum(values) % 10,
}


def generate_tree(rng: random.Random, depth: int = 1, max_depth: int = 10, max_args: int = 10, operator_p: float = 0.25):
    """LRA's recursion: below `max_depth` a node is an operator with p=`operator_p` (else a digit), with a
    uniform 2..`max_args` children. Returns the token list."""
    tokens: list[str] = []
    _grow_tree(rng, tokens, depth, max_depth, max_args, operator_p)
    return tokens


def _grow_tree(rng: random.Random, tokens: list[str], depth: int, max_depth: int, max_args: int, operator_p: float) -> None:
    # Appends to one list: the random draws, in their order, are those of returning and concatenating each subtree's
    # list, so the data is unchanged, and generating is 1.18x as fast (the rest is the random draws themselves).
    if depth < max_depth and rng.random() < operator_p:
        tokens.append(rng.choice(OPERATORS))
        for _ in range(rng.randint(2, max_args)):
            _grow_tree(rng, tokens, depth + 1, max_depth, max_args, operator_p)
        tokens.append(CLOSE)
    else:
        tokens.append(rng.choice(DIGITS))


def evaluate_tokens(tokens: list[str]) -> int:
    """Value of a ListOps expression given as tokens (stack machine). Raises ValueError if malformed."""
    stack: list[list] = []
    result = None
    for position, token in enumerate(tokens):
        if result is not None:
            raise ValueError(f"Invalid ListOps expression: tokens continue after the expression ends (at {position}: {token!r}).")
        if token in _APPLY:
            stack.append([token])
        elif token == CLOSE:
            if not stack:
                raise ValueError(f"Invalid ListOps expression: unmatched ']' at token {position}.")
            operator, *values = stack.pop()
            if not values:
                raise ValueError(f"Invalid ListOps expression: {operator} with no arguments at token {position}.")
            value = _APPLY[operator](values)
            if stack:
                stack[-1].append(value)
            else:
                result = value
        elif token in DIGITS:
            if stack:
                stack[-1].append(int(token))
            else:
                result = int(token)
        else:
            raise ValueError(f"Invalid ListOps token {token!r} at {position}: expected one of {list(VOCAB[1:])}.")
    if stack or result is None:
        raise ValueError(f"Invalid ListOps expression: {len(stack)} operator(s) not closed.")
    return result


def tokenize(expression: str | list[str], paper_compat: bool = False, max_length: int | None = None) -> list[int]:
    """Token ids of an expression (string with spaces, or tokens). `paper_compat` reproduces the original FPT
    preprocessing (alphanumeric tokens only, so brackets are lost); `max_length` truncates."""
    tokens = expression.split() if isinstance(expression, str) else list(expression)
    for position, token in enumerate(tokens):
        if token not in TOKEN_TO_ID or token == PAD:
            raise ValueError(f"Invalid ListOps token {token!r} at {position}: expected one of {list(VOCAB[1:])}.")
    if paper_compat:
        ids = [PAPER_TOKEN_TO_ID[token.lstrip("[")] for token in tokens if token != CLOSE]
        max_length = 512 if max_length is None else max_length
    else:
        ids = [TOKEN_TO_ID[token] for token in tokens]
    return ids[:max_length] if max_length is not None else ids


def generate_listops(n: int, seed: int, min_length: int = 500, max_length: int = 2000, progress: bool = True, seen: set | None = None):
    """`n` unique expressions with `min_length < len(tokens) < max_length` (LRA bounds), with their values."""
    from tqdm.auto import tqdm

    rng = random.Random(seed)
    seen = set() if seen is None else seen
    expressions, labels = [], []
    with tqdm(total=n, desc="generating ListOps", disable=not progress) as bar:
        while len(expressions) < n:
            tokens = generate_tree(rng)
            if not min_length < len(tokens) < max_length:
                continue
            text = " ".join(tokens)
            if text in seen:
                continue
            seen.add(text)
            expressions.append(text)
            labels.append(evaluate_tokens(tokens))
            bar.update(1)
    return expressions, labels


class ListOps(Task):
    max_tokens = 1999
    generated = True
    truncatable = True
    variable_length = True
    name = "listops"
    description = "LRA ListOps: evaluate nested MIN/MAX/MED/SM expressions over digits (answer 0-9)."
    token_layout = "500-2000 token ids (vocab 16: pad, 4 operators, ']', 10 digits), right-padded"
    num_labels = 10
    class_names = DIGITS
    data_source = "generated (LRA procedure)"
    license = "Apache-2.0 (generated data)"
    citation = "Nangia & Bowman 2018 (ListOps); Tay et al. 2021 (Long Range Arena)"
    recipe = PaperRecipe(learning_rate=1e-3, batch_size=16)
    sizes = {"train": 96_000, "validation": 2_000, "test": 2_000}
    protocols = ("default", "paper")

    def load(self, data_dir=None, seed: int = 0, sizes: dict | None = None, protocol: str = "default",
             max_length: int | None = None, progress: bool = True) -> DatasetDict:
        """Generated once per (seed, sizes) and cached on disk (`$FPT_HF_CACHE/listops`).

        `protocol="paper"` reproduces the original FPT preprocessing (alphanumeric tokens only, so the brackets are
        lost, truncated to 512: a known flaw, kept reachable for comparison).
        `max_length` truncates (explicitly) for backbones with fewer positions.
        """
        self.check_protocol(protocol)
        paper_compat = protocol == "paper"
        sizes = {**self.sizes, **(sizes or {})}
        recipe = {"seed": seed, "sizes": sizes, "v": 1}
        key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
        if data_dir is None:  # the cache: one folder per (seed, sizes), generated on first use
            path = cache_dir() / "listops" / key
            try:
                text = load_from_disk(str(path))
            except FileNotFoundError:
                text = self._generate(seed, sizes, progress)
                text.save_to_disk(str(path))
                (path / RECIPE_FILE).write_text(json.dumps(recipe, sort_keys=True))
        else:  # a folder the user names is read, never written, and must hold what was asked for
            text = self._read_data_dir(Path(data_dir), recipe)
        vocab = PAPER_VOCAB if paper_compat else VOCAB
        features = Features({"inputs": Sequence(Value("int8")), "labels": ClassLabel(names=list(DIGITS)), "length": Value("int32")})

        def encode(batch):
            ids = [tokenize(e, paper_compat=paper_compat, max_length=max_length) for e in batch["expression"]]
            return {"inputs": ids, "labels": batch["label"], "length": [len(i) for i in ids]}

        encoded = text.map(encode, batched=True, remove_columns=["expression", "label"], features=features, desc="tokenizing ListOps")
        for ds in encoded.values():
            ds.info.description = f"vocab: {list(vocab)}"
        return encoded.with_format("numpy")

    def _read_data_dir(self, path: Path, recipe: dict) -> DatasetDict:
        if not path.is_dir():
            raise ValueError(f"ListOps data_dir {str(path)!r} does not exist. Omit data_dir to generate the data into the cache, "
                             "or point it at a folder written by `fpt-hf datasets build --task listops` / a previous cache.")
        stored = json.loads((path / RECIPE_FILE).read_text()) if (path / RECIPE_FILE).exists() else None
        if stored is not None and stored != json.loads(json.dumps(recipe)):
            raise ValueError(f"ListOps data_dir {str(path)!r} holds data generated with {stored}, not the requested {recipe}: pass the "
                             "same --task_seed / --train_size, or omit data_dir to generate the requested data into the cache.")
        try:
            return load_from_disk(str(path))
        except FileNotFoundError as err:
            raise ValueError(f"ListOps data_dir {str(path)!r} holds no saved DatasetDict ({err}).") from err

    def _generate(self, seed, sizes, progress) -> DatasetDict:
        seen: set = set()
        splits = {}
        for (split, n), split_seed in zip(sizes.items(), split_seeds(seed, len(sizes))):
            expressions, labels = generate_listops(n, split_seed, progress=progress, seen=seen)
            splits[split] = Dataset.from_dict({"expression": expressions, "label": labels})
        return DatasetDict(splits)

    def model_kwargs(self, protocol: str = "default", **options):
        self.check_protocol(protocol)
        return {"vocab_size": len(PAPER_VOCAB if protocol == "paper" else VOCAB), "num_labels": 10, **self.label_kwargs()}
