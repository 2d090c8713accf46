#!/usr/bin/env bash
# backup / restore / PITR benchmark: walvault side by side with pgBackRest 2.45
# (zst level 1, process-max 2, full then incr) and pg_basebackup
# (-Ft --compress=client-zstd:1) on one throwaway cluster whose archive_command
# pushes every segment to both walvault's and pgBackRest's repositories.
#   bench/backup_restore.sh [build-dir=build]      (or WALVAULT=/path/to/walvault)
# Sizes (env): SCALE=100 (pgbench), RANDOM_MB=1024 (table of random base64 text),
# CHURN_PCT=5 (pgbench_accounts rows updated between the two backups),
# PITR_WAL_MB=1024 (WAL generated after the backups and replayed by PITR).
# The "wv --local" column: walvault backup --local (the data directory read on
# this host) into a repository of its own, which archive_command also feeds;
# its second backup is the map-based incremental (reads only the chunks the
# block maps name; the line says why when it read everything).
# CHECKSUMS=0 (1: initdb --data-checksums; local backups then verify pages).
# Other knobs: PARALLEL=2 (walvault --parallel, pgBackRest process-max),
# CHURN_MODE=spread|range, PGBR_ASYNC_GET=1 (pgBackRest archive-get async during
# PITR; 0: synchronous), DROP_CACHES=0 (1: drop the page cache before each timed
# step; affects everyone on the machine; every timed step starts after a
# sync either way), KEEP=0 (1: keep the work directory), CHUNK_SIZE= (walvault
# repo init --chunk-size, e.g. 4MiB; empty: walvault's default), SETTLE_S=30
# (seconds of quiet after the data load and after the PITR WAL, before the
# timed backups and restores: this virtual disk keeps writing back for a while
# after a burst, and the first timed runs paid for it).
# WAL_SHAPE=fpi (default: the PITR WAL is PITR_WAL_MB of pgbench, most of it
# full-page images) or few-fpi (the source runs with shared_buffers = 512MB and
# max_wal_size = 4GB and the PITR WAL is 30 s of unthrottled pgbench: few
# full-page images, so redo reads the pages it changes); WARM_UP=write
# (walvault restore --warm-up: write, fadvise or off); WV_START=1 (walvault's
# PITR is restore --start, which starts the server and promotes it at the
# target without an end-of-recovery checkpoint; 0: restore, then pg_ctl start
# as for pgBackRest).
# Each PITR run prints where its seconds went (server log with log_checkpoints:
# redo, WAL rate, segments restored, the end-of-recovery checkpoint; the
# startup process's CPU, run-queue wait and storage reads from /proc), and
# after the four runs what one restore_command call costs for each tool.
# Smoke test: SCALE=5 RANDOM_MB=50 PITR_WAL_MB=64 bench/backup_restore.sh
# Must run as root (it runs every PostgreSQL, pgBackRest and walvault process as
# the postgres user) or as an unprivileged user that can run PostgreSQL.
set -euo pipefail
SCALE=${SCALE:-100}
RANDOM_MB=${RANDOM_MB:-1024}
CHURN_PCT=${CHURN_PCT:-5}
CHURN_MODE=${CHURN_MODE:-spread}
PITR_WAL_MB=${PITR_WAL_MB:-1024}
PARALLEL=${PARALLEL:-2}
PGBR_ASYNC_GET=${PGBR_ASYNC_GET:-1}
DROP_CACHES=${DROP_CACHES:-0}
KEEP=${KEEP:-0}
CHUNK_SIZE=${CHUNK_SIZE:-}
SETTLE_S=${SETTLE_S:-30}
CHECKSUMS=${CHECKSUMS:-0}
WAL_SHAPE=${WAL_SHAPE:-fpi}
WARM_UP=${WARM_UP:-write}
WV_START=${WV_START:-1}
case "$WAL_SHAPE" in fpi|few-fpi) ;; *) echo "WAL_SHAPE: fpi or few-fpi, not '$WAL_SHAPE'" >&2; exit 2 ;; esac
if [ -n "${1:-}" ]; then WALVAULT="$1/cli/walvault"; fi
if [ -n "${WALVAULT:-}" ]; then WALVAULT=$(realpath -m "$WALVAULT"); fi
cd "$(dirname "$0")/.."
WALVAULT=${WALVAULT:-$PWD/build/cli/walvault}
[ -x "$WALVAULT" ] || { echo "no walvault binary at $WALVAULT (give a build dir or WALVAULT=)" >&2; exit 2; }
PGBIN=/usr/lib/postgresql/15/bin
for b in initdb pg_ctl postgres psql pgbench pg_basebackup; do
  [ -x "$PGBIN/$b" ] || { echo "$PGBIN/$b missing: run scripts/setup" >&2; exit 2; }
done
command -v pgbackrest >/dev/null || { echo "pgbackrest missing: run scripts/setup" >&2; exit 2; }
[ -f /usr/share/postgresql/15/extension/pgcrypto.control ] || { echo "pgcrypto missing" >&2; exit 2; }
TIMEV=(); [ -x /usr/bin/time ] && TIMEV=(/usr/bin/time -v)

