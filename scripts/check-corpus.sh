#!/usr/bin/env bash
# Run `kiln build --call targets` (and `check`, informational) over every
# Dockerfile under DIR, e.g. a checkout of the docker-library repositories.
# Prints one line per failure and a count; exits 1 if any failed.
#   scripts/check-corpus.sh /path/to/dockerfiles [path/to/kiln]
set -uo pipefail
dir="${1:?usage: check-corpus.sh DIR [KILN]}"
kiln="${2:-$(dirname "$0")/../target/release/kiln}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
total=0 failed=0 findings=0
while IFS= read -r -d '' f; do
  total=$((total + 1))
  if ! out="$("$kiln" build --call targets -f "$f" "$ctx" 2>&1)"; then
    failed=$((failed + 1))
    printf 'FAIL %s\n%s\n' "$f" "$out"
  fi
  "$kiln" build --call check -f "$f" "$ctx" >/dev/null 2>&1 || findings=$((findings + 1))
done < <(find "$dir" -type f ! -name '*.template' ! -name 'SOURCES.txt' ! -name '*.md' -print0 | sort -z)
echo "corpus: $total Dockerfiles, $((total - failed)) passed build --call targets, $failed failed; $findings had build-check findings"
[ "$failed" -eq 0 ]
