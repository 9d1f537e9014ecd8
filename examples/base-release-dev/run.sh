#!/usr/bin/env bash
# Builds base → release and base → dev, pushes all three to a registry,
# removes them locally, pulls them back and runs each: `ps` as PID 1 in
# the base, the service from the release, the tests in the dev image.
#
# Needs kiln, debian:bookworm-slim pullable and a registry: REGISTRY=host:port
# (default $KILN_REGISTRY from the fixture: scripts/fixtures/registry.sh).
set -euo pipefail
cd "$(dirname "$0")"
. ../lib.sh
need_registry
PORT=${PORT:-8001}
TAG=${TAG:-1}
BASE=$REGISTRY/team/python-base:$TAG
RELEASE=$REGISTRY/team/python-release:$TAG
DEV=$REGISTRY/team/python-dev:$TAG
NAME=release-example-$$

step "Build the base, then the release and dev images FROM it"
k build -t "$BASE" base
# The context is this directory: the release copies app/ and release/.
k build "${SECRET[@]}" --build-arg "BASE=$BASE" -t "$RELEASE" -f release/Dockerfile .
k build "${SECRET[@]}" --build-arg "BASE=$BASE" -t "$DEV" dev
k history "$RELEASE"

step "Push all three (the base's layers are uploaded once)"
k push "$BASE"
k push "$RELEASE"
k push "$DEV"

step "Remove them here and pull them back from the registry"
k rmi "$BASE" "$RELEASE" "$DEV"
k pull "$BASE"
k pull "$RELEASE"
k pull "$DEV"
k images "$REGISTRY/team/*"

step "The base: the entrypoint execs the command, so it is PID 1"
out=$(k run --rm "$BASE" ps -o pid,user,args)
echo "$out"
expect "$(echo "$out" | awk '$1 == 1 {print $3}')" ps "ps runs as PID 1"

step "The release: the service"
k run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" "$RELEASE"
trap '"$KILN" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
answer=$(fetch "http://127.0.0.1:$PORT/?name=release") || { "$KILN" logs "$NAME" >&2; exit 1; }
echo "$answer"
expect "$answer" "Hello, release!" "the release's answer"
k rm -f "$NAME"
trap - EXIT

step "The dev image: the tests, on the sources mounted from here"
k run --rm -e PYTHONDONTWRITEBYTECODE=1 -v "$PWD/app:/src:ro" "$DEV" pytest -q -p no:cacheprovider
