#!/usr/bin/env bash
# File-volume archive benchmark (issue 15): `walvault files backup/restore`
# side by side with restic 0.14 (default compression), borg 1.2
# (--compression zstd,1, encryption repokey) and the seed's tar czf / tar xzf,
# on one generated tree, in one run.
#   bench/files.sh [build-dir=build]      (or WALVAULT=/path/to/walvault)
# Sizes (env): SIZE_MB=2048 (the tree: 45% files copied from /usr/share then
# /usr/lib, 30% generated CSV reports, three of them large, 25% incompressible
# random files), SMALL_FILES=200000 (the small-file tree for peak RSS; 0 skips
# it), TOOLS="walvault walvault-enc restic borg tar", KEEP=0 (1: keep the work
# directory), WORK=/tmp (where the work directory goes), SETTLE=65 (seconds
# between the churn and the restores: see there), RESTORE_SETTLE=30 (seconds
# of quiet before each restore after the first), RESTORE_ROUNDS=2 (restores in
# TOOLS order, then reversed; figures are the means), KEEP=1 also keeps the
# restored trees.
# Steps, each tool in turn on the same tree: first backup, unchanged second
# backup, churn (5% of files modified, 4 KiB inserted in the middle of the
# three large CSVs, new files, 2% deleted) then a third backup, a full restore
# of the last snapshot into an empty directory, then the small-file tree's
# first backup. Every timed step starts after a `sync`; the page cache is warm
# for every tool (the tree is read once before the first backup; dropping
# caches is not reliable here). Restored trees stay until every restore ran
# (a mass delete slows the next creates). Restores are timed to the command's return
# and to a `sync` after it: walvault's restore returns once everything is
# durable (syncfs), the others do not.
# Secrets: passwords via RESTIC_PASSWORD_FILE, BORG_PASSPHRASE and
# --passphrase-file, never argv.
# Quick run: SIZE_MB=300 SMALL_FILES=20000 bench/files.sh
set -euo pipefail
SIZE_MB=${SIZE_MB:-2048}
SMALL_FILES=${SMALL_FILES:-200000}
TOOLS=${TOOLS:-walvault walvault-enc restic borg tar}
KEEP=${KEEP:-0}
WORK=${WORK:-/tmp}
SETTLE=${SETTLE:-65}
RESTORE_SETTLE=${RESTORE_SETTLE:-30}
RESTORE_ROUNDS=${RESTORE_ROUNDS:-2}
if [ -n "${1:-}" ]; then WALVAULT="$1/cli/walvault"; fi
if [ -n "${WALVAULT:-}" ]; then WALVAULT=$(realpath -m "$WALVAULT"); fi
cd "$(dirname "$0")/.."
WALVAULT=${WALVAULT:-$PWD/build/cli/walvault}
[ -x "$WALVAULT" ] || { echo "no walvault binary at $WALVAULT (give a build dir or WALVAULT=)" >&2; exit 2; }
for b in restic borg /usr/bin/time python3; do
  command -v "$b" >/dev/null || { echo "$b missing: apt-get install -y restic borgbackup time python3" >&2; exit 2; }
done

