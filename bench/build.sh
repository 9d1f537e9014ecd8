#!/usr/bin/env bash
# Build benchmark (issue 6, §6), side by side in one run: the issue's
# busybox Dockerfile with a 20 MB context of 100 files, built by
#
#   kiln build            vs  docker build (BuildKit, the fixture dockerd)
#                             buildah bud --layers (installed if missing)
#
# three ways: cold (--no-cache), again with nothing changed, and after one
# context file changed (hyperfine's prepare step rewrites it). Prints
# medians and kiln/other ratios, appends a dated section to
# bench/RESULTS.md. Ratios are printed, never asserted.
#
# Needs root. Environment:
#   KILN_BENCH_RUNS          runs per command (10; at least 5)
#   KILN_BENCH_NO_RESULTS=1  do not append to bench/RESULTS.md
#   KILN_BIN                 the kiln binary (default target/release/kiln)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${KILN_BENCH_RUNS:-10}
((RUNS >= 5)) || RUNS=5
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/build.sh needs root" >&2
  exit 1
fi
export PATH="$PATH:/usr/sbin:/sbin"
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v buildah >/dev/null || need+=(buildah)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
KILN=${KILN_BIN:-$REPO/target/release/kiln}
[ -x "$KILN" ] || cargo build --release --locked -p kiln

FIX=$(bash scripts/fixtures/base-images.sh 2>/dev/null)
WORK=$(mktemp -d /var/tmp/kiln-bench-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export KILN_ROOT=$WORK/store
export KILN_BRIDGE=kilnbench0 KILN_SUBNET=10.214.0.0/24 KILN_NETWORK_DIR=$WORK/network
"$KILN" load -q -i "$FIX/busybox.oci-archive.tar" >/dev/null

CTX=$WORK/ctx
mkdir -p "$CTX/files"
for i in $(seq 1 100); do
  head -c 209715 /dev/urandom >"$CTX/files/f$i"
done
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
RUN mkdir /app && echo 1 > /app/x
COPY files/ /app/files/
RUN for i in $(seq 1 100); do echo $i > /app/f$i; done
ENV A=1
WORKDIR /app
CMD ["sh"]
DF
touch_one="head -c 209715 /dev/urandom > $CTX/files/f50"

kiln_cold=(-n kiln-cold "$KILN build -q --no-cache -t bench:kiln $CTX")
kiln_warm=(-n kiln-nochange "$KILN build -q -t bench:kiln $CTX")
kiln_one=(-n kiln-onefile "$KILN build -q -t bench:kiln $CTX")
others_cold=() others_warm=() others_one=()

if bash scripts/fixtures/dockerd.sh start >/dev/null 2>&1; then
  eval "$(bash scripts/fixtures/dockerd.sh env)"
  # docker.io's own CLI has BuildKit built in (a newer CLI on PATH wants
  # the buildx plugin).
  DOCKER=docker
  [ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
  $DOCKER load -q -i "$FIX/busybox.docker-archive.tar" >/dev/null
  export DOCKER_BUILDKIT=1
  d="$DOCKER build -q --network none -t bench:docker $CTX"
  others_cold+=(-n docker-cold "$DOCKER build -q --no-cache --network none -t bench:docker $CTX")
  others_warm+=(-n docker-nochange "$d")
  others_one+=(-n docker-onefile "$d")
fi
if command -v buildah >/dev/null; then
  export CONTAINERS_CONF=$WORK/containers.conf
  printf '[containers]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$CONTAINERS_CONF"
  buildah pull -q "docker-archive:$FIX/busybox.docker-archive.tar" >/dev/null
  buildah tag "$(buildah images -q | head -1)" docker.io/library/busybox:latest
  b="buildah bud -q --layers --network none --pull-never --ulimit nproc=1024:1024 --ulimit nofile=1024:1024 -t bench:buildah $CTX"
  others_cold+=(-n buildah-cold "buildah bud -q --no-cache --layers --network none --pull-never --ulimit nproc=1024:1024 --ulimit nofile=1024:1024 -t bench:buildah $CTX")
  others_warm+=(-n buildah-nochange "$b")
  others_one+=(-n buildah-onefile "$b")
fi

H=(hyperfine -N --runs "$RUNS" --warmup 1)
"${H[@]}" --export-json "$WORK/cold.json" "${kiln_cold[@]}" "${others_cold[@]}" >&2
"${H[@]}" --export-json "$WORK/warm.json" "${kiln_warm[@]}" "${others_warm[@]}" >&2
hyperfine --runs "$RUNS" --warmup 1 --prepare "$touch_one" --export-json "$WORK/one.json" \
  "${kiln_one[@]}" "${others_one[@]}" >&2

report=$(python3 - "$WORK"/cold.json "$WORK"/warm.json "$WORK"/one.json <<'PY'
import json, statistics, sys
r = {}
for f in sys.argv[1:]:
    for x in json.load(open(f))["results"]:
        r[x["command"]] = statistics.median(x["times"])
print("| case | kiln | docker (BuildKit) | buildah --layers | kiln vs BuildKit | kiln vs buildah | goal |")
print("|---|---|---|---|---|---|---|")
goal = {"cold": "< 200 ms", "nochange": "< 26 ms", "onefile": "< 130 ms"}
for case in ["cold", "nochange", "onefile"]:
    k, d, b = (r.get(f"{t}-{case}") for t in ["kiln", "docker", "buildah"])
    fmt = lambda v: f"{v*1000:.0f} ms" if v else "—"
    ratio = lambda v: f"**{v/k:.1f}×** faster" if v and k else "—"
    print(f"| {case} | {fmt(k)} | {fmt(d)} | {fmt(b)} | {ratio(d)} | {ratio(b)} | {goal[case]} |")
PY
)
echo "$report"
if [ "${KILN_BENCH_NO_RESULTS:-0}" != 1 ]; then
  {
    echo
    echo "## Build (bench/build.sh) — $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
    echo
    echo "The issue's busybox Dockerfile, 20 MB context of 100 files; $RUNS runs each (medians)."
    echo
    echo "$report"
  } >>bench/RESULTS.md
fi
