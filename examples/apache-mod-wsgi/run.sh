#!/usr/bin/env bash
# Builds the Apache + mod_wsgi image, runs it detached with port 8030
# published, asks the app for a page and Apache for a static file, shows
# the access log, then removes the container. Run by `make test-examples`.
#
# Needs kiln ($KILN or on PATH) and debian:bookworm-slim pullable.
set -euo pipefail
cd "$(dirname "$0")"
. ../lib.sh
PORT=${PORT:-8030}
NAME=apache-wsgi-example-$$

step "Build"
k build "${SECRET[@]}" -t apache-wsgi-example .

step "Run detached, port 8030 published"
k run -d --name "$NAME" -p "127.0.0.1:$PORT:8030" apache-wsgi-example
trap '"$KILN" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT

step "The app's answer (Python, through mod_wsgi)"
answer=$(fetch "http://127.0.0.1:$PORT/?name=kiln") || { "$KILN" logs "$NAME" >&2; exit 1; }
echo "$answer"
expect "$answer" "Hello, kiln! (Apache + mod_wsgi)" "the app's answer"
info=$(fetch "http://127.0.0.1:$PORT/info")
echo "$info"
# Apache started as root; its workers run the app as www-data (uid 33).
expect "$info" '*"uid": 33*' "the app runs as www-data"
expect "$info" '*Apache*' "Apache serves it"

step "A static file (Apache itself, --url-alias /static static)"
static=$(fetch "http://127.0.0.1:$PORT/static/hello.txt")
echo "$static"
expect "$static" "static file served by Apache*" "the static file"

step "The access log, on the container's output (--log-to-terminal)"
sleep 0.5
logs=$("$KILN" logs "$NAME" 2>&1)
echo "$logs" | grep -E '"GET /' || { echo "$logs" >&2; echo "FAILED: no access log lines" >&2; exit 1; }

step "Stop and remove"
k stop "$NAME"
k rm "$NAME"
trap - EXIT
