#!/usr/bin/env bash
# archive-push benchmark: N real 16 MiB segments from a pgbench run, pushed
# one call per segment (as archive_command does) by walvault and, when it is
# installed, by pgBackRest (zst level 1) on the same segments, side by side.
#   bench/archive_push.sh [N=20] [build-dir=build]
# Prints ms/segment and the ratio; see docs/benchmarks.md for recorded runs.
set -euo pipefail
N=${1:-20}
BUILD=$(realpath "${2:-build}")
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup wv-bench "$BUILD"

# 1. Real segments: archive_command copies each completed segment aside.
make_segments 10
echo "segments: ${#SEGS[@]} real 16 MiB segments from pgbench (scale 10)"

# 2. walvault, one call per segment, no batching.
as "$WV" --repo "$W/wv-repo" repo init >/dev/null
WV_MS=$(per_segment_ms "$WV --repo $W/wv-repo --spool-path $W/spool archive-push --parallel 1")
WV_BYTES=$(du -sb "$W/wv-repo" | cut -f1)

# 3. walvault in batch mode: PostgreSQL's sequence of calls with .ready files.
as "$WV" --repo "$W/wv-batch" repo init >/dev/null
for s in "${SEGS[@]}"; do as touch "$W/segments/pg_wal/archive_status/$s.ready"; done
# (.ready files stay: a call only looks at segments after its own.)
WVB_MS=$(per_segment_ms "$WV --repo $W/wv-batch --spool-path $W/spool archive-push --parallel $(nproc)")

# 4. Encrypted repository opened by key file (the recommended hot path).
export WALVAULT_PASSPHRASE=bench-passphrase
as env WALVAULT_PASSPHRASE=bench-passphrase "$WV" --repo "$W/wv-enc" repo init --encrypt >/dev/null
as env WALVAULT_PASSPHRASE=bench-passphrase "$WV" --repo "$W/wv-enc" repo add-key-file --out "$W/key" >/dev/null
unset WALVAULT_PASSPHRASE
WVE_MS=$(per_segment_ms "$WV --repo $W/wv-enc --key-file $W/key archive-push --parallel 1")

# 5. Process start to repository open: `repo info` (exec, parse, open the
#    encrypted repository by key file, read the cluster object, print, exit),
#    next to /bin/true for the cost of exec itself on this machine. 100 runs.
time_loop_us() {
  if perf stat -r 1 true >/dev/null 2>&1; then  # precise where perf works
    perf stat -r 100 "$@" 2>&1 >/dev/null | awk '/seconds time elapsed/ { printf "%d\n", $1 * 1000000 }'
    return
  fi
  local t0 t1; t0=$(now_ns)
  for _ in $(seq 100); do "$@" >/dev/null; done
  t1=$(now_ns); echo $(( (t1 - t0) / 1000 / 100 ))
}
OPEN_US=$(time_loop_us "$WV" --repo "$W/wv-enc" --key-file "$W/key" repo info)
BASE_US=$(time_loop_us /bin/true)

# 6. pgBackRest 2.45, zst level 1, one call per segment.
if command -v pgbackrest >/dev/null; then
  cat > "$W/pgbackrest.conf" <<CONF
[global]
repo1-path=$W/pgbr-repo
compress-type=zst
compress-level=1
CONF
  pgbr_common_conf >> "$W/pgbackrest.conf"
  chmod 644 "$W/pgbackrest.conf"
  as pgbackrest --config="$W/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
  BR_MS=$(per_segment_ms "pgbackrest --config=$W/pgbackrest.conf --stanza=bench archive-push")
  BR_BYTES=$(du -sb "$W/pgbr-repo/archive" | cut -f1)
fi

printf '\n%-46s %10s %12s\n' "archive-push, $N segments" "ms/segment" "repo bytes"
printf '%-46s %10d %12d\n' "walvault, one call each" "$WV_MS" "$WV_BYTES"
printf '%-46s %10d\n' "walvault, batch (--parallel $(nproc))" "$WVB_MS"
printf '%-46s %10d\n' "walvault, encrypted, key file" "$WVE_MS"
if [ -n "${BR_MS:-}" ]; then
  printf '%-46s %10d %12d\n' "pgBackRest $(pgbackrest version | cut -d' ' -f2), zst:1" "$BR_MS" "$BR_BYTES"
  awk -v a="$BR_MS" -v b="$WV_MS" -v c="$WVB_MS" -v d="$WVE_MS" 'BEGIN {
    printf "ratio pgBackRest/walvault: one call %.2fx, batch %.2fx, encrypted %.2fx\n", a/b, a/c, a/d }'
else
  echo "pgbackrest not installed: no side-by-side figure"
fi
echo "process start to repository open (whole 'repo info', encrypted, key file): ${OPEN_US} us; /bin/true: ${BASE_US} us; difference $((OPEN_US - BASE_US)) us"