RUNAS=(); [ "$(id -u)" -eq 0 ] && RUNAS=(setpriv --reuid=postgres --regid=postgres --init-groups)
W=$(mktemp -d /tmp/wvbench-XXXXXX); chmod 755 "$W"
[ "$(id -u)" -eq 0 ] && chown postgres: "$W"
L="$W/logs"
as() { "${RUNAS[@]}" env HOME="$W" "$@"; }
as mkdir -p "$W/bin" "$L" "$W/pgbb" "$W/restore"
cp "$WALVAULT" "$W/bin/walvault"; chmod 755 "$W/bin/walvault"
WV="$W/bin/walvault"
WVR="$W/wv-repo"; BRR="$W/pgbr-repo"
WVG=("$WV" --repo "$WVR" --spool-path "$W/wv-spool")  # walvault with its global options
WVLR="$W/wv-local-repo"; WVLG=("$WV" --repo "$WVLR" --spool-path "$W/wv-spool")  # --local's
cd "$W"

PORT=$(( 20000 + RANDOM % 20000 ))
DATA="$W/data"
RUNNING=()  # data directories of started servers, stopped on exit
cleanup() {
  local d
  for d in "${RUNNING[@]}"; do as "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
  if [ "$KEEP" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
die() { echo "FAILED: $*" >&2; exit 1; }
# Runs a command as postgres with its output in a log; on failure prints the
# command and the end of the log and stops.
run_logged() {
  local log=$1; shift
  local rc=0
  as "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAILED (exit $rc): $*" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}
# timed VAR LOG CMD...: wall seconds of CMD into VAR.
timed() {
  local __var=$1 __log=$2 __t0; shift 2
  drop_caches
  __t0=$(now_ns)
  run_logged "$__log" "$@"
  printf -v "$__var" '%s' "$(secs_since "$__t0")"
}
# Before every timed step: write back what earlier steps left dirty (and let
# the journal commit the previous run's deletes and discards), so no run pays
# for another's writeback; with DROP_CACHES=1 also empty the page cache.
drop_caches() { sync; if [ "$DROP_CACHES" = 1 ]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
peak_rss_mib() {  # from a /usr/bin/time -v output file
  awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1" 2>/dev/null || true
}
dir_bytes() { du -sb "$1" | cut -f1; }
# Repository bytes without the WAL archive (base backups only).
wv_backup_bytes() {
  local total=0 e
  for e in "$WVR"/*; do [ "$(basename "$e")" = wal ] || total=$((total + $(dir_bytes "$e"))); done
  echo "$total"
}
br_backup_bytes() { dir_bytes "$BRR/backup"; }
psqlq() { as "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h "$W" -p "${2:-$PORT}" -U postgres -d postgres -c "$1"; }
# WAL for PITR is made with synchronous_commit off: same WAL, no wait on fsync per commit.
pgbench_() { as env PGOPTIONS='-c synchronous_commit=off' "$PGBIN/pgbench" -h "$W" -p "$PORT" -U postgres "$@" postgres; }

# Waits until the segment holding the last WAL written so far is archived
# (by both tools: archive_command runs them in turn).
wait_archived() {
  local seg deadline=$(( $(date +%s) + 900 ))
  seg=$(psqlq "select pg_walfile_name(pg_switch_wal())")
  until [ "$(psqlq "select coalesce(last_archived_wal, '') >= '$seg' from pg_stat_archiver")" = t ]; do
    [ "$(date +%s)" -lt "$deadline" ] || {
      psqlq "select * from pg_stat_archiver" >&2; tail -n 20 "$L/source.log" >&2
      die "segment $seg not archived within 900 s"; }
    sleep 0.2
  done
}
warm_cache() { as find "$DATA" -type f -exec cat {} + >/dev/null 2>&1 || true; }

echo "walvault backup/restore/PITR benchmark: SCALE=$SCALE RANDOM_MB=$RANDOM_MB CHURN_PCT=$CHURN_PCT CHUNK_SIZE=${CHUNK_SIZE:-default} SETTLE_S=$SETTLE_S" \
     "($CHURN_MODE) PITR_WAL_MB=$PITR_WAL_MB PARALLEL=$PARALLEL, work dir $W"
echo "walvault: $WALVAULT ($(sha256sum "$WV" | cut -c1-12)); $(pgbackrest version);" \
     "$("$PGBIN/postgres" --version)"

# 1. Source cluster; archive_command pushes to both repositories.
run_logged "$L/initdb.log" "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust \
  $([ "$CHECKSUMS" = 1 ] && echo --data-checksums)
cat > "$W/pgbackrest.conf" <<CONF
[global]
repo1-path=$BRR
repo1-retention-full=10
compress-type=zst
compress-level=1
process-max=$PARALLEL
start-fast=y
log-level-console=warn
log-level-file=off
lock-path=$W/pgbr-lock
spool-path=$W/pgbr-spool
[global:archive-get]
archive-async=$([ "$PGBR_ASYNC_GET" = 1 ] && echo y || echo n)
[bench]
pg1-path=$DATA
pg1-socket-path=$W
pg1-port=$PORT
pg1-user=postgres
CONF
chmod 644 "$W/pgbackrest.conf"
BR=(pgbackrest --config="$W/pgbackrest.conf" --stanza=bench)
cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
archive_mode = on
archive_command = '$WV --repo $WVR --repo $WVLR --spool-path $W/wv-spool archive-push %p && ${BR[*]} archive-push %p'
max_wal_size = '4GB'
autovacuum = off    # the two backups of each tool see the same pages
CONF
# The few-FPI shape: pages stay in shared buffers between checkpoints.
[ "$WAL_SHAPE" = few-fpi ] && echo "shared_buffers = '512MB'" >> "$DATA/postgresql.conf"
run_logged "$L/repo-init.log" "${WVG[@]}" repo init --compress-level 1 \
  ${CHUNK_SIZE:+--chunk-size "$CHUNK_SIZE"}
run_logged "$L/repo-init-local.log" "${WVLG[@]}" repo init --compress-level 1 \
  ${CHUNK_SIZE:+--chunk-size "$CHUNK_SIZE"}
as "$PGBIN/pg_ctl" -D "$DATA" -l "$L/source.log" -w start >/dev/null
RUNNING+=("$DATA")
run_logged "$L/stanza.log" "${BR[@]}" stanza-create

# 2. Dataset: pgbench plus a table of random base64 text (zstd -1 keeps ~75%).
t0=$(now_ns)
run_logged "$L/pgbench-init.log" "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$W" -p "$PORT" -U postgres postgres
BLOB_ROWS=$(( RANDOM_MB * 896 ))  # 7 rows of ~1050 bytes per 8 KiB page
psqlq "create extension if not exists pgcrypto" >/dev/null
psqlq "create table blob (id int, payload text)" >/dev/null
done_rows=0
while [ "$done_rows" -lt "$BLOB_ROWS" ]; do  # 100k rows (~110 MB) per transaction
  n=$(( BLOB_ROWS - done_rows < 100000 ? BLOB_ROWS - done_rows : 100000 ))
  psqlq "insert into blob select g, encode(gen_random_bytes(750), 'base64')
         from generate_series($((done_rows + 1)), $((done_rows + n))) g" >/dev/null
  done_rows=$(( done_rows + n ))
done
psqlq "vacuum (freeze, analyze) blob" >/dev/null
psqlq "create table pitr_marker (x text, at timestamptz default clock_timestamp())" >/dev/null
psqlq "checkpoint" >/dev/null
wait_archived
DB_BYTES=$(psqlq "select pg_database_size('postgres')")
BLOB_BYTES=$(psqlq "select pg_total_relation_size('blob')")
BLOB_FILE="$DATA/$(psqlq "select pg_relation_filepath('blob')")"
SAMPLE=$(( 64 * 1048576 ))
BLOB_Z=$(head -c "$SAMPLE" "$BLOB_FILE" | zstd -1 -c | wc -c)
BLOB_IN=$(head -c "$SAMPLE" "$BLOB_FILE" | wc -c)
awk -v d="$DB_BYTES" -v b="$BLOB_BYTES" -v z="$BLOB_Z" -v i="$BLOB_IN" -v s="$(secs_since "$t0")" 'BEGIN {
  printf "dataset: database %.0f MiB, random table %.0f MiB (zstd -1 keeps %.0f%% of it), loaded and archived in %s s\n",
    d / 1048576, b / 1048576, 100 * z / i, s }'

settle() { sync; sleep "$SETTLE_S"; }
settle

# 3. Full backups.
prepare_backup() { psqlq "checkpoint" >/dev/null; wait_archived; warm_cache; }
PGBB_OPTS=(-h "$W" -p "$PORT" -U postgres -Ft --compress=client-zstd:1 -c fast)

# One round of backups, each after a checkpoint with the archive caught up and
# the data directory in the page cache: walvault, pgBackRest (--type=$2) and
# pg_basebackup. Sets WV_B<n>_T/_B/_RSS, BR_B<n>_T/_B and BB_B<n>_T/_B.
backup_round() {
  local n=$1 br_type=$2 before
  prepare_backup
  before=$(wv_backup_bytes)
  timed "WV_B${n}_T" "$L/wv-backup$n.log" "${TIMEV[@]}" -o "$L/wv-backup$n.time" \
    "${WVG[@]}" backup --pg "host=$W port=$PORT user=postgres" --parallel "$PARALLEL" --no-progress
  printf -v "WV_B${n}_B" '%s' "$(( $(wv_backup_bytes) - before ))"
  printf -v "WV_B${n}_RSS" '%s' "$(peak_rss_mib "$L/wv-backup$n.time")"

  prepare_backup
  before=$(br_backup_bytes)
  timed "BR_B${n}_T" "$L/br-backup$n.log" "${BR[@]}" --type="$br_type" backup
  printf -v "BR_B${n}_B" '%s' "$(( $(br_backup_bytes) - before ))"

  prepare_backup
  timed "WL_B${n}_T" "$L/wv-local-backup$n.log" "${WVLG[@]}" backup --local --pgdata "$DATA" \
    --pg "host=$W port=$PORT user=postgres" --parallel "$PARALLEL" --no-progress
  printf -v "WL_B${n}_B" '%s' "$(( $(dir_bytes "$WVLR") - $(dir_bytes "$WVLR/wal") - before_local ))"
  before_local=$(( $(dir_bytes "$WVLR") - $(dir_bytes "$WVLR/wal") ))
  # What the local backup read: the map-based incremental's line, or why it read everything.
  printf -v "WL_B${n}_HOW" '%s' "$(grep -m1 -E 'map-based incremental from|read every file whole' "$L/wv-local-backup$n.log" | sed 's/^backup [^:]*: //' || true)"

  prepare_backup
  timed "BB_B${n}_T" "$L/pgbb$n.log" "$PGBIN/pg_basebackup" "${PGBB_OPTS[@]}" -D "$W/pgbb/$n"
  printf -v "BB_B${n}_B" '%s' "$(dir_bytes "$W/pgbb/$n")"
}

before_local=0
backup_round 1 full
echo "full backups done: walvault ${WV_B1_T} s, walvault --local ${WL_B1_T} s, pgBackRest ${BR_B1_T} s, pg_basebackup ${BB_B1_T} s"

# 4. Churn, then the second backups (pgBackRest incremental).
t0=$(now_ns)
if [ "$CHURN_MODE" = range ]; then
  CHURN_WHERE="aid <= (select count(*) from pgbench_accounts) * $CHURN_PCT / 100"
else
  CHURN_WHERE="aid % 100 < $CHURN_PCT"
fi
CHURNED=$(psqlq "with u as (update pgbench_accounts set abalance = abalance + 1 where $CHURN_WHERE returning 1) select count(*) from u")
psqlq "checkpoint" >/dev/null
echo "churn: $CHURNED pgbench_accounts rows updated ($CHURN_MODE) in $(secs_since "$t0") s"

backup_round 2 incr
rm -rf "$W/pgbb"
echo "second backups done: walvault ${WV_B2_T} s, walvault --local ${WL_B2_T} s, pgBackRest ${BR_B2_T} s, pg_basebackup ${BB_B2_T} s"
echo "walvault --local 2nd backup: ${WL_B2_HOW:-?}"
as "${WVG[@]}" backup list > "$L/wv-backup-list.txt" 2>&1 || true
as "${BR[@]}" info > "$L/br-info.txt" 2>&1 || true

# 5. WAL for PITR: pgbench until ~PITR_WAL_MB, the target time between two
#    marker rows, a little more WAL after it, everything archived, then stop.
t0=$(now_ns)
LSN0=$(psqlq "select pg_current_wal_lsn()")
if [ "$WAL_SHAPE" = few-fpi ]; then
  pgbench_ -n -c 2 -j 2 -T 30 >>"$L/pgbench-pitr.log" 2>&1 || die "pgbench (see $L/pgbench-pitr.log)"
else
  while [ "$(psqlq "select pg_wal_lsn_diff(pg_current_wal_lsn(), '$LSN0') < $PITR_WAL_MB::numeric * 1048576")" = t ]; do
    pgbench_ -n -c 2 -j 2 -T 2 >>"$L/pgbench-pitr.log" 2>&1 || die "pgbench (see $L/pgbench-pitr.log)"
  done
fi
psqlq "insert into pitr_marker(x) values ('before')" >/dev/null
sleep 1
TARGET=$(psqlq "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
PITR_WAL_BYTES=$(psqlq "select pg_wal_lsn_diff(pg_current_wal_lsn(), '$LSN0')::bigint")
HISTORY_AT_TARGET=$(psqlq "select count(*) from pgbench_history")
sleep 1
psqlq "insert into pitr_marker(x) values ('after')" >/dev/null
pgbench_ -n -c 2 -j 2 -T 2 >>"$L/pgbench-pitr.log" 2>&1 || die "pgbench (see $L/pgbench-pitr.log)"
wait_archived
as "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
RUNNING=()
awk -v b="$PITR_WAL_BYTES" -v s="$(secs_since "$t0")" -v t="$TARGET" 'BEGIN {
  printf "PITR WAL: %.0f MiB after the second backups, target time %s, made and archived in %s s\n", b / 1048576, t, s }'
echo "PITR WAL shape: $WAL_SHAPE; walvault restore --warm-up $WARM_UP, $([ "$WV_START" = 1 ] && echo "--start (promoted at the target)" || echo "then pg_ctl start")"

settle

# 6. Restores: plain restore (files only) and PITR (restore start to a
#    successful CREATE TABLE on the promoted server), each into a fresh directory.
RPORT=$(( PORT + 1 ))
# Each run restores into a directory of its own, and restored directories are
# removed only at the end: for a minute after a mass delete, ext4 scans past
# the just-freed inodes (recently_deleted) on every file it creates, ~15% of
# a restore's CPU, which fell on whichever tool ran right after a delete.
RUN_NO=0
fresh_dir() { RUN_NO=$((RUN_NO + 1)); RD="$W/restore/run-$RUN_NO"; as mkdir -m 700 "$RD"; }
# Settings for a restored cluster: its own port, and no archiving into the
# benchmark's repositories.
restored_conf() { printf 'archive_mode = off\nport = %s\n' "$RPORT" | as tee -a "$1/postgresql.auto.conf" >/dev/null; }
# Starts the restored server and waits until it accepts writes; prints nothing.
start_until_writable() {
  local d=$1 log=$2 deadline=$(( $(date +%s) + 3600 ))
  as "$PGBIN/pg_ctl" -D "$d" -l "$log" start >/dev/null
  RUNNING+=("$d")
  until as "$PGBIN/psql" -XAtq -h "$W" -p "$RPORT" -U postgres -d postgres \
          -c 'create table t(x int)' >/dev/null 2>&1; do
    if ! as "$PGBIN/pg_ctl" -D "$d" status >/dev/null 2>&1 || [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 30 "$log" >&2; die "restored server in $d did not accept writes"
    fi
    sleep 0.02
  done
}
# Stops the restored server after checking what PITR replayed.
check_and_stop() {
  local d=$1 who=$2 markers hist
  markers=$(psqlq "select string_agg(x, ',' order by x) from pitr_marker" "$RPORT")
  hist=$(psqlq "select count(*) from pgbench_history" "$RPORT")
  local ok=WRONG
  if [ "$markers" = before ] && [ "$hist" = "$HISTORY_AT_TARGET" ]; then ok=ok; else PITR_OK=0; fi
  echo "  $who PITR check: markers '$markers' (want 'before'), pgbench_history rows $hist (want $HISTORY_AT_TARGET): $ok"
  as "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null
  RUNNING=()
}
PITR_OK=1
# Seconds from t0 (ns) to the first server log line matching a pattern.
log_at() {
  local line; line=$(grep -m1 "$2" "$3" | cut -c1-27) || true
  [ -n "$line" ] || { echo -; return; }
  awk -v a="$1" -v b="$(date -d "$line" +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}
# When redo started and when it was done, seconds from t0 (the restore's start).
pitr_phases() {
  echo "$(log_at "$1" 'redo starts at' "$2") $(log_at "$1" 'redo done at' "$2")"
}
# An LSN (X/Y) as a number of bytes.
lsn_bytes() { local hi=${1%/*} lo=${1#*/}; echo $(( (16#$hi << 32) + 16#$lo )); }
# One line of where a PITR's seconds went, from the server log (log_checkpoints
# is on by default in 15) and the startup process's I/O counters (sampled by
# sample_startup_io): t0 (ns), server log, I/O sample file.
pitr_detail() {
  local t0=$1 log=$2 io=$3 lsn0 lsn1 redo0 redo1 mib rate segs first last ck0 ck1 ckline ready promo usage
  lsn0=$(grep -m1 -o 'redo starts at [0-9A-F]*/[0-9A-F]*' "$log" | awk '{ print $4 }') || true
  lsn1=$(grep -m1 -o 'redo done at [0-9A-F]*/[0-9A-F]*' "$log" | awk '{ print $4 }') || true
  redo0=$(log_at "$t0" 'redo starts at' "$log"); redo1=$(log_at "$t0" 'redo done at' "$log")
  mib=-; rate=-
  if [ -n "$lsn0" ] && [ -n "$lsn1" ] && [ "$redo0" != - ] && [ "$redo1" != - ]; then
    mib=$(awk -v b="$(( $(lsn_bytes "$lsn1") - $(lsn_bytes "$lsn0") ))" 'BEGIN { printf "%.0f", b / 1048576 }')
    rate=$(awk -v m="$mib" -v a="$redo0" -v b="$redo1" 'BEGIN { if (b > a) printf "%.0f", m / (b - a); else print "-" }')
  fi
  segs=$(grep -c 'restored log file "[0-9A-F]\{24\}"' "$log" || true)
  first=$(log_at "$t0" 'restored log file "[0-9A-F]\{24\}"' "$log")
  last=$(grep 'restored log file "[0-9A-F]\{24\}"' "$log" | tail -n1 | cut -c1-27)
  [ -n "$last" ] && last=$(awk -v a="$t0" -v b="$(date -d "$last" +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') || last=-
  usage=$(grep -m1 -o 'redo done at .*elapsed: [0-9.]* s' "$log" | sed 's/.*system usage: //') || true
  ck0=$(log_at "$t0" 'checkpoint starting: end-of-recovery' "$log")
  ck1=$(log_at "$t0" 'checkpoint complete' "$log")
  ckline=$(grep -m1 -o 'checkpoint complete: wrote [0-9]* buffers.*total=[0-9.]* s' "$log" |
           sed -E 's/checkpoint complete: wrote ([0-9]+) buffers.*write=([0-9.]+) s, sync=([0-9.]+) s, total=([0-9.]+) s/\1 buffers, write \2 s, sync \3 s, total \4 s/') || true
  ready=$(log_at "$t0" 'ready to accept connections' "$log")
  promo=$(log_at "$t0" 'received promote request' "$log")
  # Promoted at the target (restore --start): no end-of-recovery checkpoint,
  # and a later checkpoint's line is not this one.
  if [ "$ck0" = - ]; then ck1=-; ckline=; fi
  echo "    server log (s from restore start): redo $redo0 -> $redo1 ($mib MiB of WAL, $rate MiB/s; PG: ${usage:--})"
  echo "    WAL segments restored: $segs, first at $first, last at $last; end-of-recovery checkpoint $ck0 -> $ck1 (${ckline:--}); promotion request taken at $promo; ready $ready"
  [ -s "$io" ] && awk '/^read_bytes/ { r = $2 } /^rchar/ { c = $2 } /^schedstat/ { on = $2; wait = $3 } END {
    printf "    startup process: on CPU %.2f s, runnable but waiting for a CPU %.2f s (the rest of its life it slept: restore_command, I/O, fsync);", on / 1e9, wait / 1e9
    printf " read %.1f MiB from storage (with the restore_command children it reaped), %.1f MiB by read calls\n", r / 1048576, c / 1048576 }' "$io"
  return 0
}
# Samples /proc/PID/io of the server's startup process until it exits (the
# last sample is at most 50 ms old). Background job: data dir, output file.
sample_startup_io() {
  local d=$1 out=$2 pm= pid= n=0
  while [ -z "$pm" ] && [ $n -lt 1200 ]; do pm=$(head -n1 "$d/postmaster.pid" 2>/dev/null) || true; n=$((n + 1)); sleep 0.05; done
  [ -n "$pm" ] || return 0
  n=0
  while [ -z "$pid" ] && [ -d "/proc/$pm" ] && [ $n -lt 1000 ]; do
    pid=$(pgrep -P "$pm" -f 'postgres: startup' | head -n1) || true; n=$((n + 1)); sleep 0.01
  done
  [ -n "$pid" ] || return 0
  while { cat "/proc/$pid/io" && awk '{ print "schedstat", $1, $2 }' "/proc/$pid/schedstat"; } > "$out.tmp" 2>/dev/null &&
        grep -q schedstat "$out.tmp"; do mv "$out.tmp" "$out"; sleep 0.05; done
  rm -f "$out.tmp"
}

# The two tools run in the order A B B A and each figure is the mean of its
# two runs: this virtual disk's durable write speed drifts during a run (and
# the first write to freshly freed blocks is slower), so a fixed order would
# favour whoever runs second. Every run is printed.
mean2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
wv_restore() {  # run number
  fresh_dir
  timed "WV_R_T$1" "$L/wv-restore-$1.log" "${TIMEV[@]}" -o "$L/wv-restore.time" \
    "${WVG[@]}" restore --pgdata "$RD" --parallel "$PARALLEL"
  WV_R_RSS=$(peak_rss_mib "$L/wv-restore.time")
  WV_R_BYTES=$(dir_bytes "$RD")
}
br_restore() {
  fresh_dir
  timed "BR_R_T$1" "$L/br-restore-$1.log" "${BR[@]}" --pg1-path="$RD" restore
  BR_R_BYTES=$(dir_bytes "$RD")
}
wv_restore 1; br_restore 1; br_restore 2; wv_restore 2
WV_R_T=$(mean2 "$WV_R_T1" "$WV_R_T2"); BR_R_T=$(mean2 "$BR_R_T1" "$BR_R_T2")
echo "restores done: walvault ${WV_R_T1} + ${WV_R_T2} s ($((WV_R_BYTES / 1048576)) MiB), pgBackRest ${BR_R_T1} + ${BR_R_T2} s ($((BR_R_BYTES / 1048576)) MiB)"

# walvault's PITR is one command: restore --start starts the server (pg_ctl)
# and returns once it accepts writes, promoted at the target without an
# end-of-recovery checkpoint (docs/decisions.md, "restore --start"); the
# settings restored_conf appends go in as --recovery-option.
wv_pitr() {  # run number
  [ "$WV_START" = 1 ] || { wv_pitr_then_pg_ctl "$1"; return; }
  fresh_dir; drop_caches
  RUNNING+=("$RD")
  sample_startup_io "$RD" "$L/wv-pitr-io-$1" & local sampler=$!
  t0=$(now_ns)
  run_logged "$L/wv-pitr-restore-$1.log" "${TIMEV[@]}" -o "$L/wv-pitr-restore.time" \
    "${WVG[@]}" restore --pgdata "$RD" --parallel "$PARALLEL" --target-time "$TARGET" --target-action promote \
    --warm-up "$WARM_UP" --start --pg-bin "$PGBIN" --server-log "$L/wv-pitr-server-$1.log" \
    --recovery-option "port=$RPORT" --recovery-option archive_mode=off
  as "$PGBIN/psql" -XAtq -h "$W" -p "$RPORT" -U postgres -d postgres -c 'create table t(x int)' >/dev/null ||
    die "walvault restore --start returned, but the server in $RD did not accept a write"
  printf -v "WV_P_T$1" %s "$(secs_since "$t0")"
  printf -v "WV_P_RESTORE_T$1" %s "$(log_at "$t0" 'starting PostgreSQL' "$L/wv-pitr-server-$1.log")"
  echo "  walvault PITR $1 $(grep -h '^warm-up' "$L/wv-pitr-restore-$1.log" || echo 'warm-up: -');" \
       "$(grep -h '^recovery_prefetch' "$RD/postgresql.auto.conf" || echo 'recovery_prefetch: default')"
  echo "  walvault PITR $1: $(grep -h '^server accepts' "$L/wv-pitr-restore-$1.log")"
  wv_pitr_report "$1" "$sampler"
}
# WV_START=0: walvault restore, then pg_ctl start as for pgBackRest (the
# end-of-recovery checkpoint included).
wv_pitr_then_pg_ctl() {  # run number
  fresh_dir; drop_caches
  t0=$(now_ns)
  run_logged "$L/wv-pitr-restore-$1.log" "${TIMEV[@]}" -o "$L/wv-pitr-restore.time" \
    "${WVG[@]}" restore --pgdata "$RD" --parallel "$PARALLEL" --target-time "$TARGET" --target-action promote \
    --warm-up "$WARM_UP"
  printf -v "WV_P_RESTORE_T$1" %s "$(secs_since "$t0")"
  echo "  walvault PITR $1 $(grep -h '^warm-up' "$L/wv-pitr-restore-$1.log" || echo 'warm-up: -');" \
       "$(grep -h '^recovery_prefetch' "$RD/postgresql.auto.conf" || echo 'recovery_prefetch: default')"
  restored_conf "$RD"
  sample_startup_io "$RD" "$L/wv-pitr-io-$1" & local sampler=$!
  start_until_writable "$RD" "$L/wv-pitr-server-$1.log"
  printf -v "WV_P_T$1" %s "$(secs_since "$t0")"
  wv_pitr_report "$1" "$sampler"
}
wv_pitr_report() {  # run number, sampler's PID
  wait "$2" || true
  read -r WV_P_REDO0 WV_P_REDO1 <<<"$(pitr_phases "$t0" "$L/wv-pitr-server-$1.log")"
  echo "  walvault PITR $1: restore command done at $(eval echo "\$WV_P_RESTORE_T$1") s, writable at $(eval echo "\$WV_P_T$1") s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  pitr_detail "$t0" "$L/wv-pitr-server-$1.log" "$L/wv-pitr-io-$1"
  WV_P_RSS=$(peak_rss_mib "$L/wv-pitr-restore.time")
  check_and_stop "$RD" walvault
}
br_pitr() {
  fresh_dir; drop_caches
  t0=$(now_ns)
  run_logged "$L/br-pitr-restore-$1.log" "${BR[@]}" --pg1-path="$RD" --type=time --target="$TARGET" \
    --target-action=promote restore
  printf -v "BR_P_RESTORE_T$1" %s "$(secs_since "$t0")"
  restored_conf "$RD"
  sample_startup_io "$RD" "$L/br-pitr-io-$1" & local sampler=$!
  start_until_writable "$RD" "$L/br-pitr-server-$1.log"
  printf -v "BR_P_T$1" %s "$(secs_since "$t0")"
  wait "$sampler" || true
  read -r BR_P_REDO0 BR_P_REDO1 <<<"$(pitr_phases "$t0" "$L/br-pitr-server-$1.log")"
  echo "  pgBackRest PITR $1: restore command done at $(eval echo "\$BR_P_RESTORE_T$1") s, writable at $(eval echo "\$BR_P_T$1") s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  pitr_detail "$t0" "$L/br-pitr-server-$1.log" "$L/br-pitr-io-$1"
  check_and_stop "$RD" pgBackRest
}
wv_pitr 1; br_pitr 1; br_pitr 2; wv_pitr 2

# What one restore_command call costs, as PostgreSQL runs it (/bin/sh -c, one
# process per WAL file), on segments the PITR replayed: walvault archive-get
# from its repository (--prefetch 0) and from its spool (filled by the call
# before, as the prefetcher does), pgBackRest archive-get synchronous and
# async (from its spool queue). Milliseconds per call, mean of 8.
restore_command_cost() {
  local segs out="$W/rc-cost" d="$W/rc-dest"
  mapfile -t segs < <(grep -o 'restored log file "[0-9A-F]\{24\}"' "$L/wv-pitr-server-2.log" | cut -d'"' -f2 | head -n 18)
  [ "${#segs[@]}" -ge 18 ] || { echo "restore_command cost: fewer than 18 segments replayed, skipped"; return 0; }
  as mkdir -p "$d"
  # calls CMD-PREFIX SEGMENTS...: mean ms of "sh -c 'CMD-PREFIX SEG DEST'"
  calls() {
    local pre=$1; shift
    as bash -c 'pre=$1; d=$2; shift 2; tot=0; n=0
      for s in "$@"; do t0=$(date +%s%N); sh -c "$pre $s $d/$s" >/dev/null 2>&1 || echo "failed: $pre $s" >&2
        tot=$((tot + $(date +%s%N) - t0)); n=$((n + 1)); rm -f "$d/$s"; done
      awk -v t="$tot" -v n="$n" "BEGIN { printf \"%.1f\", t / n / 1e6 }"' _ "$pre" "$d" "$@"
  }
  local wv="${WVG[*]} archive-get" br="${BR[*]} --pg1-path=$DATA archive-get"
  local wv_repo wv_spool br_sync br_async
  wv_repo=$(calls "$wv --prefetch 0" "${segs[@]:0:8}")
  as rm -rf "$W/wv-spool"/*/get
  calls "$wv" "${segs[8]}" >/dev/null; sleep 3
  wv_spool=$(calls "$wv" "${segs[@]:9:8}")
  br_sync=$(calls "$br --archive-async=n" "${segs[@]:0:8}")
  calls "$br --archive-async=y" "${segs[8]}" >/dev/null; sleep 3
  br_async=$(calls "$br --archive-async=y" "${segs[@]:9:8}")
  echo "restore_command cost per call (ms, mean of 8; load average $(cut -d' ' -f1-3 /proc/loadavg)):" \
       "walvault from the repository $wv_repo, from its spool $wv_spool;" \
       "pgBackRest synchronous $br_sync, async from its spool $br_async"
}
restore_command_cost
rm -rf "$W/restore"
WV_P_T=$(mean2 "$WV_P_T1" "$WV_P_T2"); BR_P_T=$(mean2 "$BR_P_T1" "$BR_P_T2")
WV_P_RESTORE_T=$(mean2 "$WV_P_RESTORE_T1" "$WV_P_RESTORE_T2")
BR_P_RESTORE_T=$(mean2 "$BR_P_RESTORE_T1" "$BR_P_RESTORE_T2")
echo "PITR done: walvault ${WV_P_T1} + ${WV_P_T2} s (restore ${WV_P_RESTORE_T1} + ${WV_P_RESTORE_T2} s)," \
     "pgBackRest ${BR_P_T1} + ${BR_P_T2} s (restore ${BR_P_RESTORE_T1} + ${BR_P_RESTORE_T2} s)"

# 7. Report.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
ratio() { [ "$1" != - ] && [ "$2" != - ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }' || echo -; }
row() {  # label walvault pgBackRest pg_basebackup unit(s|B) [walvault --local]
  local f=("$2" "$3" "$4" "${6:--}") i
  for i in 0 1 2 3; do
    if [ "${f[$i]}" = - ]; then continue; fi
    if [ "$5" = B ]; then f[i]=$(mib "${f[i]}"); else f[i]="${f[i]} s"; fi
  done
  printf '%-40s %14s %14s %14s %10s %10s %14s %10s\n' "$1" "${f[0]}" "${f[1]}" "${f[2]}" \
    "$(ratio "$2" "$3")" "$(ratio "$2" "$4")" "${f[3]}" "$(ratio "${6:--}" "$4")"
}
echo
printf '%-40s %14s %14s %14s %10s %10s %14s %10s\n' "metric" "walvault" "pgBackRest" "pg_basebackup" \
  "wv/pgBR" "wv/pgbb" "wv --local" "local/pgbb"
row "full backup, wall time" "$WV_B1_T" "$BR_B1_T" "$BB_B1_T" s "$WL_B1_T"
row "full backup, repository bytes" "$WV_B1_B" "$BR_B1_B" "$BB_B1_B" B "$WL_B1_B"
row "2nd backup after churn, wall time" "$WV_B2_T" "$BR_B2_T" "$BB_B2_T" s "$WL_B2_T"
row "2nd backup after churn, bytes added" "$WV_B2_B" "$BR_B2_B" "$BB_B2_B" B "$WL_B2_B"
row "restore (files only), wall time, mean" "$WV_R_T" "$BR_R_T" - s
row "PITR: restore start to writable, mean" "$WV_P_T" "$BR_P_T" - s
row "  restore command done at" "$WV_P_RESTORE_T" "$BR_P_RESTORE_T" - s
row "  redo started at (server log, 2nd)" "$WV_P_REDO0" "$BR_P_REDO0" - s
row "  redo done at (server log, 2nd)" "$WV_P_REDO1" "$BR_P_REDO1" - s
echo "(pgBackRest: full, then incr; its PITR archive-get async=$([ "$PGBR_ASYNC_GET" = 1 ] && echo y || echo n);" \
     "pg_basebackup: two full backups, -c fast, WAL streamed into the tar set; repository bytes exclude the WAL archive)"
if [ -n "${TIMEV[*]}" ]; then
  echo "walvault peak RSS: full backup ${WV_B1_RSS} MiB, 2nd backup ${WV_B2_RSS} MiB, restore ${WV_R_RSS} MiB, PITR restore command ${WV_P_RSS} MiB"
else
  echo "walvault peak RSS: /usr/bin/time not installed, skipped"
fi
verdict() { if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a <= b) }'; then echo "PASS  $1"; else echo "FAIL  $1"; fi; }
echo
echo "bar:"
verdict "backup no slower than pg_basebackup ($WV_B1_T s vs $BB_B1_T s)" "$WV_B1_T" "$BB_B1_T"
verdict "local full backup at most 0.5x pg_basebackup's ($WL_B1_T s vs 0.5 x $BB_B1_T s)" "$WL_B1_T" "$(awk -v b="$BB_B1_T" 'BEGIN { print 0.5 * b }')"
verdict "restore at most 0.6x pgBackRest's ($WV_R_T s vs 0.6 x $BR_R_T s)" "$WV_R_T" "$(awk -v b="$BR_R_T" 'BEGIN { print 0.6 * b }')"
verdict "PITR at most 0.6x pgBackRest's ($WV_P_T s vs 0.6 x $BR_P_T s)" "$WV_P_T" "$(awk -v b="$BR_P_T" 'BEGIN { print 0.6 * b }')"
[ "$PITR_OK" = 1 ] || echo "FAIL  a PITR restore did not stop at the target (see the checks above)"
verdict "2nd-backup growth no more than pgBackRest's incr ($(mib "$WV_B2_B") vs $(mib "$BR_B2_B"))" "$WV_B2_B" "$BR_B2_B"
echo "(walvault --local 2nd backup: ${WL_B2_HOW:-?})"
verdict "local 2nd backup (map-based) at most 0.25x pgBackRest's incr ($WL_B2_T s vs 0.25 x $BR_B2_T s)" "$WL_B2_T" "$(awk -v b="$BR_B2_T" 'BEGIN { print 0.25 * b }')"
verdict "local 2nd backup bytes no more than pgBackRest's incr ($(mib "$WL_B2_B") vs $(mib "$BR_B2_B"))" "$WL_B2_B" "$BR_B2_B"
