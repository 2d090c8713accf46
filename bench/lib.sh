# Sourced by bench/archive_push.sh and bench/s3.sh: a work directory, a
# PostgreSQL 15 cluster in it that yields N real 16 MiB segments, and the
# timing helpers.

PGBIN=/usr/lib/postgresql/15/bin
RUNAS=(); [ "$(id -u)" -eq 0 ] && RUNAS=(setpriv --reuid=postgres --regid=postgres --init-groups)

# A fresh /tmp/<$1>-XXXXXX as W (removed at exit, its cluster stopped) holding
# a copy of build dir $2's walvault as WV; owned by postgres when we are root.
bench_setup() {
  W=$(mktemp -d "/tmp/$1-XXXXXX"); chmod 755 "$W"
  trap '"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$W/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
  cp "$2/cli/walvault" "$W/walvault"; chmod 755 "$W/walvault"
  WV="$W/walvault"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$W"; fi
}

as() { "${RUNAS[@]}" "$@"; }
now_ns() { date +%s%N; }

# Starts a cluster in $W/data (pgbench scale $1; $2: more postgresql.conf
# lines) whose archive_command copies each completed segment aside, and makes
# WAL with pgbench until N+1 are there. Sets PORT, PSQL, SEGS (the last N
# segment names) and PATHS (their paths).
make_segments() {
  as mkdir -p "$W/segments/pg_wal/archive_status"
  as "$PGBIN/initdb" -D "$W/data" -U postgres --auth=trust --no-sync >/dev/null
  PORT=$(( 20000 + RANDOM % 20000 ))
  cat >> "$W/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
archive_mode = on
archive_command = 'cp %p $W/segments/pg_wal/%f'
max_wal_size = '4GB'
${2:-}
CONF
  as "$PGBIN/pg_ctl" -D "$W/data" -l "$W/pg.log" -w start >/dev/null
  PSQL=(psql -XAtq -h "$W" -p "$PORT" -U postgres)
  pgbench -i -q -s "$1" -h "$W" -p "$PORT" -U postgres postgres >/dev/null 2>&1
  while [ "$(ls "$W/segments/pg_wal" | grep -c '^[0-9A-F]\{24\}$')" -lt $((N + 1)) ]; do
    pgbench -n -T 5 -c 2 -h "$W" -p "$PORT" -U postgres postgres >/dev/null 2>&1
    "${PSQL[@]}" -c "select pg_switch_wal()" >/dev/null
    sleep 1
  done
  mapfile -t SEGS < <(ls "$W/segments/pg_wal" | grep '^[0-9A-F]\{24\}$' | sort | tail -n "$N")
  PATHS=(); for s in "${SEGS[@]}"; do PATHS+=("$W/segments/pg_wal/$s"); done
}

# Runs "<command> <segment path>" once per segment, as the server user, each
# through /bin/sh -c as PostgreSQL's archiver does; prints ms per segment.
per_segment_ms() {
  local t0 t1
  t0=$(now_ns)
  as bash -c 'cmd=$1; shift; for p in "$@"; do /bin/sh -c "$cmd $p" || exit 1; done' _ "$1" "${PATHS[@]}"
  t1=$(now_ns)
  echo $(( (t1 - t0) / 1000000 / N ))
}

# The end of a pgBackRest config: quiet logs, lock and spool in $W, and the
# [bench] stanza for the cluster.
pgbr_common_conf() {
  cat <<CONF
log-level-console=warn
log-level-file=off
lock-path=$W/pgbr-lock
spool-path=$W/pgbr-spool
[bench]
pg1-path=$W/data
pg1-socket-path=$W
pg1-port=$PORT
pg1-user=postgres
CONF
}
