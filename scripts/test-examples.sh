#!/usr/bin/env bash
# make test-examples (and the last part of make test): runs every example's
# run.sh against the registry fixture (a docker.io mirror), as root.
#
# KILN: the binary to test (default target/debug/kiln, built if missing).
# KILN_EXAMPLES_ROOT: the store they share (default a fresh directory under
# /var/tmp, removed at the end; set it to keep the build cache between runs).
# Arguments: the examples to run (directory names), default all of them.
# The examples run two at a time (they mostly wait on apt and PyPI); each
# one's output goes to target/examples/NAME.log and is printed whole when it
# fails.
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
REPO=$PWD

if [ "$(id -u)" -ne 0 ]; then
  echo "the examples need root (containers, the bridge network, the registry fixture)" >&2
  exit 1
fi
./scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
if [ -z "${KILN:-}" ]; then
  cargo build --quiet --locked -p kiln
  KILN=$REPO/target/debug/kiln
fi
export KILN

bash scripts/fixtures/registry.sh start
eval "$(bash scripts/fixtures/registry.sh env)"
export KILN_REGISTRY KILN_REGISTRIES_CONF KILN_CERTS_D
cleanup=()
if [ -z "${KILN_EXAMPLES_ROOT:-}" ]; then
  KILN_EXAMPLES_ROOT=$(mktemp -d /var/tmp/kiln-examples.XXXXXX)
  cleanup+=("$KILN_EXAMPLES_ROOT")
fi
export KILN_ROOT=$KILN_EXAMPLES_ROOT
finish() {
  # Containers an example left behind, then the store.
  "$KILN" ps -aq 2>/dev/null | xargs -r "$KILN" rm -f -v >/dev/null 2>&1 || true
  for d in "${cleanup[@]}"; do "$KILN" system prune -a -f >/dev/null 2>&1 || true; rm -rf "$d"; done
  bash scripts/fixtures/registry.sh stop >/dev/null 2>&1 || true
}
trap finish EXIT

# Each example's host port, so that they can run side by side.
declare -A ports=(
  [wsgi-multistage]=18000
  [apache-mod-wsgi]=18030
  [nginx-uwsgi]=18080
  [base-release-dev]=18001
  [interactive-commit]=18081
)
if (($#)); then names=("$@"); else names=(wsgi-multistage apache-mod-wsgi nginx-uwsgi base-release-dev interactive-commit); fi

mkdir -p target/examples
run_one() {
  local name=$1 start=$SECONDS status=0
  PORT=${ports[$name]} "examples/$name/run.sh" >"target/examples/$name.log" 2>&1 || status=$?
  echo "$status $((SECONDS - start))" >"target/examples/$name.status"
}

pids=()
for name in "${names[@]}"; do
  [ -x "examples/$name/run.sh" ] || { echo "no example $name" >&2; exit 2; }
  # Two at a time.
  while (($(jobs -rp | wc -l) >= 2)); do wait -n || true; done
  echo "example $name: started"
  run_one "$name" &
  pids+=($!)
done
wait "${pids[@]}" || true

failed=0
for name in "${names[@]}"; do
  read -r status took <"target/examples/$name.status"
  if [ "$status" -eq 0 ]; then
    echo "example $name: ok (${took}s)"
  else
    echo "example $name: FAILED (exit $status, ${took}s); its output:"
    sed 's/^/    /' "target/examples/$name.log"
    failed=1
  fi
done
exit $failed
