#!/usr/bin/env bash
# Registry benchmark (issue 5, "Speed"): pulling and pushing the fixture's
# Debian image (library/debian:bookworm-slim, debootstrap minbase, one gzip
# layer) on loopback, against the plain test registry of
# scripts/fixtures/registry.sh, side by side in one run:
#
#   pull, downloaded and unpacked, ready to run:
#     kiln pull                       vs  docker pull (the fixture's dockerd)
#                                         podman pull (when installed)
#   pull, download only (no unpacking):
#     skopeo copy docker://… oci:DIR  (the issue's 0.51 s anchor)
#   re-push of an unchanged image (no blob bytes should move):
#     kiln push                       vs  skopeo copy oci:DIR docker://…
#
# Prints medians and kiln/anchor ratios, and appends a dated section to
# bench/RESULTS.md. Ratios are printed, never asserted.
#
# Needs root (the fixtures). Environment:
#   KILN_BENCH_RUNS          hyperfine runs per command (10; at least 5)
#   KILN_BENCH_WORK          work directory (a new one under /var/tmp)
#   KILN_BENCH_NO_RESULTS=1  do not append to bench/RESULTS.md
#   KILN_BIN                 the kiln binary (default: target/release/kiln,
#                            built if missing)
#   KILN_BENCH_DOCKER=1      also time docker pull. Off by default: Docker
#                            keeps layers by DiffID, and the fixture dockerd
#                            already holds this Debian layer (docker-save.sh
#                            loads the same rootfs), so `docker rmi` only
#                            untags and the "pull" downloads nothing; turn it
#                            on with a dockerd that has no such image.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${KILN_BENCH_RUNS:-10}
((RUNS >= 5)) || RUNS=5

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/registry.sh needs root (the fixtures)" >&2
  exit 1
fi
if ! command -v hyperfine >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq hyperfine >/dev/null
fi

KILN=${KILN_BIN:-$REPO/target/release/kiln}
# Always build (a no-op when current): a stale binary would measure old code.
[ -n "${KILN_BIN:-}" ] || cargo build --release --locked -p kiln

bash scripts/fixtures/registry.sh start
eval "$(bash scripts/fixtures/registry.sh env)"
REG=$KILN_REGISTRY
IMAGE=$REG/library/debian:bookworm-slim

WORK=${KILN_BENCH_WORK:-$(mktemp -d /var/tmp/kiln-bench-registry.XXXXXX)}
mkdir -p "$WORK"
export KILN_REGISTRIES_CONF=/dev/null
export DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG"
# podman stats $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set.
echo '{}' >"$DOCKER_CONFIG/config.json"

# kiln: a fresh store each run (the prepare step), so every layer is
# downloaded, verified, decompressed and extracted.
# Stores are moved aside between runs, not deleted: on an ext4 without a
# journal, inodes freed in the last minute are skipped by the allocator,
# which made extraction after `rm -rf` several times slower (see the layer
# benchmark's notes in RESULTS.md).
mkdir -p "$WORK/aside"
aside="if [ -d $WORK/kiln-store ]; then mv $WORK/kiln-store $WORK/aside/\$(date +%s%N); fi; rm -rf $WORK/skopeo-oci"
kiln_pull="$KILN --root $WORK/kiln-store pull -q $IMAGE"
skopeo_pull="skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://$IMAGE oci:$WORK/skopeo-oci:x"

# docker pull with the fixture's dockerd (127.0.0.0/8 is an insecure
# registry to Docker by default); its own prepare step removes the image.
DOCKER_OK=0
if [ "${KILN_BENCH_DOCKER:-0}" = 1 ] && bash scripts/fixtures/dockerd.sh start >/dev/null 2>&1; then
  eval "$(bash scripts/fixtures/dockerd.sh env)"
  DOCKER_OK=1
fi
# podman on this host needs runc and cgroupfs (no systemd, hybrid
# cgroups): its own containers.conf, the system's is left alone.
if command -v podman >/dev/null; then
  export CONTAINERS_CONF=$WORK/containers.conf
  printf '[containers]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$CONTAINERS_CONF"
fi
PODMAN_OK=0
command -v podman >/dev/null && PODMAN_OK=1

json=$WORK/pull.json
hyperfine --runs "$RUNS" --warmup 1 --export-json "$json" \
  --prepare "$aside" \
  -n kiln-pull "$kiln_pull" -n skopeo-copy "$skopeo_pull" >&2

