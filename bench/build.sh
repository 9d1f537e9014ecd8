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
# All three run RUN steps with --network none (docker build and buildah
# bud with the flag, kiln build with its own --network none).
#
# With KILN_BENCH_DEBIAN=1, a second case the same three ways: FROM
# debian:bookworm-slim (the fixture image), `apt-get update && apt-get
# install -y --no-install-recommends curl` (--network host for all three:
# the fixture dockerd has no bridge; it downloads from the Debian mirror),
# then the same COPY; fewer runs, as
# each cold build takes tens of seconds.
#
# Needs root. Environment:
#   KILN_BENCH_RUNS          runs per command (10; at least 5)
#   KILN_BENCH_DEBIAN=1      also the Debian case
#   KILN_BENCH_DEBIAN_RUNS   its runs per command (3)
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
# Always build (a no-op when current): a stale binary would measure old code.
[ -n "${KILN_BIN:-}" ] || cargo build --release --locked -p kiln

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

kiln_cold=(-n kiln-cold "$KILN build -q --no-cache --network none -t bench:kiln $CTX")
kiln_warm=(-n kiln-nochange "$KILN build -q --network none -t bench:kiln $CTX")
kiln_one=(-n kiln-onefile "$KILN build -q --network none -t bench:kiln $CTX")
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
  # The id `pull` prints (the newest image can be an earlier run's result).
  buildah tag "$(buildah pull -q "docker-archive:$FIX/busybox.docker-archive.tar")" \
    docker.io/library/busybox:latest
  b="buildah bud -q --layers --network none --pull-never --ulimit nproc=1024:1024 --ulimit nofile=1024:1024 -t bench:buildah $CTX"
  others_cold+=(-n buildah-cold "buildah bud -q --no-cache --layers --network none --pull-never --ulimit nproc=1024:1024 --ulimit nofile=1024:1024 -t bench:buildah $CTX")
  others_warm+=(-n buildah-nochange "$b")
  others_one+=(-n buildah-onefile "$b")
fi

