#!/usr/bin/env bash
# On a device machine (16 cores; its image has torch, no registry): benchmarks/edge_overhead.py with the edge
# pinned to a core of its own, against the baseline design in .base/; benchmarks/edge_timeline.py (where an
# edit's and a first token's time goes inside the pinned edge); then edge_overhead with every process sharing
# the cores; then benchmarks/grpc_transport.py (gRPC's transport as univence sets it against its default) and
# benchmarks/wakeup_cost.py (a small message's CPU by the pause before it). The steps' limits add up to 560 s.
# Run benchmarks/device/fetch.sh here first; the device call carries .whl and .base:
#   run(command="bash benchmarks/device/edge_overhead.sh", carry=[".whl", ".base"])
# Each step's output lands in $OUT (pinned.txt, timeline.txt, shared.txt, transport.txt, wakeup.txt); each has its own time limit.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out} && mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
nproc
python3 -c "import torch, transformers, diffusers, fastapi, grpc, sqlalchemy, edge.app, services.llm.servicer
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)" || exit 4
timeout "${PINNED_S:-300}" python3 benchmarks/edge_overhead.py --baseline-src .base --chats 32 --pin-edge 2>&1 \
  | tee "$OUT/pinned.txt"
timeout "${TIMELINE_S:-100}" python3 benchmarks/edge_timeline.py --pin-edge --requests 40 2>&1 | tee "$OUT/timeline.txt"
timeout "${SHARED_S:-110}" python3 benchmarks/edge_overhead.py --chats 32 2>&1 | tee "$OUT/shared.txt"
timeout "${TRANSPORT_S:-30}" python3 benchmarks/grpc_transport.py --rounds 2 2>&1 | tee "$OUT/transport.txt"
timeout "${WAKEUP_S:-20}" python3 benchmarks/wakeup_cost.py 2>&1 | tee "$OUT/wakeup.txt"
