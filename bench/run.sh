#!/usr/bin/env bash
# Container start benchmark (issue 4, §6): `run --rm busybox true`, side by
# side in one run, on the fixture's busybox image:
#
#   kiln run --rm --network none      vs  runc run (a bundle of the same rootfs)
#   kiln run --rm (bridge, default)       docker run --rm --network none
#                                         (the fixture dockerd: no bridge)
#                                         podman run --rm (when installed)
#
# and the monitor's resident memory (VmRSS of a detached container's
# monitor) and 20 `kiln run --rm` started at once (all must succeed).
# Prints medians and ratios, appends a dated section to bench/RESULTS.md.
# Ratios are printed, never asserted.
#
# Needs root. Environment:
#   KILN_BENCH_RUNS          hyperfine runs per command (30; at least 10)
#   KILN_BENCH_NO_RESULTS=1  do not append to bench/RESULTS.md
#   KILN_BIN                 the kiln binary (default target/release/kiln,
#                            built if missing)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${KILN_BENCH_RUNS:-30}
((RUNS >= 10)) || RUNS=10

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/run.sh needs root" >&2
  exit 1
fi
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v hyperfine >/dev/null || ! command -v runc >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq hyperfine runc >/dev/null
fi
KILN=${KILN_BIN:-$REPO/target/release/kiln}
# Always build (a no-op when current): a stale binary would measure old code.
[ -n "${KILN_BIN:-}" ] || cargo build --release --locked -p kiln

FIX=$(bash scripts/fixtures/base-images.sh 2>/dev/null)
WORK=$(mktemp -d /var/tmp/kiln-bench-run.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STORE=$WORK/store
"$KILN" --root "$STORE" load -q -i "$FIX/busybox.oci-archive.tar" >/dev/null
# Its own bridge: a user's kiln0 and its addresses are left alone.
export KILN_BRIDGE=kilnbench0 KILN_SUBNET=10.214.0.0/24 KILN_NETWORK_DIR=$WORK/network

# runc: a bundle of the same root file system, no terminal.
mkdir -p "$WORK/bundle/rootfs"
tar -xf "$FIX/busybox.rootfs.tar" -C "$WORK/bundle/rootfs"
(cd "$WORK/bundle" && runc spec && python3 - <<'PY'
import json
s = json.load(open("config.json"))
s["process"]["terminal"] = False
s["process"]["args"] = ["true"]
json.dump(s, open("config.json", "w"))
PY
)

cmds=(-n "kiln-none" "$KILN --root $STORE run --rm --network none busybox true"
      -n "kiln-bridge" "$KILN --root $STORE run --rm busybox true"
      -n "runc" "runc --root $WORK/runc run -b $WORK/bundle bench")
if bash scripts/fixtures/dockerd.sh start >/dev/null 2>&1; then
  eval "$(bash scripts/fixtures/dockerd.sh env)"
  docker load -q -i "$FIX/busybox.docker-archive.tar" >/dev/null
  cmds+=(-n "docker-none" "docker run --rm --network none busybox true")
fi
# podman on this host needs runc and cgroupfs (no systemd, hybrid
# cgroups): its own containers.conf, the system's is left alone.
if command -v podman >/dev/null; then
  export CONTAINERS_CONF=$WORK/containers.conf
  printf '[containers]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$CONTAINERS_CONF"
fi
if command -v podman >/dev/null; then
  podman load -q -i "$FIX/busybox.docker-archive.tar" >/dev/null
  # Explicit limits: podman raises nproc/nofile beyond what this host allows.
  cmds+=(-n "podman-none" "podman run --rm --network none --ulimit nproc=1024:1024 --ulimit nofile=1024:1024 busybox true")
fi
hyperfine -N --runs "$RUNS" --warmup 3 --export-json "$WORK/run.json" "${cmds[@]}" >&2

# The monitor's memory while a container runs.
id=$("$KILN" --root "$STORE" run -d --network none busybox sleep 30)
mpid=$("$KILN" --root "$STORE" inspect --format '{{.State.MonitorPid}}' "$id")
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$mpid/status")
# The monitor gives back its binary's set-up pages after a second.
sleep 2
rss=$(awk '/VmRSS/ {print $2}' "/proc/$mpid/status")
"$KILN" --root "$STORE" rm -f "$id" >/dev/null

# 20 at once.
fails=0
pids=()
for i in $(seq 20); do
  "$KILN" --root "$STORE" run --rm busybox true & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
"$KILN" --root "$STORE" rmi -f busybox >/dev/null 2>&1 || true

report=$(python3 - "$WORK/run.json" "$rss" "$fails" "$rss0" <<'PY'
import json, statistics, sys
f, rss, fails, rss0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = {x["command"]: x["times"] for x in json.load(open(f))["results"]}
med = {k: statistics.median(v) for k, v in r.items()}
print("| command | median | min | kiln-none / it | kiln-bridge / it |")
print("|---|---|---|---|---|")
for k, v in r.items():
    print(f"| `{k}` | {med[k]*1000:.1f} ms | {min(v)*1000:.1f} ms | "
          f"{med['kiln-none']/med[k]:.2f} | {med['kiln-bridge']/med[k]:.2f} |")
print()
print(f"Goals: kiln-none median < 30 ms ({med['kiln-none']*1000:.1f} ms), "
      f"kiln-bridge < 60 ms ({med['kiln-bridge']*1000:.1f} ms). "
      f"Monitor VmRSS: {rss/1024:.1f} MB two seconds after the start "
      f"({rss0/1024:.1f} MB right after it; goal < 10 MB). "
      f"20 parallel `run --rm`: {20-fails}/20 succeeded.")
PY
)
echo "$report"
if [ "${KILN_BENCH_NO_RESULTS:-0}" != 1 ]; then
  {
    echo
    echo "## run --rm busybox true — $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
    echo
    echo "\`make bench-run\` (bench/run.sh), $RUNS runs each, hyperfine -N."
    echo
    echo "$report"
  } >> bench/RESULTS.md
fi
