#!/usr/bin/env bash
# Builds the service both ways (multi-stage and single-stage), runs the
# multi-stage image detached with its port published, asks it for a page,
# and shows both image sizes. Used by `make demo` and by the examples test.
#
# Needs: kiln on PATH or $KILN, and `debian:bookworm-slim` pullable (the
# registry fixture mirrors docker.io: scripts/fixtures/registry.sh).
# Environment: KILN (the binary), PORT (host port, default 8000).
set -euo pipefail
cd "$(dirname "$0")"
KILN=${KILN:-kiln}
PORT=${PORT:-8000}
NAME=wsgi-example-$$

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "kiln build -t wsgi-example:multistage ."
"$KILN" build -t wsgi-example:multistage .
step "kiln build -t wsgi-example:single -f Dockerfile.single ."
"$KILN" build -t wsgi-example:single -f Dockerfile.single .

step "kiln run -d -p 127.0.0.1:$PORT:8000 wsgi-example:multistage"
"$KILN" run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" wsgi-example:multistage
trap '"$KILN" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT

step "curl http://127.0.0.1:$PORT/?name=kiln"
answer=""
for _ in $(seq 100); do
  if answer=$(curl -fsS "http://127.0.0.1:$PORT/?name=kiln" 2>/dev/null); then break; fi
  sleep 0.1
done
echo "$answer"
case $answer in
  "Hello, kiln!"*) ;;
  *) echo "unexpected answer; the container's log:" >&2; "$KILN" logs "$NAME" >&2; exit 1 ;;
esac
info=$(curl -fsS "http://127.0.0.1:$PORT/info")
echo "$info"
# It runs as the image's USER 1001:0.
case $info in *'"uid": 1001, "gid": 0'*) ;; *) echo "not running as 1001:0" >&2; exit 1 ;; esac

step "kiln ps"
"$KILN" ps
step "kiln logs $NAME"
"$KILN" logs "$NAME"

step "kiln images wsgi-example"
"$KILN" images wsgi-example

step "kiln rm -f $NAME"
"$KILN" rm -f "$NAME"
trap - EXIT
