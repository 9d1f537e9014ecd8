#!/usr/bin/env bash
# Fuzz the Dockerfile frontend for N seconds (default 600). Installs
# cargo-fuzz if needed; runs on the stable toolchain with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
mkdir -p corpus/frontend
# Seed with BuildKit's golden Dockerfiles when they are beside the repository.
if [ -d ../../shared/conformance/buildkit/parser ]; then
  for f in ../../shared/conformance/buildkit/parser/testfiles*/*/Dockerfile; do
    cp -n "$f" "corpus/frontend/$(basename "$(dirname "$f")")" 2>/dev/null || true
  done
fi
cargo fuzz run frontend corpus/frontend -- -max_total_time="$secs" -max_len=4096 -timeout=10
