#!/bin/sh
# The entrypoint of walvault's images (docker/Dockerfile). Starts as root,
# installs the mounted config (/run/walvault/walvault.conf, any owner) as
# /etc/walvault.conf (postgres, mode 0600: it holds the jobs' secrets), then:
#   postgres [ARG]...  the database: initdb on an empty $PGDATA (superuser
#                      postgres; password from POSTGRES_PASSWORD_FILE or
#                      POSTGRES_PASSWORD, scram-sha-256 over the network, peer
#                      on the socket), then the server as postgres with WAL
#                      archiving into walvault (WALVAULT_ARCHIVE=off: without);
#                      ARGs go to the server (-c archive_timeout=60)
#   schedule           the config's [schedule] as /etc/cron.d/walvault
#                      (`walvault schedule install --init cron`), cron in the
#                      foreground, the jobs' logs followed on stdout
#   drill-db           an empty $PGDATA restored from the newest backup (or to
#                      WALVAULT_DRILL_TARGET_TIME), each volume of
#                      WALVAULT_DRILL_VOLUMES ("NAME=DIR ...") from its newest
#                      snapshot (at that time; as root: owners kept), then that server,
#                      without archiving
#   anything else      run as postgres (`walvault repo init`, `bash`)
set -eu
CONFIG=/etc/walvault.conf
SOURCE=${WALVAULT_CONFIG_SOURCE:-/run/walvault/walvault.conf}
say() { echo "walvault-entrypoint: $*" >&2; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi
if [ -f "$SOURCE" ]; then
  install -m 0600 -o postgres -g postgres "$SOURCE" "$CONFIG"
fi

# Starts the server on $PGDATA as postgres (replaces this shell).
serve() {
  archive=$1
  shift
  chown postgres:postgres /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
    postgres -D "$PGDATA" -c listen_addresses='*' -c wal_level=replica \
    -c archive_mode="$archive" \
    -c "archive_command=walvault --config $CONFIG archive-push %p" \
    -c "restore_command=walvault --config $CONFIG archive-get %f \"%p\"" "$@"
}

# A new cluster in $PGDATA, unless it holds one.
init_cluster() {
  [ -s "$PGDATA/PG_VERSION" ] && return 0
  password=${POSTGRES_PASSWORD:-}
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then password=$(cat "$POSTGRES_PASSWORD_FILE"); fi
  if [ -z "$password" ]; then
    say "set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD (the superuser's password over the network)"
    exit 2
  fi
  install -d -m 0700 -o postgres -g postgres "$PGDATA"
  pwfile=$(mktemp)
  chown postgres "$pwfile"
  printf '%s\n' "$password" >"$pwfile"
  as_postgres initdb -D "$PGDATA" --username=postgres --pwfile="$pwfile" \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\nhost replication all all scram-sha-256\n' \
    >>"$PGDATA/pg_hba.conf"
  say "initialized $PGDATA"
}

# The newest backup (or the one for WALVAULT_DRILL_TARGET_TIME) into an
# empty $PGDATA, and the volumes' newest snapshots, unless restored before.
restore_drill() {
  [ -s "$PGDATA/PG_VERSION" ] && return 0
  install -d -m 0700 -o postgres -g postgres "$PGDATA"
  set -- --config "$CONFIG" restore --pgdata "$PGDATA"
  if [ -n "${WALVAULT_DRILL_TARGET_TIME:-}" ]; then
    set -- "$@" --target-time "$WALVAULT_DRILL_TARGET_TIME" --target-action promote
  fi
  as_postgres walvault "$@"
  # As root: the files keep their owners (the repository is mounted read-only).
  for volume in ${WALVAULT_DRILL_VOLUMES:-}; do
    name=${volume%%=*}
    if [ -n "${WALVAULT_DRILL_TARGET_TIME:-}" ]; then
      set -- "$name@$WALVAULT_DRILL_TARGET_TIME"
    else
      set -- latest --volume "$name"
    fi
    walvault --config "$CONFIG" files restore "$@" --to "${volume#*=}"
  done
}

# cron in the foreground running the config's schedule; the jobs' logs on stdout.
run_schedule() {
  installed=$(walvault --config "$CONFIG" schedule install --init cron)
  echo "$installed"
  log_dir=$(echo "$installed" | sed -n 's|^cron runs append to \(.*\)/JOB\.log$|\1|p')
  for job in backup verify drill; do
    as_postgres touch "$log_dir/$job.log"
  done
  tail -n 0 -q -F "$log_dir/backup.log" "$log_dir/verify.log" "$log_dir/drill.log" &
  exec cron -f
}

case "${1:-}" in
  postgres)
    shift
    init_cluster
    serve "${WALVAULT_ARCHIVE:-on}" "$@"
    ;;
  schedule) run_schedule ;;
  drill-db)
    shift
    restore_drill
    serve off "$@"
    ;;
  *) exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@" ;;
esac
