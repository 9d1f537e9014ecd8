#!/usr/bin/env bash
# Builds the service both ways (multi-stage and single-stage), runs the
# multi-stage image detached with its port published, asks it for a page,
# and shows both image sizes. Used by `make demo` and `make test-examples`.
#
# Needs: kiln on PATH or $KILN, and `debian:bookworm-slim` pullable (the
# registry fixture mirrors docker.io: scripts/fixtures/registry.sh).
# Environment: KILN (the binary), PORT (host port, default 8000).
set -euo pipefail
cd "$(dirname "$0")"
. ../lib.sh
PORT=${PORT:-8000}
NAME=wsgi-example-$$

step "Build it multi-stage, then single-stage"
k build "${SECRET[@]}" -t wsgi-example:multistage .
k build "${SECRET[@]}" -t wsgi-example:single -f Dockerfile.single .

step "Run the multi-stage image detached, port 8000 published"
k run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" wsgi-example:multistage
trap '"$KILN" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT

step "curl http://127.0.0.1:$PORT/?name=kiln"
answer=$(fetch "http://127.0.0.1:$PORT/?name=kiln") || { "$KILN" logs "$NAME" >&2; exit 1; }
echo "$answer"
expect "$answer" "Hello, kiln!*" "the app's answer"
info=$(fetch "http://127.0.0.1:$PORT/info")
echo "$info"
# It runs as the image's USER 1001:0.
expect "$info" '*"uid": 1001, "gid": 0*' "it runs as 1001:0"

step "The container, its log"
k ps
k logs "$NAME"

step "Both images: multi-stage and single-stage"
k images wsgi-example

step "Remove the container"
k rm -f "$NAME"
trap - EXIT
