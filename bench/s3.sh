#!/usr/bin/env bash
# S3 benchmark: archive-push latency (ms/segment, one call each and batch) and
# backup/restore throughput (MB/s) of walvault against an S3 server, side by
# side with pgBackRest on the same server when it can reach it.
#
#   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... S3_ENDPOINT=http://127.0.0.1:7482 \
#   [S3_TLS_ENDPOINT=https://127.0.0.1:7483 S3_CA_FILE=rgw.crt] bench/s3.sh [N=10] [build-dir=build]
#
# Credentials come from the environment only (never argv; walvault and
# pgBackRest read them from there). pgBackRest 2.45's S3 driver always speaks
# TLS, so its column needs S3_TLS_ENDPOINT (the same server's TLS port; Ceph
# RGW: `rgw frontends = beast endpoint=... ssl_endpoint=... ssl_certificate=...`);
# walvault then runs over TLS too, plus one plain-HTTP archive-push figure.
# RUNS (3) repetitions of everything, each into fresh repositories; medians.
# SCALE (30): pgbench scale of the backed-up cluster. Needs root (setpriv to
# postgres) and an S3 server with room for RUNS x (2 backups + 3N segments).
set -euo pipefail
N=${1:-10}
BUILD=$(realpath "${2:-build}")
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SCALE=${SCALE:-30}
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${S3_ENDPOINT:?}"
BUCKET=${S3_BUCKET:-wvbench-$(date +%s)}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup wv-s3bench "$BUILD"
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# walvault's S3 settings: the endpoint from AWS_ENDPOINT_URL, the CA in a config file.
export AWS_REGION=us-east-1
export WALVAULT_CONFIG="$W/walvault.conf"
if [ -n "${S3_TLS_ENDPOINT:-}" ]; then
  cp "${S3_CA_FILE:?S3_TLS_ENDPOINT needs S3_CA_FILE}" "$W/ca.crt"; chmod 644 "$W/ca.crt"
  echo "s3-ca-file = $W/ca.crt" > "$WALVAULT_CONFIG"
  WV_ENDPOINT=$S3_TLS_ENDPOINT
else
  : > "$WALVAULT_CONFIG"
  WV_ENDPOINT=$S3_ENDPOINT
fi
chmod 644 "$WALVAULT_CONFIG"
export AWS_ENDPOINT_URL=$WV_ENDPOINT

# The bucket, made by an independent SigV4 client; the keys reach curl on a pipe.
printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
  curl -sf -K - --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -X PUT "$S3_ENDPOINT/$BUCKET" -o /dev/null

# Before the cluster starts: its archive_command needs the same environment.
PGBR=0
if command -v pgbackrest >/dev/null && [ -n "${S3_TLS_ENDPOINT:-}" ]; then
  PGBR=1
  export PGBACKREST_REPO1_S3_KEY=$AWS_ACCESS_KEY_ID PGBACKREST_REPO1_S3_KEY_SECRET=$AWS_SECRET_ACCESS_KEY
  TLS_HOSTPORT=${S3_TLS_ENDPOINT#https://}
fi
# 1. A cluster and N real segments (archive_command copies each aside).
make_segments "$SCALE" "autovacuum = off"
DB_BYTES=$("${PSQL[@]}" -c "select sum(pg_database_size(oid)) from pg_database")

# Wall seconds of a command run as postgres.
seconds() {
  local t0 t1
  t0=$(now_ns); as "$@" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; return 1; }; t1=$(now_ns)
  awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f\n", ns / 1e9 }'
}
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f\n", b / 1e6 / s }'; }

