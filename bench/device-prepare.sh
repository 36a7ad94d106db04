#!/usr/bin/env bash
# Prepares .devkit/ for ONE run on the offline GPU machine (BENCHMARKS.md, "Running on a lent GPU"):
# Deno + Vulkan loader (../shared/device/pack.sh), the train / bench:step / doctor tasks bundled into
# single files (no node_modules there), Fashion-MNIST as xz, this script's companion device-steps.sh,
# and the commit. Usage, from the repository root: bash bench/device-prepare.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
kit=.devkit
if [ -f ../shared/device/pack.sh ]; then bash ../shared/device/pack.sh; else mkdir -p "$kit"; fi
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
