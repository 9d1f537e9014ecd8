# Shared by the examples' run.sh scripts (sourced, not run).
#
# Environment: KILN (the kiln binary; default `kiln` on PATH),
# CA_BUNDLE (a CA bundle given to builds as the secret `ca`, for pip and
# curl behind a TLS-inspecting proxy; default the host's bundle),
# REGISTRY (host:port of a registry to push to, for the examples that push;
# default $KILN_REGISTRY, which the registry fixture sets).
KILN=${KILN:-kiln}
REGISTRY=${REGISTRY:-${KILN_REGISTRY:-}}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# `kiln` with the command echoed first, as a user would type it.
k() {
  printf '$ kiln %s\n' "$*"
  "$KILN" "$@"
}

# --secret for the host's CA bundle (harmless where there is no proxy).
CA=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
SECRET=()
if [ -s "$CA" ]; then SECRET=(--secret "id=ca,src=$CA"); fi

# fetch URL [SECONDS]: print the body of URL once it answers 2xx (retrying
# while the server starts), or fail after SECONDS (default 60).
fetch() {
  local url=$1 deadline=$((SECONDS + ${2:-60})) body
  while :; do
    if body=$(curl -fsS --max-time 5 "$url" 2>/dev/null); then
      printf '%s\n' "$body"
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "no answer from $url" >&2
      return 1
    fi
    sleep 0.2
  done
}

# expect TEXT PATTERN WHAT: fail with WHAT unless TEXT matches the glob PATTERN.
expect() {
  # shellcheck disable=SC2254
  case $1 in
    $2) ;;
    *) echo "FAILED: $3; got: $1" >&2; return 1 ;;
  esac
}

# need_registry: fail clearly when no registry is configured.
need_registry() {
  if [ -z "$REGISTRY" ]; then
    echo "set REGISTRY=host:port (a registry you can push to), or start the fixture:" >&2
    echo '  eval "$(bash scripts/fixtures/registry.sh env)"' >&2
    exit 1
  fi
}
