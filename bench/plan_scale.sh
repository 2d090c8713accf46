#!/usr/bin/env bash
# Planning at scale: the store requests and wall time of `walvault wal list`
# (read_all_meta, the read every restore plan, info, check and drill make)
# over N segments' metadata in an S3 repository, before and after
# `walvault wal compact` writes the WAL catalogues (docs/benchmarks.md,
# "Planning at scale").
#
#   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... S3_ENDPOINT=http://127.0.0.1:7480 \
#   bench/plan_scale.sh [build-dir=build] [counts="1000 20000"]
#
# The metadata is synthetic (bench/plan_scale_gen.cpp: 16 MiB segments,
# ~450-byte JSON each); only wal/meta/ and the cluster object are written.
# Requests are counted from --log-level debug's store lines: a LIST counts
# one request per 1,000 names (S3's page). RUNS (3) timings each; medians.
# Credentials come from the environment only (never argv).
set -euo pipefail
BUILD=$(realpath "${1:-build}")
COUNTS=${2:-1000 20000}
RUNS=${RUNS:-3}
cd "$(dirname "$0")/.."
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${S3_ENDPOINT:?}"
export AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$S3_ENDPOINT
cmake --build "$BUILD" -j2 --target walvault plan_scale_gen >/dev/null
WV=$BUILD/cli/walvault
GEN=$BUILD/tests/plan_scale_gen
W=$(mktemp -d /tmp/wv-planscale-XXXXXX)
trap 'rm -rf "$W"' EXIT
export WALVAULT_CONFIG=$W/walvault.conf
: > "$WALVAULT_CONFIG"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Requests one `wal list` makes: GETs, HEADs and LIST pages.
requests() {
  "$WV" --repo "$1" --log-level debug wal list 2>&1 >/dev/null |
    awk '/ store .* = / {
           if ($0 ~ / list /) { n = $0; sub(/.* = /, "", n); sub(/ .*/, "", n); pages = int((n + 999) / 1000); r += pages ? pages : 1 }
           else r++ }
         END { print r + 0 }'
}
# Median wall seconds of `wal list`.
plan_seconds() {
  for _ in $(seq "$RUNS"); do
    local t0 t1; t0=$(date +%s%N); "$WV" --repo "$1" wal list >/dev/null; t1=$(date +%s%N)
    echo "scale=3; ($t1 - $t0) / 1000000000" | bc
  done | median
}

echo "load: $(cat /proc/loadavg)"
printf '%-9s %-8s %9s %9s\n' segments phase requests seconds
for n in $COUNTS; do
  bucket=wvplan-$n-$(date +%s)
  printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
    curl -sf -K - --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
      -X PUT "$S3_ENDPOINT/$bucket" -o /dev/null
  repo=s3://$bucket
  "$GEN" "$repo" "$n"
  printf '%-9s %-8s %9s %9s\n' "$n" before "$(requests "$repo")" "$(plan_seconds "$repo")"
  "$WV" --repo "$repo" wal compact >/dev/null
  printf '%-9s %-8s %9s %9s\n' "$n" after "$(requests "$repo")" "$(plan_seconds "$repo")"
done
echo "load: $(cat /proc/loadavg)"
