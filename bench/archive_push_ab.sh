#!/usr/bin/env bash
# archive-push of the same N real pgbench segments by two walvault binaries
# (before/after a change), alternating, R rounds; wall and CPU (user+sys) time
# per segment, CPU being the steadier figure on a shared machine.
#   bench/archive_push_ab.sh N R BEFORE-BINARY AFTER-BINARY
set -euo pipefail
N=${1:-10}; R=${2:-6}; A=$(realpath "$3"); B=$(realpath "$4")
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup wv-ab "$(dirname "$(dirname "$B")")"  # B is <build>/cli/walvault
cp "$A" "$W/wv-before"; cp "$B" "$W/wv-after"; chmod 755 "$W"/wv-*
make_segments 10
echo "segments: ${#SEGS[@]} real 16 MiB segments from pgbench (scale 10)"
for r in $(seq "$R"); do
  order="before after"; [ $((r % 2)) -eq 0 ] && order="after before"
  for v in $order; do
    rm -rf "$W/repo-$v"
    as "$W/wv-$v" --repo "$W/repo-$v" repo init >/dev/null
    t=$( { TIMEFORMAT='%R %U %S'; time as bash -c 'for p in "$@"; do '"$W/wv-$v"' --repo '"$W/repo-$v"' --spool-path '"$W/spool-$v-$r"' archive-push --parallel 1 "$p" || exit 1; done' _ "${PATHS[@]}" ; } 2>&1 )
    echo "$v $t" | awk -v n="$N" '{ printf "%s wall %.1f ms/seg, cpu (user+sys) %.1f ms/seg\n", $1, $2*1000/n, ($3+$4)*1000/n }'
  done
done
for v in before after; do
  echo "$v: wal/meta bytes on disk $(du -cb $(find "$W/repo-$v" -path '*wal/meta*' -type f) | tail -1 | cut -f1) for $N segments"
done
