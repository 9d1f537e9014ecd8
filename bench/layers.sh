#!/usr/bin/env bash
# Layer codec benchmark (issue 3, "Speed"): kiln against the command-line
# tools a user would otherwise pipe together, on a debootstrap minbase
# bookworm rootfs (~200 MB).
#
#   kiln debug layer-write ROOT --compression zstd   vs  tar -c -C ROOT . | zstd -T0 -3
#   kiln debug layer-write ROOT --compression gzip   vs  tar -c -C ROOT . | pigz -6
#   kiln debug layer-apply LAYER.zst DIR             vs  zstd -d < LAYER.zst | tar -x -C DIR
#
# (apply is measured twice: into a directory on the disk the work directory
# is on, and into a tmpfs, which leaves out the file system's allocator.)
#
# Prints kiln time / anchor time (median of the runs, and of the best runs)
# and kiln's peak RSS, and appends a dated section to bench/RESULTS.md.
# Ratios are printed, never asserted: these machines are shared and noisy.
#
# Needs root (debootstrap, the tmpfs mount). Environment:
#   KILN_FIXTURE_CACHE  where the rootfs is cached (/var/cache/kiln-fixtures)
#   KILN_BENCH_RUNS     hyperfine runs per command (10; at least 5)
#   KILN_BENCH_WORK     work directory (a new one under /var/tmp)
#   KILN_BENCH_NO_RESULTS=1  do not append to bench/RESULTS.md
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${KILN_FIXTURE_CACHE:-/var/cache/kiln-fixtures}
ROOTFS=$CACHE/bench-rootfs
RUNS=${KILN_BENCH_RUNS:-10}
((RUNS >= 5)) || RUNS=5

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/layers.sh needs root (debootstrap, tmpfs)" >&2
  exit 1
fi

