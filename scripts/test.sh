#!/usr/bin/env bash
# Starts the local services (scripts/services.sh), then builds and tests the
# whole workspace in release mode.
#
#   bash scripts/test.sh                         # everything
#   bash scripts/test.sh -p shared               # cargo options before `--`
#   bash scripts/test.sh some_test -- --nocapture  # test-binary options after `--`
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# TLS=1: also the throw-away CA and the TLS-only cluster of tests/tests/suite/tls.rs;
# REMOTE=1: also the web server and S3-compatible server of tests/tests/suite/remote_data.rs.
TLS=1 REMOTE=1 bash scripts/services.sh
set -a
# shellcheck disable=SC1091
. .cache/services.env
set +a

# Split "$@" at its first `--`: cargo's options before, the test binaries' after.
cargo_args=()
test_args=()
seen_dashes=0
for arg in "$@"; do
    if [[ $seen_dashes == 0 && $arg == -- ]]; then
        seen_dashes=1
    elif [[ $seen_dashes == 1 ]]; then
        test_args+=("$arg")
    else
        cargo_args+=("$arg")
    fi
done

# --workspace would override a -p/--package given here.
scope=(--workspace)
for arg in "${cargo_args[@]}"; do
    case $arg in -p | -p* | --package | --package=*) scope=() ;; esac
done

echo "[test] cargo build --release --workspace --bins"
cargo build --release --workspace --bins
echo "[test] cargo test --release ${scope[*]} ${cargo_args[*]} -- --test-threads=2 ${test_args[*]}"
cargo test --release "${scope[@]}" "${cargo_args[@]}" -- --test-threads=2 "${test_args[@]}"