W=$(mktemp -d "$WORK/wvfiles-XXXXXX")
cleanup() { if [ "$KEEP" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT
L="$W/logs"; mkdir -p "$L" "$W/restore"
SRC="$W/src"; SMALL="$W/small"
echo bench-passphrase > "$W/pass"; chmod 600 "$W/pass"
export RESTIC_PASSWORD_FILE="$W/pass" BORG_PASSPHRASE=bench-passphrase
export BORG_BASE_DIR="$W/borg-home" RESTIC_CACHE_DIR="$W/restic-cache"
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
dir_bytes() { du -sb "$1" | cut -f1; }
# Runs a command with its output in a log; on failure prints the end of the log and stops.
run_logged() {
  local log=$1 rc=0; shift
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then echo "FAILED (exit $rc): $*" >&2; tail -n 30 "$log" >&2; exit 1; fi
}
# timed KEY CMD...: after a sync, wall seconds and peak RSS (KiB) of CMD into T[KEY], RSS[KEY].
declare -A T RSS BYTES
timed() {
  local key=$1 t0; shift
  sync
  t0=$(now_ns)
  run_logged "$L/$key.log" /usr/bin/time -f %M -o "$L/$key.rss" bash -c '"$@"' _ "$@"
  T[$key]=$(secs_since "$t0")
  RSS[$key]=$(tail -n 1 "$L/$key.rss")
}

# --- the tree ---------------------------------------------------------------
make_tree() {
  local t0; t0=$(now_ns)
  mkdir -p "$SRC/system" "$SRC/reports" "$SRC/uploads"
  # System files: /usr/share, then /usr/lib, in path order until 45% of SIZE_MB.
  { find /usr/share -xdev \( -type f -o -type l \) -printf '%s %p\n' 2>/dev/null | sort -k2
    find /usr/lib -xdev \( -type f -o -type l \) -printf '%s %p\n' 2>/dev/null | sort -k2; } |
    awk -v max=$(( SIZE_MB * 1048576 * 45 / 100 )) '{ s += $1; if (s <= max) print substr($0, index($0, " ") + 1) }' \
    > "$W/system.list"
  tar -cf - --no-recursion -T "$W/system.list" 2>/dev/null | tar -xf - -C "$SRC/system"
  # Reports: CSV text (30%), three large ones (4% each), the rest 64 KiB - 4 MiB.
  python3 - "$SRC/reports" "$SIZE_MB" <<'PY'
import os, random, sys
out, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(15)
def csv(path, nbytes, seed):
    r = random.Random(seed)
    studies = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"]
    units = ["mg", "ml", "mmol/l", "%"]
    with open(path, "w") as f:
        f.write("row,study,subject,visit,measure,value,unit,flag,comment\n")
        n, i = 0, 0
        while n < nbytes:
            lines = []
            for _ in range(2000):
                i += 1
                x = r.getrandbits(64)
                lines.append("%d,%s,S%05d,V%02d,m%03d,%d.%04d,%s,%s,%s\n" % (
                    i, studies[x % 5], (x >> 3) % 100000, (x >> 20) % 40, (x >> 26) % 300,
                    50 + (x >> 35) % 100, (x >> 42) % 10000, units[(x >> 56) % 4], "YNU"[(x >> 58) % 3],
                    "note %x" % (x >> 24) if (x >> 60) < 3 else ""))
            block = "".join(lines)
            f.write(block)
            n += len(block)
budget = size_mb * 1048576 * 30 // 100
for k in range(3):
    csv(os.path.join(out, "large-%d.csv" % k), size_mb * 1048576 * 4 // 100, 1000 + k)
left, k = budget - 3 * (size_mb * 1048576 * 4 // 100), 0
while left > 0:
    d = os.path.join(out, "2026-%02d" % (k % 12 + 1))
    os.makedirs(d, exist_ok=True)
    n = min(left, rng.randrange(64 << 10, 4 << 20))
    csv(os.path.join(d, "report-%05d.csv" % k), n, k)
    left -= n
    k += 1
PY
  # Uploads: incompressible random files (25%), 1 - 32 MiB and a few small ones.
  local left=$(( SIZE_MB * 1048576 * 25 / 100 )) k=0 n
  while [ "$left" -gt 0 ]; do
    n=$(( (RANDOM % 32 + 1) * 1048576 - RANDOM )); [ "$n" -gt "$left" ] && n=$left
    head -c "$n" /dev/urandom > "$SRC/uploads/upload-$k.bin"
    head -c $(( RANDOM % 8192 + 1 )) /dev/urandom > "$SRC/uploads/small-$k.bin"
    left=$(( left - n )); k=$((k + 1))
  done
  echo "tree: $(du -sm "$SRC" | cut -f1) MiB, $(find "$SRC" -type f | wc -l) files," \
       "$(find "$SRC" -type l | wc -l) links, $(find "$SRC" -type d | wc -l) directories" \
       "(system $(du -sm "$SRC/system" | cut -f1) MiB, reports $(du -sm "$SRC/reports" | cut -f1) MiB," \
       "uploads $(du -sm "$SRC/uploads" | cut -f1) MiB; zstd -1 keeps" \
       "$(tar -cf - -C "$SRC" . 2>/dev/null | zstd -1 -T1 -c | wc -c | awk -v all="$(dir_bytes "$SRC")" '{ printf "%.0f", 100 * $1 / all }')% of it), made in $(secs_since "$t0") s"
}

# 5% of files modified (half appended to, half overwritten in place), 4 KiB
# inserted in the middle of the three large CSVs, new reports and uploads,
# 2% of files deleted; seeded, so every run churns the same files.
churn() {
  python3 - "$SRC" "$SIZE_MB" <<'PY'
import os, random, sys
src, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(1515)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs
               if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)))
large = [os.path.join(src, "reports", "large-%d.csv" % k) for k in range(3)]
others = [f for f in files if f not in large]
modified = rng.sample(others, len(files) * 5 // 100)
for i, f in enumerate(modified):
    os.chmod(f, os.stat(f).st_mode | 0o200)
    if i % 2 == 0 or os.path.getsize(f) == 0:
        with open(f, "ab") as fh: fh.write(b"appended by churn %d\n" % i)
    else:
        with open(f, "r+b") as fh:
            fh.seek(rng.randrange(os.path.getsize(f))); fh.write(os.urandom(100))
for f in large:
    with open(f, "rb") as fh: data = fh.read()
    mid = len(data) // 2
    with open(f, "wb") as fh: fh.write(data[:mid] + os.urandom(4096) + data[mid:])
rest = [f for f in others if f not in set(modified)]
deleted = rng.sample(rest, len(files) * 2 // 100)
for f in deleted: os.remove(f)
new_dir = os.path.join(src, "reports", "2027-01")
os.makedirs(new_dir, exist_ok=True)
for k in range(200):
    with open(os.path.join(new_dir, "new-%03d.csv" % k), "w") as fh:
        for j in range(size_mb * 1048576 // 100 // 200 // 40):
            fh.write("%d,NEW,S%05d,%.4f\n" % (j, rng.randrange(100000), rng.gauss(100, 25)))
os.makedirs(os.path.join(src, "uploads", "new"), exist_ok=True)
with open(os.path.join(src, "uploads", "new", "upload-new.bin"), "wb") as fh:
    fh.write(os.urandom(size_mb * 1048576 // 200))
print("churn: %d of %d files modified, 4 KiB inserted in 3 large CSVs, %d deleted, 201 new" %
      (len(modified), len(files), len(deleted)))
PY
}

# 200,000 files of 100 B - 4 KiB in directories of 1000.
make_small_tree() {
  python3 - "$SMALL" "$SMALL_FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(200000)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0: os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.txt" % i), "w") as f:
        f.write(("%d,%x\n" % (i, rng.getrandbits(64))) * rng.randrange(5, 200))
PY
}

# --- the tools ---------------------------------------------------------------
# init_<tool> REPO; backup_<tool> REPO SRC N; restore_<tool> REPO DIR
wv() { "$WALVAULT" --repo "$@"; }
wve() { "$WALVAULT" --passphrase-file "$W/pass" --repo "$@"; }
init_walvault() { run_logged "$L/init-walvault-$(basename "$1").log" wv "$1" repo init; }
backup_walvault() { wv "$1" files backup --volume bench "$2"; }
restore_walvault() { wv "$1" files restore latest --to "$2"; }
init_walvault-enc() { run_logged "$L/init-walvault-enc-$(basename "$1").log" wve "$1" repo init --encrypt; }
backup_walvault-enc() { wve "$1" files backup --volume bench "$2"; }
restore_walvault-enc() { wve "$1" files restore latest --to "$2"; }
init_restic() { run_logged "$L/init-restic-$(basename "$1").log" restic -r "$1" init; }
backup_restic() { restic -r "$1" backup --quiet "$2"; }
restore_restic() { restic -r "$1" restore latest --target "$2"; }
init_borg() { run_logged "$L/init-borg-$(basename "$1").log" borg init --encryption repokey "$1"; }
backup_borg() { borg create --compression zstd,1 "$1::b$3" "$2"; }
restore_borg() { (cd "$2" && borg extract "$1::b3"); }
init_tar() { mkdir -p "$1"; }
backup_tar() { tar czf "$1/b$3.tar.gz" -C "$2" .; }
restore_tar() { tar xzf "$1/b3.tar.gz" -C "$2"; }

export -f wv wve $(for t in $TOOLS; do echo "backup_$t restore_$t"; done)
export WALVAULT W
echo "walvault file-volume benchmark: SIZE_MB=$SIZE_MB SMALL_FILES=$SMALL_FILES, work dir $W"
echo "walvault: $WALVAULT ($(sha256sum "$WALVAULT" | cut -c1-12)); $(restic version | cut -d' ' -f1-2);" \
     "$(borg --version); $(tar --version | head -n1); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
make_tree
find "$SRC" -type f -exec cat {} + >/dev/null  # warm the page cache for everyone

for tool in $TOOLS; do
  "init_$tool" "$W/repo-$tool"
  for n in 1 2; do
    timed "$tool-b$n" "backup_$tool" "$W/repo-$tool" "$SRC" "$n"
    BYTES[$tool-b$n]=$(dir_bytes "$W/repo-$tool")
  done
  echo "$tool: first backup ${T[$tool-b1]} s, unchanged ${T[$tool-b2]} s"
done
churn
for tool in $TOOLS; do
  timed "$tool-b3" "backup_$tool" "$W/repo-$tool" "$SRC" 3
  BYTES[$tool-b3]=$(dir_bytes "$W/repo-$tool")
  echo "$tool: after churn ${T[$tool-b3]} s"
done
SRC_BYTES=$(dir_bytes "$SRC")
# The churn deleted 2% of the files seconds ago, in the block groups where the
# restores create theirs. On ext4 without a journal (this machine's root) every
# inode allocation then skips, one inode-table lookup each, every inode freed
# in the last 60 s, so a restore started right away pays for the churn's
# deletes (up to half its system time) and the one after it less: the figure
# measured the order of the tools. Restores start once those deletes aged.
sync
sleep "$SETTLE"
# Two rounds, the second in the reverse order (A B, then B A), and each tool's
# figure is the mean of its two restores: whichever tool restores second in a
# round lands its 2 GB while the disk still writes back the first's, and one
# order measured that order (walvault first 0.35-0.52x restic, walvault second
# 0.47-0.63x over sessions 12-14). RESTORE_ROUNDS=1: one round, in TOOLS order.
REVERSED=$(for tool in $TOOLS; do echo "$tool"; done | tac | tr '\n' ' ')
first_restore=1
for round in $(seq "$RESTORE_ROUNDS"); do
  order=$TOOLS; [ $((round % 2)) -eq 0 ] && order=$REVERSED
  for tool in $order; do
    # The virtual disk keeps writing back for a while after a burst (2 GB just
    # restored and synced): each restore after the first starts once it is quiet.
    [ "$first_restore" = 1 ] || sleep "$RESTORE_SETTLE"
    first_restore=0
    mkdir "$W/restore/$tool-$round"
    timed "$tool-r$round" "restore_$tool" "$W/repo-$tool" "$W/restore/$tool-$round"
    t0=$(now_ns); sync; T[$tool-rs$round]=$(awk -v a="${T[$tool-r$round]}" -v b="$(secs_since "$t0")" 'BEGIN { printf "%.2f", a + b }')
    RSS[$tool-r]=$(( ${RSS[$tool-r]:-0} > ${RSS[$tool-r$round]} ? ${RSS[$tool-r]:-0} : ${RSS[$tool-r$round]} ))
    BYTES[$tool-r]=$(dir_bytes "$W/restore/$tool-$round")
    echo "$tool: restore (round $round) ${T[$tool-r$round]} s (${T[$tool-rs$round]} s with the sync after it), $((BYTES[$tool-r] / 1048576)) MiB restored"
  done
done
for tool in $TOOLS; do
  for k in r rs; do
    T[$tool-$k]=$(for round in $(seq "$RESTORE_ROUNDS"); do echo "${T[$tool-$k$round]}"; done |
                  awk '{ s += $1; n++ } END { printf "%.2f", s / n }')
  done
  echo "$tool: restore, mean of $RESTORE_ROUNDS: ${T[$tool-r]} s (${T[$tool-rs]} s with the sync after it)"
done
# Restored trees are removed only now: for a minute after a mass delete, ext4
# scans past the freed inodes on every create, which would fall on whichever
# tool restored next (benchmarks.md, backup/restore session 3).
[ "$KEEP" = 1 ] || rm -rf "$W/restore"
if [ "$SMALL_FILES" -gt 0 ]; then
  make_small_tree
  find "$SMALL" -type f -exec cat {} + >/dev/null
  for tool in $TOOLS; do
    "init_$tool" "$W/small-$tool"
    timed "$tool-s" "backup_$tool" "$W/small-$tool" "$SMALL" 1
    echo "$tool: $SMALL_FILES small files ${T[$tool-s]} s, peak RSS $((RSS[$tool-s] / 1024)) MiB"
  done
fi

# --- report -----------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2fx", a / b; else print "-" }'; }
row() {  # label key-suffix kind(T|B|RSS)
  local label=$1 sfx=$2 kind=$3 tool v cells=()
  for tool in $TOOLS; do
    case $kind in
      T) v=${T[$tool-$sfx]:-}; cells+=("${v:+$v s}") ;;
      B) v=${BYTES[$tool-$sfx]:-}; cells+=("$(mib "${v:-0}")") ;;
      RSS) v=${RSS[$tool-$sfx]:-}; cells+=("$((v / 1024)) MiB") ;;
    esac
  done
  local get; get() { case $kind in T) echo "${T[$1-$sfx]:-}" ;; B) echo "${BYTES[$1-$sfx]:-}" ;; RSS) echo "${RSS[$1-$sfx]:-}" ;; esac; }
  printf '%-34s' "$label"; printf ' %13s' "${cells[@]}"
  printf ' %9s %9s\n' "$(ratio "$(get walvault)" "$(get restic)")" "$(ratio "$(get walvault-enc)" "$(get restic)")"
}
echo
printf '%-34s' metric; for tool in $TOOLS; do printf ' %13s' "$tool"; done; printf ' %9s %9s\n' wv/restic wve/restic
row "first backup, wall" b1 T
row "  repository bytes" b1 B
row "  peak RSS" b1 RSS
row "unchanged backup, wall" b2 T
row "  repository bytes" b2 B
row "churn backup, wall" b3 T
row "  repository bytes after it" b3 B
row "  peak RSS" b3 RSS
row "restore, wall (command)" r T
row "restore, wall (+ sync: durable)" rs T
row "  peak RSS" r RSS
if [ "$SMALL_FILES" -gt 0 ]; then
  row "$SMALL_FILES small files: backup, wall" s T
  row "  peak RSS" s RSS
