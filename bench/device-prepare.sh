#!/usr/bin/env bash
# Prepares .devkit/ for ONE run on the offline GPU machine (BENCHMARKS.md, "Running on a lent GPU"):
# Deno + Vulkan loader + the PyTorch anchor (../shared/device/pack.sh and pytorch_anchor.py, from the
# workplace's shared/device kit, outside this repository), the train / bench:step / doctor tasks bundled
# into single files (no node_modules there), Fashion-MNIST as xz, this script's companion
# device-steps.sh, and the commit. Usage, from the repository root: bash bench/device-prepare.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
kit=.devkit
shared=../shared/device
for need in pack.sh pytorch_anchor.py; do
  if [ ! -f "$shared/$need" ]; then
    echo "device-prepare: $shared/$need is missing (it comes from the workplace's shared/device kit); nothing prepared" >&2
    exit 2
  fi
done
bash "$shared/pack.sh"
if [ ! -f "$kit/pytorch_anchor.py" ]; then
  echo "device-prepare: $shared/pack.sh did not put pytorch_anchor.py (the PyTorch anchor) into $kit" >&2
  exit 2
fi
for t in train bench_step doctor; do
  deno bundle --quiet --platform deno --minify "tasks/$t.ts" -o "$kit/$t.js"
done
mkdir -p "$kit/fm"
for f in /usr/share/datasets/fashion-mnist/*.gz; do
  out="$kit/fm/$(basename "$f" .gz).xz"
  [ -f "$out" ] || zcat "$f" | xz -9e > "$out"
done
cp bench/device-steps.sh "$kit/steps.sh"
git rev-parse --short=12 HEAD > "$kit/commit"
du -sh "$kit" | awk '{print "device-prepare: .devkit is " $1 " (the carried tree must stay under 64 MiB)"}'
