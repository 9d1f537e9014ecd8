#!/usr/bin/env bash
# Builds the nginx + uWSGI image and runs it as OpenShift would: an
# arbitrary UID with group 0, under kiln's init (--init). Checks nginx's
# static file and the proxied app, a group-0 writable file, that orphans
# are reaped, and that `kiln stop` stops both servers cleanly.
set -euo pipefail
cd "$(dirname "$0")"
. ../lib.sh
PORT=${PORT:-8080}
NAME=nginx-uwsgi-example-$$

step "Build"
k build -t nginx-uwsgi-example .

step "Run as UID 1000123, group 0, with an init as PID 1"
k run -d --init --user 1000123:0 --name "$NAME" -p "127.0.0.1:$PORT:8080" nginx-uwsgi-example
trap '"$KILN" rm -f "$NAME" >/dev/null 2>&1 || true' EXIT

step "The app, through nginx and uWSGI"
answer=$(fetch "http://127.0.0.1:$PORT/") || { "$KILN" logs "$NAME" >&2; exit 1; }
echo "$answer"
expect "$answer" "Hello from uWSGI behind nginx!" "the app's answer"
info=$(fetch "http://127.0.0.1:$PORT/info")
echo "$info"
expect "$info" '*"uid": 1000123, "gid": 0*' "the app runs as 1000123:0"

step "A static file, served by nginx"
static=$(fetch "http://127.0.0.1:$PORT/static/hello.txt")
echo "$static"
expect "$static" "static file served by nginx" "the static file"

step "Files the servers write: in group-0 writable directories"
fetch "http://127.0.0.1:$PORT/write"
k exec "$NAME" ls -ln /var/lib/app/visits /var/log/app/access.log
mode=$("$KILN" exec "$NAME" stat -c '%u:%g %a' /var/lib/app/visits)
expect "$mode" "1000123:0 664" "visits is the app's, group 0, group-writable"

step "PID 1 is kiln's init; orphans are reaped"
k exec "$NAME" cat /proc/1/comm
fetch "http://127.0.0.1:$PORT/orphans"
sleep 1
# Zombies: processes in state Z (field 3 of /proc/PID/stat).
zombies=$("$KILN" exec "$NAME" sh -c 'cat /proc/[0-9]*/stat 2>/dev/null' | awk '$3 == "Z"' | wc -l)
echo "zombies: $zombies"
expect "$zombies" 0 "no zombies left"

step "Stop: SIGTERM to the script, which stops nginx and uWSGI"
k stop -t 20 "$NAME"
code=$("$KILN" inspect -f '{{.State.ExitCode}}' "$NAME")
"$KILN" logs "$NAME" 2>&1 | tail -n 5
echo "exit code $code"
# Killed after the 20 s timeout (SIGKILL) it would be 137.
expect "$code" 0 "a clean exit"
"$KILN" logs "$NAME" 2>&1 | grep -q "start: both stopped" || { echo "FAILED: the script did not see both stop" >&2; exit 1; }
k rm "$NAME"
trap - EXIT