fi
echo "(source tree after churn: $(mib "$SRC_BYTES"); walvault-enc: encrypted repository (AES-256-GCM, keyed chunker);" \
     "restic always encrypts; borg: repokey, zstd,1; tar: one tar.gz per backup, bytes = all kept)"
verdict() { if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a != "" && b != "" && a <= b) }'; then echo "PASS  $1"; else echo "FAIL  $1"; fi; }
echo
echo "bar (walvault-enc, like restic encrypted; walvault unencrypted in brackets):"
for step in b1:"first backup" b2:"unchanged backup" b3:"churn backup" rs:"restore (durable)" r:"restore (command)"; do
  k=${step%%:*}; label=${step#*:}
  half=$(awk -v b="${T[restic-$k]:-0}" 'BEGIN { print 0.5 * b }')
  verdict "$label <= 0.5x restic: ${T[walvault-enc-$k]:-} s vs 0.5 x ${T[restic-$k]:-} s [${T[walvault-$k]:-} s]" "${T[walvault-enc-$k]:-}" "$half"
done
verdict "bytes after churn <= restic: $(mib "${BYTES[walvault-enc-b3]:-0}") vs $(mib "${BYTES[restic-b3]:-0}") [$(mib "${BYTES[walvault-b3]:-0}")]" \
  "${BYTES[walvault-enc-b3]:-}" "${BYTES[restic-b3]:-}"
if [ "$SMALL_FILES" -gt 0 ]; then
  verdict "peak RSS on $SMALL_FILES files <= restic: $((${RSS[walvault-enc-s]:-0} / 1024)) MiB vs $((${RSS[restic-s]:-0} / 1024)) MiB [$((${RSS[walvault-s]:-0} / 1024)) MiB]" \
    "${RSS[walvault-enc-s]:-}" "${RSS[restic-s]:-}"
fi