jsons=("$json")
if ((DOCKER_OK)); then
  hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/docker.json" \
    --prepare "docker rmi -f $IMAGE >/dev/null 2>&1 || true" \
    -n docker-pull "docker pull -q $IMAGE" >&2
  jsons+=("$WORK/docker.json")
fi
if ((PODMAN_OK)); then
  hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/podman.json" \
    --prepare "podman rmi -f $IMAGE >/dev/null 2>&1 || true" \
    -n podman-pull "podman pull -q --tls-verify=false $IMAGE" >&2
  jsons+=("$WORK/podman.json")
fi

# Re-push: the image is in the registry already; nothing should move.
"$KILN" --root "$WORK/push-store" pull -q "$IMAGE" >/dev/null
DEST=$REG/bench/debian:repush
"$KILN" --root "$WORK/push-store" push -q "$IMAGE" "$DEST" >/dev/null
skopeo --insecure-policy copy --quiet --src-tls-verify=false \
  "docker://$IMAGE" "oci:$WORK/push-oci:x"
before=$(grep -c -E '"(PATCH|PUT) /v2/bench/debian/blobs/uploads/' "$KILN_REGISTRY_LOG" || true)
hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/push.json" \
  -n kiln-repush "$KILN --root $WORK/push-store push -q $IMAGE $DEST" \
  -n skopeo-repush "skopeo --insecure-policy copy --quiet --dest-tls-verify=false oci:$WORK/push-oci:x docker://$DEST" >&2
after=$(grep -c -E '"(PATCH|PUT) /v2/bench/debian/blobs/uploads/' "$KILN_REGISTRY_LOG" || true)
jsons+=("$WORK/push.json")
# docker push of the same image (already in that registry: HEAD only).
if ((DOCKER_OK)); then
  docker pull -q "$IMAGE" >/dev/null
  docker tag "$IMAGE" "$DEST-docker"
  docker push -q "$DEST-docker" >/dev/null 2>&1 || docker push "$DEST-docker" >/dev/null
  hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/docker-push.json" \
    -n docker-repush "docker push -q $DEST-docker" >&2
  jsons+=("$WORK/docker-push.json")
fi

layer_size=$(skopeo inspect --raw --tls-verify=false "docker://$IMAGE" |
  python3 -c 'import json,sys; print(" ".join(str(l["size"]) for l in json.load(sys.stdin)["layers"]))')
rm -rf "$WORK/aside"
report=$(python3 - "$layer_size" "$((after - before))" "${jsons[@]}" <<'PY'
import json, statistics, sys
layer, uploads, files = sys.argv[1], sys.argv[2], sys.argv[3:]
r = {}
for f in files:
    for x in json.load(open(f))["results"]:
        r[x["command"]] = (statistics.median(x["times"]), min(x["times"]))
def row(name, anchor, what):
    if name not in r or anchor not in r:
        return
    k, a = r[name], r[anchor]
    print(f"| {what} | `{anchor}` | {k[0]:.3f} s | {a[0]:.3f} s | **{k[0]/a[0]:.2f}** | {k[1]/a[1]:.2f} |")
print("| what | anchor | kiln median | anchor median | ratio (medians) | ratio (best) |")
print("|---|---|---|---|---|---|")
row("kiln-pull", "docker-pull", "pull + unpack")
row("kiln-pull", "podman-pull", "pull + unpack")
row("kiln-pull", "skopeo-copy", "pull + unpack vs download only")
row("kiln-repush", "skopeo-repush", "re-push unchanged")
row("kiln-repush", "docker-repush", "re-push unchanged")
print()
print(f"Layer blob sizes (bytes): {layer.strip()}. Blob uploads seen by the registry during the re-push runs (kiln and skopeo together): {uploads}.")
if "docker-pull" not in r:
    print("docker pull: not measured (KILN_BENCH_DOCKER unset, or no dockerd; see the script's header).")
if "podman-pull" not in r:
    print("podman pull: not measured (podman is not installed).")
PY
)
printf '%s\n' "$report"

if [ "${KILN_BENCH_NO_RESULTS:-0}" != 1 ]; then
  {
    printf '\n## Registry pull/push (bench/registry.sh), %s\n\n' "$(date -u +%Y-%m-%d)"
    printf 'Loopback, fixture registry (Debian docker-registry 2.8), %s runs each, load %s.\n\n' \
      "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%s\n' "$report"
  } >>bench/RESULTS.md
fi
