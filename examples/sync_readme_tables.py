#!/usr/bin/env python
"""Copy the generated results tables into the README, between their markers, so that the README shows what the result
files hold (tests/test_cli_and_docs.py checks that they agree):

    python examples/sync_readme_tables.py

results/cpu-grid/table.md (written by `examples/cpu_grid.py --collect`), results/gpu/README-table.md (written by
`examples/paper_table_gpu.py`) and results/README-table.md (written by `examples/reproduce_table.py`).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES = {"cpu-grid-table": "results/cpu-grid/table.md", "gpu-table": "results/gpu/README-table.md",
          "results-table": "results/README-table.md"}


def blocks(readme: str) -> dict[str, str]:
    """The README's text between each `<!-- name -->` and `<!-- /name -->` marker."""
    out = {}
    for name in TABLES:
        start, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
        if start not in readme or end not in readme:
            raise ValueError(f"README.md has no {start.strip()} ... {end} block.")
        out[name] = readme.split(start, 1)[1].split(end, 1)[0]
    return out


def synced(readme: str) -> str:
    """`readme` with each marked block replaced by its table file (the blocks are read once: replacing one leaves the
    others' text as it was)."""
    for name, old in blocks(readme).items():
        table = (REPO / TABLES[name]).read_text().rstrip("\n") + "\n"
        readme = readme.replace(f"<!-- {name} -->\n{old}<!-- /{name} -->", f"<!-- {name} -->\n{table}<!-- /{name} -->")
    return readme


if __name__ == "__main__":
    path = REPO / "README.md"
    before = path.read_text()
    after = synced(before)
    path.write_text(after)
    print("README.md tables updated" if after != before else "README.md tables already in step")