have_docker=0
((${#others_cold[@]})) && [[ ${others_cold[1]} == docker-cold ]] && have_docker=1

H=(hyperfine -N --runs "$RUNS" --warmup 1)
"${H[@]}" --export-json "$WORK/cold.json" "${kiln_cold[@]}" "${others_cold[@]}" >&2
"${H[@]}" --export-json "$WORK/warm.json" "${kiln_warm[@]}" "${others_warm[@]}" >&2
hyperfine --runs "$RUNS" --warmup 1 --prepare "$touch_one" --export-json "$WORK/one.json" \
  "${kiln_one[@]}" "${others_one[@]}" >&2

table() {
  python3 - "$@" <<'PY'
import json, statistics, sys
prefix, files = sys.argv[1], sys.argv[2:]
r = {}
for f in files:
    for x in json.load(open(f))["results"]:
        r[x["command"]] = statistics.median(x["times"])
print("| case | kiln | docker (BuildKit) | buildah --layers | kiln vs BuildKit | kiln vs buildah | goal |")
print("|---|---|---|---|---|---|---|")
goal = {"cold": "< 200 ms", "nochange": "< 26 ms", "onefile": "< 130 ms"} if not prefix else {}
for case in ["cold", "nochange", "onefile"]:
    k, d, b = (r.get(f"{prefix}{t}-{case}") for t in ["kiln", "docker", "buildah"])
    fmt = lambda v: (f"{v*1000:.0f} ms" if v < 10 else f"{v:.1f} s") if v else "—"
    ratio = lambda v: f"**{v/k:.1f}×** faster" if v and k else "—"
    print(f"| {case} | {fmt(k)} | {fmt(d)} | {fmt(b)} | {ratio(d)} | {ratio(b)} | {goal.get(case, '—')} |")
PY
}
report=$(table "" "$WORK"/cold.json "$WORK"/warm.json "$WORK"/one.json)
echo "$report"

DRUNS=${KILN_BENCH_DEBIAN_RUNS:-3}
debian_case() {
  "$KILN" load -q -i "$FIX/debian.oci-archive.tar" >/dev/null # debian:bookworm-slim
  DCTX=$WORK/dctx
  mkdir -p "$DCTX"
  cp -a "$CTX/files" "$DCTX/files"
  cat >"$DCTX/Dockerfile" <<'DF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY files/ /app/files/
CMD ["bash"]
DF
  dtouch="head -c 209715 /dev/urandom > $DCTX/files/f50"
  # --network host for all three: the fixture dockerd runs with
  # --bridge=none, so its builds reach the Debian mirror only that way.
  dcold=(-n deb-kiln-cold "$KILN build -q --network host --no-cache -t bench:kiln-deb $DCTX")
  dwarm=(-n deb-kiln-nochange "$KILN build -q --network host -t bench:kiln-deb $DCTX")
  done_=(-n deb-kiln-onefile "$KILN build -q --network host -t bench:kiln-deb $DCTX")
  if ((have_docker)); then
    DFIX=$(bash scripts/fixtures/docker-save.sh 2>/dev/null)
    $DOCKER load -q -i "$DFIX/docker-save.debian.tar" >/dev/null
    dcold+=(-n deb-docker-cold "$DOCKER build -q --network host --no-cache -t bench:docker-deb $DCTX")
    dwarm+=(-n deb-docker-nochange "$DOCKER build -q --network host -t bench:docker-deb $DCTX")
    done_+=(-n deb-docker-onefile "$DOCKER build -q --network host -t bench:docker-deb $DCTX")
  fi
  if command -v buildah >/dev/null; then
    buildah tag "$(buildah pull -q "oci-archive:$FIX/debian.oci-archive.tar")" \
      docker.io/library/debian:bookworm-slim
    bb="buildah bud -q --layers --network host --pull-never --ulimit nproc=1024:1024 --ulimit nofile=1024:1024"
    dcold+=(-n deb-buildah-cold "$bb --no-cache -t bench:buildah-deb $DCTX")
    dwarm+=(-n deb-buildah-nochange "$bb -t bench:buildah-deb $DCTX")
    done_+=(-n deb-buildah-onefile "$bb -t bench:buildah-deb $DCTX")
  fi
  hyperfine -N --runs "$DRUNS" --export-json "$WORK/dcold.json" "${dcold[@]}" >&2
  hyperfine -N --runs "$DRUNS" --warmup 1 --export-json "$WORK/dwarm.json" "${dwarm[@]}" >&2
  hyperfine --runs "$DRUNS" --warmup 1 --prepare "$dtouch" --export-json "$WORK/done.json" \
    "${done_[@]}" >&2
  table deb- "$WORK"/dcold.json "$WORK"/dwarm.json "$WORK"/done.json
}
deb_report=
if [ "${KILN_BENCH_DEBIAN:-0}" = 1 ]; then
  # A failure here (the mirror unreachable) loses only this table.
  deb_report=$(debian_case) || deb_report="(the Debian case failed: see the log above)"
  echo "$deb_report"
fi
if [ "${KILN_BENCH_NO_RESULTS:-0}" != 1 ]; then
  {
    echo
    echo "## Build (bench/build.sh) — $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
    echo
    echo "The issue's busybox Dockerfile, 20 MB context of 100 files; $RUNS runs each (medians), RUN with --network none; load $(cut -d' ' -f1-3 /proc/loadavg) at the end."
    echo
    echo "$report"
    if [ -n "$deb_report" ]; then
      echo
      echo "Debian case: FROM debian:bookworm-slim, apt-get install curl (from the Debian mirror, \`--network host\` for all three), the same COPY; $DRUNS runs each (medians)."
      echo
      echo "$deb_report"
    fi
  } >>bench/RESULTS.md
fi
