#!/usr/bin/env bash
# Here, before a device run: the wheels of benchmarks/device/wheels.txt for the device machines' Python (3.12,
# x86-64) into .whl/, and the baseline design's source tree (BASELINE, a commit) into .base/. Both folders are
# ignored by git and named in the run's `carry` (see benchmarks/device/edge_overhead.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
BASELINE=${1:-3c39595}
for folder in .whl .base; do
  grep -qx "/$folder/" .git/info/exclude 2>/dev/null || echo "/$folder/" >> .git/info/exclude
done
rm -rf .whl .base && mkdir -p .base
platforms=()
for tag in manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
grep -v '^#' benchmarks/device/wheels.txt | xargs .venv/bin/python -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl
git archive "$BASELINE" edge services univence | tar -x -C .base
du -sh .whl .base
