#!/usr/bin/env bash
# The interactive way, scripted: what the README types by hand in
# `kiln run -it` is fed here on standard input to `kiln run -i`. Then commit,
# tag, push, build FROM the pushed image with ADD of a site tarball, run
# it detached and ask it for the page.
#
# Needs kiln, debian:bookworm-slim pullable and a registry: REGISTRY=host:port
# (default $KILN_REGISTRY from the fixture: scripts/fixtures/registry.sh).
set -euo pipefail
cd "$(dirname "$0")"
. ../lib.sh
need_registry
PORT=${PORT:-8081}
SETUP=httpd-setup-$$
NAME=site-example-$$
trap '"$KILN" rm -f "$SETUP" "$NAME" >/dev/null 2>&1 || true; rm -f site.tar.gz' EXIT

step "A shell in Debian: install a web server by hand"
k run -i --name "$SETUP" debian:bookworm-slim bash <<'SHELL'
set -ex
apt-get update
apt-get install -y --no-install-recommends lighttpd
rm -rf /var/lib/apt/lists/*
lighttpd -v
SHELL

step "Commit the container as an image, tag it for the registry, push it"
k commit "$SETUP" team/httpd:1
k rm "$SETUP"
k tag team/httpd:1 "$REGISTRY/team/httpd:1"
k push "$REGISTRY/team/httpd:1"

step "A Dockerfile FROM it: ADD the site tarball, EXPOSE 80, the server as ENTRYPOINT"
tar -czf site.tar.gz -C site .
k build --build-arg "REGISTRY=$REGISTRY" -t team/site:1 .

step "Run it detached and ask for the page"
k run -d --name "$NAME" -p "127.0.0.1:$PORT:80" team/site:1
page=$(fetch "http://127.0.0.1:$PORT/") || { "$KILN" logs "$NAME" >&2; exit 1; }
echo "$page"
expect "$page" "*installed by hand, committed with kiln*" "the site's page"
css=$(fetch "http://127.0.0.1:$PORT/style.css")
expect "$css" "body {*" "the site's stylesheet"
k rm -f "$NAME"
