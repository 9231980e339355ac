#!/usr/bin/env python
"""Training/inference speed and memory: the paper's recipe vs fpt-hf's fast path, side by side.

    python benchmarks/bench_fpt.py                 # same as `fpt-hf bench`; see --help
"""

from fpt_hf.benchmark import main

if __name__ == "__main__":
    main()
