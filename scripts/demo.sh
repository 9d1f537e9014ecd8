#!/usr/bin/env bash
# make demo: kiln's main job end to end on a fresh Debian 12 machine.
#
# Installs what it needs, builds kiln (release), starts the local registry
# seeded with Debian and busybox as a docker.io mirror (the test fixture),
# builds the Python web service of examples/wsgi-multistage/ (multi-stage
# and single-stage), runs it detached with a published port, curls it,
# shows `kiln images` with the sizes, then removes what it started.
#
# The demo's store is ${KILN_DEMO_ROOT:-/var/tmp/kiln-demo} (kept, so a
# second run is served from the build cache; delete it to start over).
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
REPO=$PWD

say() { printf '\n\033[1;34m### %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "make demo needs root (containers, the bridge network, the registry fixture)" >&2
  exit 1
fi

say "Installing the Debian packages and the Rust toolchain kiln needs"
./scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

say "Building kiln (cargo build --release)"
cargo build --release --locked -p kiln
KILN=$REPO/target/release/kiln
export KILN

say "Starting the local registry (Debian's docker-registry) with debian and busybox, as a mirror of docker.io"
bash scripts/fixtures/registry.sh start
eval "$(bash scripts/fixtures/registry.sh env)"
trap 'bash scripts/fixtures/registry.sh stop >/dev/null 2>&1 || true' EXIT
echo "registry: $KILN_REGISTRY; registries file: $KILN_REGISTRIES_CONF"
cat "$KILN_REGISTRIES_CONF"

export KILN_ROOT=${KILN_DEMO_ROOT:-/var/tmp/kiln-demo}
say "kiln's store: $KILN_ROOT"

say "The service: examples/wsgi-multistage"
PORT=${PORT:-8000} examples/wsgi-multistage/run.sh

say "Done: built, ran, answered, removed. Images kept in $KILN_ROOT:"
"$KILN" images
