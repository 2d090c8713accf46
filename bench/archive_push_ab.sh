#!/usr/bin/env bash
# archive-push of the same N real pgbench segments by two walvault binaries
# (before/after a change), R rounds; wall and CPU (user+sys) time per segment,
# and the after/before ratios.
#   bench/archive_push_ab.sh N R BEFORE-BINARY AFTER-BINARY
# The two binaries alternate segment by segment (before-after for one, after-
# before for the next, the other way round in the next round), each into its
# own repository, so that the drift of this virtual machine's disk and CPU
# over a run falls on both alike; every push is its own process, as
# PostgreSQL's archiver runs it. SEGMENTS=DIR: use the segment files in DIR
# (e.g. kept from an earlier run with KEEP_SEGMENTS=DIR) instead of making
# N new ones (~6 minutes).
set -euo pipefail
N=${1:-10}; R=${2:-6}; A=$(realpath "$3"); B=$(realpath "$4")
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup wv-ab build  # (its walvault is not used here)
cp "$A" "$W/wv-before"; cp "$B" "$W/wv-after"; chmod 755 "$W"/wv-*
if [ -n "${SEGMENTS:-}" ]; then
  mapfile -t PATHS < <(ls "$SEGMENTS" | grep '^[0-9A-F]\{24\}$' | sort | tail -n "$N" | sed "s|^|$SEGMENTS/|")
  [ "${#PATHS[@]}" -eq "$N" ] || { echo "SEGMENTS=$SEGMENTS: fewer than $N segment files" >&2; exit 2; }
  echo "segments: $N real 16 MiB segments from $SEGMENTS"
else
  make_segments 10
  echo "segments: ${#SEGS[@]} real 16 MiB segments from pgbench (scale 10)"
  if [ -n "${KEEP_SEGMENTS:-}" ]; then mkdir -p "$KEEP_SEGMENTS"; cp "${PATHS[@]}" "$KEEP_SEGMENTS/"; fi
fi
# One push, timed: prints "wall user sys" in seconds.
push() {  # binary-name repository segment-path
  local TIMEFORMAT='%R %U %S'
  { time as "$W/wv-$1" --repo "$W/repo-$1-$2" --spool-path "$W/spool-$1-$2" archive-push --parallel 1 "$3" >/dev/null; } 2>&1
}
for r in $(seq "$R"); do
  for v in before after; do
    rm -rf "$W/repo-$v-$r" "$W/spool-$v-$r"
    as "$W/wv-$v" --repo "$W/repo-$v-$r" repo init >/dev/null
  done
  i=0
  for p in "${PATHS[@]}"; do
    order="before after"; [ $(( (i + r) % 2 )) -eq 1 ] && order="after before"
    for v in $order; do echo "$r $v $(push "$v" "$r" "$p")"; done
    i=$((i + 1))
  done > "$W/times-$r"
  awk -v r="$r" '{ w[$2] += $3; c[$2] += $4 + $5; n[$2]++ }
    END { printf "round %d: before wall %.1f ms/seg cpu %.1f; after wall %.1f cpu %.1f\n", r,
          w["before"] * 1000 / n["before"], c["before"] * 1000 / n["before"],
          w["after"] * 1000 / n["after"], c["after"] * 1000 / n["after"] }' "$W/times-$r"
  # Removed after the last round, not here: on ext4 without a journal (this
  # machine's root file system) a new inode skips every inode of its group
  # deleted in the last minute, so a round's removals would tax the next
  # round's pushes, and the binary that creates more files the more.
  # REMOVE_EACH_ROUND=1 removes them here all the same.
  if [ "${REMOVE_EACH_ROUND:-0}" = 1 ]; then
    for v in before after; do rm -rf "$W/repo-$v-$r" "$W/spool-$v-$r"; done
  fi
done
cat "$W"/times-* | awk '{ w[$2] += $3; c[$2] += $4 + $5; n[$2]++ }
  END { printf "mean of %d pushes each: before wall %.2f ms/seg, cpu %.2f; after wall %.2f, cpu %.2f\n",
          n["before"], w["before"] * 1000 / n["before"], c["before"] * 1000 / n["before"],
          w["after"] * 1000 / n["after"], c["after"] * 1000 / n["after"]
        printf "after/before: wall %+.1f%%, cpu %+.1f%%\n", (w["after"] / w["before"] - 1) * 100,
          (c["after"] / c["before"] - 1) * 100 }'