# pgBackRest config for repository path $1 (one per run: fresh repositories).
pgbr_conf() {
  cat > "$W/pgbr-$1.conf" <<CONF
[global]
repo1-type=s3
repo1-path=/$1
repo1-s3-bucket=$BUCKET
repo1-s3-endpoint=${TLS_HOSTPORT%:*}
repo1-storage-port=${TLS_HOSTPORT##*:}
repo1-s3-uri-style=path
repo1-s3-region=us-east-1
repo1-storage-verify-tls=n
compress-type=zst
compress-level=1
process-max=2
start-fast=y
CONF
  pgbr_common_conf >> "$W/pgbr-$1.conf"
  chmod 644 "$W/pgbr-$1.conf"
  echo "$W/pgbr-$1.conf"
}

declare -A R
for run in $(seq "$RUNS"); do
  # 2. archive-push, one call per segment and batch (.ready files present).
  as "$WV" --repo "s3://$BUCKET/r$run-one" repo init >/dev/null
  R[one]+="$(per_segment_ms "$WV --repo s3://$BUCKET/r$run-one --spool-path $W/spool archive-push --parallel 1") "
  as "$WV" --repo "s3://$BUCKET/r$run-batch" repo init >/dev/null
  for s in "${SEGS[@]}"; do as touch "$W/segments/pg_wal/archive_status/$s.ready"; done
  R[batch]+="$(per_segment_ms "$WV --repo s3://$BUCKET/r$run-batch --spool-path $W/spool archive-push --parallel $(nproc)") "
  if [ -n "${S3_TLS_ENDPOINT:-}" ]; then  # the same over plain HTTP
    AWS_ENDPOINT_URL=$S3_ENDPOINT as "$WV" --repo "s3://$BUCKET/r$run-http" repo init >/dev/null
    R[http]+="$(AWS_ENDPOINT_URL=$S3_ENDPOINT per_segment_ms "$WV --repo s3://$BUCKET/r$run-http --spool-path $W/spool archive-push --parallel 1") "
  fi
  if [ "$PGBR" = 1 ]; then
    conf=$(pgbr_conf "pgbr-r$run-push")
    as pgbackrest --config="$conf" --stanza=bench stanza-create >/dev/null
    R[pgbr_push]+="$(per_segment_ms "pgbackrest --config=$conf --stanza=bench archive-push") "
  fi

  # 3. Full backup into a fresh repository each, then restore (files only).
  wvrepo="s3://$BUCKET/r$run-backup"
  as "$WV" --repo "$wvrepo" repo init >/dev/null
  cmd="$WV --repo $wvrepo --spool-path $W/spool archive-push --parallel 1 %p"
  if [ "$PGBR" = 1 ]; then
    bconf=$(pgbr_conf "pgbr-r$run-backup")
    as pgbackrest --config="$bconf" --stanza=bench stanza-create >/dev/null
    cmd="$cmd && pgbackrest --config=$bconf --stanza=bench archive-push %p"
  fi
  "${PSQL[@]}" -c "alter system set archive_command = '$cmd'" -c "select pg_reload_conf()" >/dev/null
  "${PSQL[@]}" -c "checkpoint" >/dev/null
  s=$(seconds "$WV" --repo "$wvrepo" --spool-path "$W/spool" backup --pg "host=$W port=$PORT user=postgres" --parallel 2 --no-progress)
  R[wv_backup]+="$(mbps "$DB_BYTES" "$s") "
  as rm -rf "$W/restore-wv"
  s=$(seconds "$WV" --repo "$wvrepo" --spool-path "$W/spool" restore --pgdata "$W/restore-wv" --parallel 2 --target-immediate)
  R[wv_restore]+="$(mbps "$(du -sb "$W/restore-wv" | cut -f1)" "$s") "
  if [ "$PGBR" = 1 ]; then
    "${PSQL[@]}" -c "checkpoint" >/dev/null
    s=$(seconds pgbackrest --config="$bconf" --stanza=bench backup --type=full)
    R[pgbr_backup]+="$(mbps "$DB_BYTES" "$s") "
    as rm -rf "$W/restore-br"
    s=$(seconds pgbackrest --config="$bconf" --stanza=bench restore --pg1-path="$W/restore-br" --type=immediate)
    R[pgbr_restore]+="$(mbps "$(du -sb "$W/restore-br" | cut -f1)" "$s") "
  fi
  as rm -rf "$W/restore-wv" "$W/restore-br"
done

med() { tr ' ' '\n' <<<"${R[$1]}" | grep . | median; }
echo
echo "S3 endpoint: $WV_ENDPOINT (bucket $BUCKET); $N segments; database $((DB_BYTES / 1000000)) MB (pgbench scale $SCALE); $RUNS runs, median (all runs)"
printf '%-44s %10s %10s\n' "" "walvault" "pgBackRest"
row() {  # label walvault-key pgbr-key
  printf '%-44s %10s %10s   (%s| %s)\n' "$1" "$(med "$2")" "$([ -n "${3:-}" ] && [ "$PGBR" = 1 ] && med "$3" || echo -)" \
    "${R[$2]}" "$([ -n "${3:-}" ] && echo "${R[$3]:-}")"
}
row "archive-push, one call each (ms/segment)" one pgbr_push
row "archive-push, batch --parallel $(nproc) (ms/segment)" batch
[ -n "${S3_TLS_ENDPOINT:-}" ] && row "archive-push over plain HTTP (ms/segment)" http
row "full backup (MB/s of database)" wv_backup pgbr_backup
row "restore, files only (MB/s written)" wv_restore pgbr_restore
[ "$PGBR" = 1 ] || echo "pgBackRest: skipped (not installed, or no S3_TLS_ENDPOINT: its S3 driver speaks only TLS)"
