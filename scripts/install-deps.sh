#!/usr/bin/env bash
# Installs what kiln's tests need on a fresh Debian 12 machine, and nothing
# when it is already there. Safe to run repeatedly; runs without a terminal.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
command -v git >/dev/null 2>&1 || need_apt+=(git)
# The image tests compress inputs with the real tools.
command -v xz >/dev/null 2>&1 || need_apt+=(xz-utils)
command -v zstd >/dev/null 2>&1 || need_apt+=(zstd)
command -v gzip >/dev/null 2>&1 || need_apt+=(gzip)
command -v bzip2 >/dev/null 2>&1 || need_apt+=(bzip2) # kiln build tests: ADD of a .tar.bz2
command -v script >/dev/null 2>&1 || need_apt+=(bsdutils) # kiln build tests: --progress tty on a pseudo-terminal
# The container runtime links libseccomp (libcontainer's seccomp feature).
dpkg -s libseccomp-dev >/dev/null 2>&1 || need_apt+=(libseccomp-dev pkg-config)
# `run --runtime` is tested against runc.
PATH="$PATH:/usr/sbin:/sbin" command -v runc >/dev/null 2>&1 || need_apt+=(runc)
# The registry tests: Debian's registry, skopeo and umoci for images made
# without kiln, openssl for the TLS instance's CA, htpasswd for its users.
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v umoci >/dev/null 2>&1 || need_apt+=(umoci)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
# Container networking: NAT and FORWARD rules for kiln's bridge (iptables-nft
# on Debian 12); the network tests enter namespaces with util-linux's
# unshare/nsenter, check with ip and busybox ping, and run servers with python3.
PATH="$PATH:/usr/sbin:/sbin" command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v nsenter >/dev/null 2>&1 || need_apt+=(util-linux)
PATH="$PATH:/usr/sbin:/sbin" command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v busybox >/dev/null 2>&1 || need_apt+=(busybox-static)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "cargo is in $HOME/.cargo/bin: add it to PATH" >&2
  else
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  fi
  exit_hint=1
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
if [ "${exit_hint:-0}" = 1 ] && ! command -v cargo >/dev/null 2>&1; then
  echo "installed Rust; run: source \$HOME/.cargo/env && make test" >&2
  exit 1
fi

# The conformance data the tests read in place.
if [ ! -d "$(dirname "$0")/../../shared/conformance" ] && [ -z "${KILN_CONFORMANCE_DIR:-}" ]; then
  echo "warning: ../shared/conformance not found beside the repository; conformance tests will fail" >&2
fi