# --- tools -------------------------------------------------------------
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v pigz >/dev/null || need+=(pigz)
command -v zstd >/dev/null || need+=(zstd)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v python3 >/dev/null || need+=(python3)
command -v gzip >/dev/null || need+=(gzip)
[ -x /usr/bin/time ] || need+=(time)
if ((${#need[@]})); then
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- the rootfs ----------------------------------------------------------
# The Debian mirror this machine's apt uses (deb822 .sources or one-line
# .list), so debootstrap goes where apt already goes.
debian_mirror() {
  local m
  m=$(grep -hsE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    tr ' \t' '\n\n' | grep -E '^(https?|file)://.*/debian/?$' | head -n1 || true)
  if [ -z "$m" ]; then
    m=$(grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/\[[^]]*\]//' | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

if [ ! -f "$ROOTFS/etc/debian_version" ]; then
  mirror=$(debian_mirror)
  echo "creating $ROOTFS (debootstrap --variant=minbase bookworm $mirror)" >&2
  mkdir -p "$CACHE"
  rm -rf "$ROOTFS.tmp"
  debootstrap --variant=minbase bookworm "$ROOTFS.tmp" "$mirror" >"$CACHE/bench-rootfs.log" 2>&1 || {
    echo "debootstrap failed; see $CACHE/bench-rootfs.log" >&2
    exit 1
  }
  mv "$ROOTFS.tmp" "$ROOTFS"
fi

# --- kiln ----------------------------------------------------------------
echo "building kiln (release)" >&2
cargo build --release --locked -p kiln >&2
KILN=$REPO/target/release/kiln

# --- work directories ----------------------------------------------------
WORK=${KILN_BENCH_WORK:-$(mktemp -d /var/tmp/kiln-bench.XXXXXX)}
mkdir -p "$WORK"
TMPFS=$WORK/tmpfs
mkdir -p "$TMPFS"
mount -t tmpfs -o size=2g,mode=0755 kiln-bench "$TMPFS"
cleanup() {
  umount "$TMPFS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
ROOTFS_MB=$(du -sm "$ROOTFS" | cut -f1)
ENTRIES=$(find "$ROOTFS" | wc -l)
echo "rootfs: $ROOTFS, ${ROOTFS_MB} MB, $ENTRIES entries; work in $WORK; $RUNS runs" >&2

HF=(hyperfine --warmup 1 --runs "$RUNS" --style basic)

# kiln's peak RSS (KB) for one run of "$@" (after a --prepare-like step).
peak_rss() {
  /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}'
}

# --- write ---------------------------------------------------------------
"${HF[@]}" --export-json "$WORK/write-zstd.json" \
  -n "kiln layer-write zstd" "$KILN debug layer-write $ROOTFS -o $WORK/kiln.tar.zst --compression zstd" \
  -n "tar | zstd -T0 -3" "tar -c -C $ROOTFS . | zstd -T0 -3 -q > $WORK/anchor.tar.zst"
"${HF[@]}" --export-json "$WORK/write-gzip.json" \
  -n "kiln layer-write gzip" "$KILN debug layer-write $ROOTFS -o $WORK/kiln.tar.gz --compression gzip" \
  -n "tar | pigz -6" "tar -c -C $ROOTFS . | pigz -6 > $WORK/anchor.tar.gz"
RSS_WRITE_ZSTD=$(peak_rss "$KILN" debug layer-write "$ROOTFS" -o "$WORK/kiln.tar.zst" --compression zstd)
RSS_WRITE_GZIP=$(peak_rss "$KILN" debug layer-write "$ROOTFS" -o "$WORK/kiln.tar.gz" --compression gzip)

# The blobs are what other tools read.
gzip -t "$WORK/kiln.tar.gz"
zstd -q -t "$WORK/kiln.tar.zst"
SIZES=$(stat -c '%n %s' "$WORK"/kiln.tar.zst "$WORK"/anchor.tar.zst "$WORK"/kiln.tar.gz "$WORK"/anchor.tar.gz)

# --- apply ---------------------------------------------------------------
# Between runs the previous extraction is cleared: on the tmpfs by rm -rf;
# on the disk by moving it aside (deleted at the end). ext4 without a journal
# (as on these VMs) skips inodes freed in the last minute when it allocates,
# scanning past them, so deleting 6,700 inodes just before a run slows that
# run's file creation several times over, and more with every run: the
# second command of each pair would pay for the first one's deletions.
LAYER=$WORK/kiln.tar.zst
mkdir -p "$WORK/aside"
for where in disk tmpfs; do
  if [ "$where" = disk ]; then
    D=$WORK/x
    clear="if [ -e $D ]; then mv $D $WORK/aside/\$(date +%s%N); fi; mkdir $D"
  else
    D=$TMPFS/x
    clear="rm -rf $D && mkdir $D"
  fi
  "${HF[@]}" --export-json "$WORK/apply-$where.json" \
    --prepare "$clear" \
    -n "kiln layer-apply ($where)" "$KILN debug layer-apply $LAYER $D" \
    -n "zstd -d | tar -x ($where)" "zstd -d -q < $LAYER | tar -x -C $D"
done
rm -rf "$TMPFS/x" && mkdir "$TMPFS/x"
RSS_APPLY=$(peak_rss "$KILN" debug layer-apply "$LAYER" "$TMPFS/x")

# Same tree from both? (type, mode, owner, size, link target, mtime of
# non-directories)
listing() { (cd "$1" && find . -printf '%y %m %U:%G %s %l %p\n' | sort); }
mkdir "$TMPFS/t" && zstd -d -q <"$LAYER" | tar -x -C "$TMPFS/t"
if diff <(listing "$TMPFS/x") <(listing "$TMPFS/t") >"$WORK/listing.diff"; then
  SAME="identical listings (type, mode, owner, size, link) from kiln and tar"
else
  SAME="LISTINGS DIFFER: $(wc -l <"$WORK/listing.diff") lines, e.g. $(head -n2 "$WORK/listing.diff" | tr '\n' ' ')"
fi

# --- report --------------------------------------------------------------
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
NPROC=$(nproc)
KERNEL=$(uname -r)
RUSTC=$(rustc --version | cut -d' ' -f2)
FS=$(findmnt -no FSTYPE -T "$WORK" || echo '?')
DATE=$(date -u +%Y-%m-%d)

REPORT=$(python3 - "$WORK" "$RSS_WRITE_ZSTD" "$RSS_WRITE_GZIP" "$RSS_APPLY" "$FS" <<'EOF'
import json, statistics, sys
work, rss_z, rss_g, rss_a, fs = sys.argv[1:6]
rows = [
    ("write zstd", "write-zstd", rss_z, "tar -c | zstd -T0 -3"),
    ("write gzip", "write-gzip", rss_g, "tar -c | pigz -6"),
    (f"apply zstd ({fs})", "apply-disk", rss_a, "zstd -d | tar -x"),
    ("apply zstd (tmpfs)", "apply-tmpfs", rss_a, "zstd -d | tar -x"),
]
out = ["| operation | anchor | kiln median | anchor median | ratio (median) | ratio (best) | kiln peak RSS |",
       "|---|---|---|---|---|---|---|"]
for name, f, rss, anchor in rows:
    res = json.load(open(f"{work}/{f}.json"))["results"]
    k, a = res[0]["times"], res[1]["times"]
    km, am = statistics.median(k), statistics.median(a)
    out.append(f"| {name} | `{anchor.replace('|', chr(92) + '|')}` | {km:.3f} s | {am:.3f} s | **{km/am:.2f}** | {min(k)/min(a):.2f} | {int(rss)/1024:.0f} MB |")
print("\n".join(out))
EOF
)

echo
echo "=== kiln / anchor (below 1.00: kiln is faster); load $LOAD_BEFORE -> $LOAD_AFTER ==="
echo "$REPORT"
echo
echo "blob sizes:"
echo "$SIZES" | sed "s|$WORK/||"
echo "$SAME"

if [ "${KILN_BENCH_NO_RESULTS:-}" != 1 ]; then
  {
    echo
    echo "## Layers: write and apply a debootstrap minbase rootfs — $DATE"
    echo
    echo "$NPROC vCPU $CPU, Linux $KERNEL, rustc $RUSTC; \`bench/layers.sh\`"
    echo "(hyperfine, warmup 1, $RUNS runs each; the work directory on $FS;"
    echo "load average before $LOAD_BEFORE, after $LOAD_AFTER: other jobs shared the machine)."
    echo "Rootfs: ${ROOTFS_MB} MB, $ENTRIES entries. kiln also computes the DiffID"
    echo "and the digest (two SHA-256 passes) that the anchors do not."
    echo
    echo "$REPORT"
    echo
    echo "Blob sizes (bytes): $(echo "$SIZES" | sed "s|$WORK/||" | awk '{printf "%s%s %s", (NR>1?", ":""), $1, $2}')."
    echo "Apply: $SAME."
  } >>"$REPO/bench/RESULTS.md"
  echo "appended to bench/RESULTS.md" >&2
fi
