#!/usr/bin/env bash
# Starts the local services (scripts/services.sh), builds the binaries and runs
# `orchestrator upgrade` with two local worker processes:
#
#   bash scripts/run.sh                 # extra arguments go to `orchestrator upgrade`
#   TARGET=seed bash scripts/run.sh     # the target; default `head`: the whole
#                                       # chain, up to the graph
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/services.sh
set -a
# shellcheck disable=SC1091
. .cache/services.env
set +a

echo "[run] cargo build --release --bins"
cargo build --release --bins
target_dir="${CARGO_TARGET_DIR:-$REPO/target}"
target="${TARGET:-head}"
echo "[run] orchestrator upgrade $target --with-workers 2 $*"
exec "$target_dir/release/orchestrator" upgrade "$target" --with-workers 2 "$@"
