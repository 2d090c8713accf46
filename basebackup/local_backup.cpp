#include "basebackup/local_backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "basebackup/incremental.h"
#include "core/contained_dir.h"
#include "core/error.h"
#include "core/time_util.h"
#include "pg/page_checksum.h"
#include "pg/sql_connection.h"
#include "repo/wal_objects.h"
#include "walarchive/block_maps.h"

namespace walvault::basebackup {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// "16384", "16384_fsm", "16384_init.2": the relation number and whether
// this is the init fork; nullopt for other names.
struct RelationName {
  std::string_view relnumber;
  bool init_fork = false;
};
std::optional<RelationName> parse_relation_name(std::string_view name) {
  const std::size_t dot = name.find('.');
  if (dot != std::string_view::npos) {
    if (!all_digits(name.substr(dot + 1))) return std::nullopt;
    name = name.substr(0, dot);
  }
  RelationName r;
  const std::size_t underscore = name.find('_');
  r.relnumber = name.substr(0, underscore);
  if (!all_digits(r.relnumber)) return std::nullopt;
  if (underscore != std::string_view::npos) {
    const std::string_view fork = name.substr(underscore + 1);
    if (fork != "fsm" && fork != "vm" && fork != "init") return std::nullopt;
    r.init_fork = fork == "init";
  }
  return r;
}

// "t3_16384", "t3_16384_fsm.1": a temporary relation's file.
bool temp_relation_name(std::string_view name) {
  if (name.size() < 4 || name[0] != 't') return false;
  const std::size_t underscore = name.find('_');
  if (underscore == std::string_view::npos || !all_digits(name.substr(1, underscore - 1)))
    return false;
  return parse_relation_name(name.substr(underscore + 1)).has_value();
}

constexpr std::array<std::string_view, 7> kContentsExcluded = {
    "pg_stat_tmp", "pg_replslot",  "pg_dynshmem", "pg_notify",
    "pg_serial",   "pg_snapshots", "pg_subtrans"};
constexpr std::array<std::string_view, 8> kFilesExcluded = {
    "postgresql.auto.conf.tmp", "current_logfiles.tmp", "backup_label",   "backup_label.old",
    "tablespace_map",           "backup_manifest",      "postmaster.pid", "postmaster.opts"};

}  // namespace

EntryRule data_dir_rule(std::string_view dir, std::string_view name, bool is_directory,
                        bool in_tablespace, bool db_dir,
                        const std::function<bool(std::string_view)>& has_init_fork) {
  if (name.starts_with("pgsql_tmp") || name.starts_with("pg_internal.init"))
    return EntryRule::kSkip;
  if (std::find(kFilesExcluded.begin(), kFilesExcluded.end(), name) != kFilesExcluded.end())
    return EntryRule::kSkip;
  if (db_dir && !is_directory) {
    if (temp_relation_name(name)) return EntryRule::kSkip;
    if (auto rel = parse_relation_name(name);
        rel && !rel->init_fork && has_init_fork(rel->relnumber))
      return EntryRule::kSkip;
  }
  if (is_directory) {
    if (std::find(kContentsExcluded.begin(), kContentsExcluded.end(), name) !=
        kContentsExcluded.end())
      return EntryRule::kDirOnly;
    if (!in_tablespace && dir.empty() && (name == "pg_wal" || name == "pg_tblspc"))
      return EntryRule::kDirOnly;
  }
  return EntryRule::kKeep;
}

namespace {

// What the server says about itself, over SQL.
struct ServerInfo {
  int version_num = 0;
  std::uint64_t system_id = 0;
  std::string catalog_version;
  std::uint32_t segment_size = 0;
  bool data_checksums = false;
  RelationGeometry geometry;  // BLCKSZ, RELSEG_SIZE
};

ServerInfo query_server(pg::SqlConnection& sql) {
  ServerInfo info;
  info.version_num = std::stoi(sql.row("SHOW server_version_num").at(0));
  if (info.version_num < 130000)
    throw Error(ErrorCode::kPostgres, "backup --local: the server runs PostgreSQL " +
                                          std::to_string(info.version_num / 10000) +
                                          "; 13 or newer is needed");
  if (sql.row("SELECT pg_is_in_recovery()").at(0) == "t")
    throw Error(ErrorCode::kPostgres,
                "backup --local: the server is a standby; back up the primary, or take the "
                "standby's backup over replication (without --local)");
  const auto control =
      sql.row("SELECT system_identifier, catalog_version_no FROM pg_control_system()");
  info.system_id = std::stoull(control.at(0));
  info.catalog_version = control.at(1);
  info.segment_size = static_cast<std::uint32_t>(
      std::stoul(sql.row("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").at(0)));
  info.data_checksums = sql.row("SHOW data_checksums").at(0) == "on";
  const auto sizes = sql.row(
      "SELECT (SELECT setting FROM pg_settings WHERE name = 'block_size'), "
      "(SELECT setting FROM pg_settings WHERE name = 'segment_size')");
  info.geometry.block_size = static_cast<std::uint32_t>(std::stoul(sizes.at(0)));
  info.geometry.blocks_per_segment = static_cast<std::uint32_t>(std::stoul(sizes.at(1)));
  return info;
}

// global/pg_control starts with the system identifier: the data directory
// must be the server's.
void check_data_dir(const std::string& pgdata, const ServerInfo& info) {
  const UniqueFd fd(::open((pgdata + "/global/pg_control").c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw_errno("backup --local: reading " + pgdata + "/global/pg_control");
  std::uint64_t system_id = 0;
  if (::pread(fd.get(), &system_id, sizeof system_id, 0) != sizeof system_id)
    throw Error(ErrorCode::kInvalidInput,
                "backup --local: " + pgdata + "/global/pg_control is too short");
  if (system_id != info.system_id)
    throw Error(ErrorCode::kClusterMismatch,
                "backup --local: " + pgdata + " holds cluster " + std::to_string(system_id) +
                    ", the server --pg reaches runs cluster " + std::to_string(info.system_id));
}

// Pages that failed their checksum twice, shared by the readers.
class PageErrors {
 public:
  void add(const std::string& file, std::uint32_t block, std::uint16_t found,
           std::uint16_t expected) {
    std::lock_guard lock(mu_);
    spdlog::warn("page checksum mismatch in {} block {}: stored {:04X}, computed {:04X}", file,
                 block, found, expected);
    list_.push_back(file + " block " + std::to_string(block));
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    std::sort(list_.begin(), list_.end());
    return std::move(list_);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> list_;
};

// One opened file, read by the workers a group of chunks at a time.
struct OpenFile {
  UniqueFd fd;
  std::string name;                      // for messages: "[<oid>:]<path>"
  std::optional<std::uint32_t> segment;  // set: verify its pages as this relation segment
};

// Reads up to `length` bytes at `offset`; fewer only at the end of the file.
std::size_t read_at(const OpenFile& f, std::uint8_t* out, std::size_t length,
                    std::uint64_t offset) {
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(f.fd.get(), out + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("backup --local: reading " + f.name);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

// The readers' shared state.
struct ReadContext {
  pg::Lsn start_lsn = 0;
  PageErrors errors;
};

// Verifies the pages of `data` (read at `offset`), re-reading a failing page
// once: a page the server was writing as we read it is torn, and its second
// read shows either a good checksum or an LSN past the backup's start.
void verify_pages(const OpenFile& f, std::uint8_t* data, std::size_t length, std::uint64_t offset,
                  ReadContext& ctx) {
  for (std::size_t at = 0; at + pg::kPageSize <= length; at += pg::kPageSize) {
    std::uint8_t* page = data + at;
    const auto block = static_cast<std::uint32_t>(*f.segment * pg::kPagesPerSegment +
                                                  (offset + at) / pg::kPageSize);
    if (pg::check_page(ByteView(page, pg::kPageSize), block, ctx.start_lsn) !=
        pg::PageVerdict::kBad)
      continue;
    if (read_at(f, page, pg::kPageSize, offset + at) < pg::kPageSize) continue;  // truncated
    const ByteView again(page, pg::kPageSize);
    if (pg::check_page(again, block, ctx.start_lsn) != pg::PageVerdict::kBad) continue;
    ctx.errors.add(f.name, block, pg::page_stored_checksum(again), pg::page_checksum(again, block));
  }
}

// Walks one archive (the data directory or a tablespace's version
// directory) into the pipeline.
class Walker {
 public:
  Walker(BackupPipeline& pipeline, ReadContext& ctx, bool verify, const IncrementalPlanner* planner)
      : pipeline_(pipeline), ctx_(ctx), verify_(verify), planner_(planner) {}

  std::uint64_t files_taken_over() const { return files_taken_over_; }

  // `root` is the archive's root on disk; `tablespace` its oid ("" for the
  // data directory); `skip` absolute directories not to enter (tablespaces
  // located inside the data directory); `top` the directory below `root`
  // to walk ("" for all of it).
  void walk(const std::string& root, const std::string& tablespace,
            const std::set<std::string>& skip, const std::string& top) {
    root_ = root;
    tablespace_ = tablespace;
    skip_ = &skip;
    // Below `root`, nothing is reached through a symbolic link: directories
    // are opened O_NOFOLLOW relative to their parent's descriptor, so a link
    // swapped in for a directory while we walk (by whoever owns the data
    // directory) is never followed.
    const ContainedDir archive(root);
    const UniqueFd fd = archive.open_dir(top.empty() ? "." : top);
    walk_dir(fd.get(), top);
  }

  void add_directory(const std::string& rel, const struct stat& st) {
    pg::TarEntry e;
    e.path = rel;
    e.type = pg::TarEntryType::kDirectory;
    e.mode = S_ISDIR(st.st_mode) ? (st.st_mode & 07777) : 0700;  // a link (pg_wal) as a directory
    e.mtime = st.st_mtime;
    pipeline_.sink().on_tar_entry_begin(e);
    pipeline_.sink().on_tar_entry_end();
  }

 private:
  void walk_dir(int dir_fd, const std::string& dir) {
    const std::string abs = dir.empty() ? root_ : root_ + "/" + dir;
    std::vector<std::string> names;
    {
      UniqueFd copy(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      DIR* d = copy.get() >= 0 ? ::fdopendir(copy.get()) : nullptr;
      if (d == nullptr) throw_errno("backup --local: listing " + abs);
      (void)copy.release();  // closedir closes it
      while (const dirent* de = ::readdir(d)) {
        const std::string_view n = de->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
      }
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    const bool db_dir = is_db_dir(dir);
    const auto has_init = [&names](std::string_view relnumber) {
      return std::binary_search(names.begin(), names.end(), std::string(relnumber) + "_init");
    };
    for (const std::string& name : names) {
      const std::string rel = dir.empty() ? name : dir + "/" + name;
      struct stat st;
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        throw_errno("backup --local: " + root_ + "/" + rel);
      }
      const bool is_dir = S_ISDIR(st.st_mode) || (dir.empty() && name == "pg_wal");
      EntryRule rule = data_dir_rule(dir, name, is_dir, !tablespace_.empty(), db_dir, has_init);
      if (tablespace_.empty() && rel == "global/pg_control") rule = EntryRule::kSkip;  // read last
      if (rule == EntryRule::kSkip) continue;
      if (is_dir || (rule == EntryRule::kDirOnly && S_ISLNK(st.st_mode))) {
        add_directory(rel, st);
        if (tablespace_.empty() && rel == "pg_wal") {
          add_directory("pg_wal/archive_status", st);
          continue;
        }
        if (rule == EntryRule::kKeep && !skip_->count(root_ + "/" + rel)) {
          const UniqueFd sub(
              ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (sub.get() < 0) {
            if (errno == ENOENT) continue;  // dropped while we walked
            throw_errno("backup --local: opening " + root_ + "/" + rel);
          }
          walk_dir(sub.get(), rel);
        }
      } else if (S_ISREG(st.st_mode)) {
        add_file(dir_fd, name, rel, st);
      } else {
        spdlog::warn("backup --local: skipping {}/{}: not a regular file or directory", root_, rel);
      }
    }
  }

  bool is_db_dir(const std::string& dir) const {
    const std::size_t slash = dir.rfind('/');
    if (slash == std::string::npos || !all_digits(std::string_view(dir).substr(slash + 1)))
      return false;
    const std::string parent = dir.substr(0, slash);
    return tablespace_.empty() ? parent == "base" : parent.find('/') == std::string::npos;
  }

  void add_file(int dir_fd, const std::string& name, const std::string& rel,
                const struct stat& st) {
    auto f = std::make_shared<OpenFile>();
    f->fd = UniqueFd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (f->fd.get() < 0) {
      if (errno == ENOENT) return;  // vanished: WAL replay recreates what it needs
      throw_errno("backup --local: opening " + root_ + "/" + rel);
    }
    struct stat now;
    if (::fstat(f->fd.get(), &now) != 0) throw_errno("backup --local: " + root_ + "/" + rel);
    f->name = tablespace_.empty() ? rel : tablespace_ + ":" + rel;
    if (verify_) f->segment = pg::checksummed_segment(rel, !tablespace_.empty());
    pg::TarEntry e;
    e.path = rel;
    e.type = pg::TarEntryType::kFile;
    e.mode = st.st_mode & 07777;
    e.mtime = now.st_mtime;
    e.size = static_cast<std::uint64_t>(now.st_size);
    ReadContext& ctx = ctx_;
    auto reader = [f, &ctx](std::uint64_t offset, std::size_t length, Bytes& out) {
      out.resize(length);
      const std::size_t got = read_at(*f, out.data(), length, offset);
      std::fill(out.begin() + static_cast<std::ptrdiff_t>(got), out.end(), 0);  // it shrank
      if (f->segment) verify_pages(*f, out.data(), got, offset, ctx);
    };
    if (planner_ != nullptr) {
      const FilePlan plan = planner_->plan(tablespace_, rel, e.size);
      if (!plan.whole) {
        pipeline_.add_file_reusing(e, reader, plan.read, plan.previous);
        ++files_taken_over_;
        return;
      }
    }
    pipeline_.add_file(e, reader);
  }

  BackupPipeline& pipeline_;
  ReadContext& ctx_;
  bool verify_;
  const IncrementalPlanner* planner_;
  std::uint64_t files_taken_over_ = 0;
  std::string root_, tablespace_;
  const std::set<std::string>* skip_ = nullptr;
};

// A small file read on this thread and handed over with its content.
void add_content(pg::BackupSink& sink, const std::string& path, std::string_view content,
                 std::int64_t mtime) {
  pg::TarEntry e;
  e.path = path;
  e.type = pg::TarEntryType::kFile;
  e.mode = 0600;
  e.mtime = mtime;
  e.size = content.size();
  sink.on_tar_entry_begin(e);
  if (!content.empty()) sink.on_tar_entry_data(as_bytes(content));
  sink.on_tar_entry_end();
}

// pg_tblspc's links: each tablespace's oid and location.
std::vector<pg::Tablespace> list_tablespaces(const std::string& pgdata) {
  std::vector<pg::Tablespace> out;
  const std::string dir = pgdata + "/pg_tblspc";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) throw_errno("backup --local: listing " + dir);
  while (const dirent* de = ::readdir(d)) {
    const std::string name = de->d_name;
    if (!all_digits(name)) continue;
    std::array<char, 4096> target{};
    const ssize_t n = ::readlink((dir + "/" + name).c_str(), target.data(), target.size() - 1);
    if (n <= 0) {
      ::closedir(d);
      throw Error(ErrorCode::kInvalidInput,
                  "backup --local: " + dir + "/" + name + " is not a tablespace link");
    }
    pg::Tablespace t;
    t.oid = static_cast<std::uint32_t>(std::stoul(name));
    t.path.assign(target.data(), static_cast<std::size_t>(n));
    out.push_back(std::move(t));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return *a.oid < *b.oid; });
  return out;
}

std::string label_value(const std::string& label, const std::string& key) {
  const std::string prefix = key + ": ";
  std::size_t at = label.find(prefix);
  if (at == std::string::npos || (at > 0 && label[at - 1] != '\n'))
    throw Error(ErrorCode::kPostgres, "backup --local: the server's backup_label lacks " + key);
  at += prefix.size();
  return label.substr(at, label.find('\n', at) - at);
}

struct StopResult {
  pg::Lsn lsn = 0;
  std::string label, map;
};

pg::Lsn start_backup(pg::SqlConnection& sql, const ServerInfo& info, const std::string& label,
                     bool fast) {
  const std::string sql_text = info.version_num >= 150000 ? "SELECT pg_backup_start($1, $2)"
                                                          : "SELECT pg_start_backup($1, $2, false)";
  const std::string lsn = sql.row(sql_text, {label, fast ? "true" : "false"}).at(0);
  auto parsed = pg::parse_lsn(lsn);
  if (!parsed)
    throw Error(ErrorCode::kPostgres,
                "backup --local: the server's start LSN '" + lsn + "' is not an LSN");
  return *parsed;
}

StopResult stop_backup(pg::SqlConnection& sql, const ServerInfo& info) {
  // The archive wait is ours (the pipeline waits for the stop segment in
  // every repository), as with BASE_BACKUP's WAIT false.
  const auto row =
      sql.row(info.version_num >= 150000
                  ? "SELECT lsn, labelfile, spcmapfile FROM pg_backup_stop(false)"
                  : "SELECT lsn, labelfile, spcmapfile FROM pg_stop_backup(false, false)");
  StopResult r;
  auto lsn = pg::parse_lsn(row.at(0));
  if (!lsn)
    throw Error(ErrorCode::kPostgres, "backup --local: the server's stop LSN is not an LSN");
  r.lsn = *lsn;
  r.label = row.at(1);
  r.map = row.at(2);
  return r;
}

// The version directory a tablespace holds for this server: PG_<major>_<catversion>.
std::string tablespace_version_dir(const ServerInfo& info) {
  return "PG_" + std::to_string(info.version_num / 10000) + "_" + info.catalog_version;
}

// What a map-based incremental builds on: the previous backup's file list
// per repository and the planner over the maps of [S1, S2); or why every
// file is read whole.
struct IncrementalSetup {
  std::string reason;  // empty: `planner` is set
  std::string base_label;
  std::vector<BackupFiles> previous;  // per repository (the planner points into it)
  std::unique_ptr<IncrementalPlanner> planner;
};

// Waits (bounded by --wal-timeout) until the segment holding the byte before
// `start_lsn` is archived in `repo` with its block map (archive-push writes
// the map before the metadata), switching the server to a new segment first
// when it is not. Returns the problem, or "".
std::string wait_for_start_segment(repo::Repository& repo, pg::SqlConnection& sql,
                                   const std::string& segment, std::chrono::milliseconds timeout) {
  if (repo::read_meta(repo, segment)) return {};
  try {
    (void)sql.row("SELECT pg_switch_wal()");
  } catch (const Error& e) {
    return std::string("pg_switch_wal() failed: ") + e.what();
  }
  if (!await_archived(repo, segment, std::chrono::steady_clock::now() + timeout))
    return "segment " + segment + ", holding this backup's start, was not archived within " +
           std::to_string(timeout.count() / 1000) + " s";
  return {};
}

// Chooses the previous backup, reads its file lists and the block maps of
// [S1, S2). Any failure is a reason to read everything, never an error.
void prepare_incremental(IncrementalSetup& out, const std::vector<repo::Repository*>& repos,
                         pg::SqlConnection& sql, const ServerInfo& info,
                         const IncrementalFacts& now, const BackupOptions& options) {
  if (options.full_read) {
    out.reason = "--full-read";
    return;
  }
  try {
    const BaseChoice choice = choose_base(list_backups(*repos.front()), now);
    if (!choice.record) {
      out.reason = choice.reason;
      return;
    }
    const BackupRecord& base = *choice.record;
    for (std::size_t i = 0; i < repos.size(); ++i) {
      const auto record = read_record(*repos[i], base.label);
      if (!record || record->start_lsn != base.start_lsn || record->system_id != base.system_id) {
        out.reason = "previous backup " + base.label + " is not in repository " +
                     std::to_string(i + 1) + " of --repo";
        return;
      }
      out.previous.push_back(read_files(*repos[i], base.label));
      check_file_list(*record, out.previous.back());
    }
    const std::string segment = stop_segment_name(now.start_lsn, now.timeline, now.segment_size);
    out.reason = wait_for_start_segment(*repos.front(), sql, segment, options.wal_timeout);
    if (!out.reason.empty()) return;
    const walarchive::ChangedBlocks changed =
        walarchive::read_changed_blocks(*repos.front(), {.timeline = now.timeline,
                                                         .start_lsn = base.start_lsn,
                                                         .end_lsn = now.start_lsn,
                                                         .segment_size = now.segment_size});
    if (!changed.complete()) {
      out.reason = "block map missing or incomplete: " + changed.problems.front();
      if (changed.problems.size() > 1)
        out.reason += " (and " + std::to_string(changed.problems.size() - 1) + " more)";
      return;
    }
    std::vector<const BackupFiles*> lists;
    for (const BackupFiles& f : out.previous) lists.push_back(&f);
    auto planner =
        std::make_unique<IncrementalPlanner>(changed, lists, now.chunk_size, info.geometry);
    if (!planner->refusal().empty()) {
      out.reason = planner->refusal();
      return;
    }
    out.planner = std::move(planner);
    out.base_label = base.label;
    spdlog::info("backup --local: map-based from {} ({} segments of WAL, {} relation forks named)",
                 base.label, changed.segments, changed.blocks.size());
  } catch (const Error& e) {
    out.reason = std::string("the previous backup cannot be used: ") + e.what();
  }
}

}  // namespace

BackupRecord take_local_backup(const std::vector<repo::Repository*>& repos,
                               const std::string& pgdata_arg, const BackupOptions& options) {
  const std::int64_t start_us = now_unix_us();
  std::string pgdata = pgdata_arg;
  while (pgdata.size() > 1 && pgdata.back() == '/') pgdata.pop_back();
  pg::SqlConnection sql(options.conninfo, "walvault backup --local");
  const ServerInfo info = query_server(sql);
  check_data_dir(pgdata, info);
  ReadContext ctx;
  BackupPipeline pipeline(repos, options);
  pipeline.bind_cluster(info.system_id, info.segment_size, info.version_num / 10000);

  ctx.start_lsn = start_backup(sql, info, "walvault " + backup_label_for(start_us),
                               options.checkpoint == pg::CheckpointMode::kFast);
  const std::vector<pg::Tablespace> tablespaces = list_tablespaces(pgdata);
  pipeline.sink().on_start(ctx.start_lsn, 0, tablespaces);
  std::set<std::string> inside;  // tablespaces located inside the data directory
  for (const auto& t : tablespaces) inside.insert(t.path);

  IncrementalFacts now;
  now.system_id = info.system_id;
  now.timeline = static_cast<pg::TimeLineId>(
      std::stoul(sql.row("SELECT timeline_id FROM pg_control_checkpoint()").at(0)));
  now.start_lsn = ctx.start_lsn;
  now.segment_size = info.segment_size;
  now.chunk_size = repos.front()->config().chunk_size;
  now.pg_major = info.version_num / 10000;
  IncrementalSetup incremental;
  prepare_incremental(incremental, repos, sql, info, now, options);
  if (!incremental.reason.empty())
    spdlog::info("backup --local: reading every file whole: {}", incremental.reason);

  Walker walker(pipeline, ctx, info.data_checksums, incremental.planner.get());
  const std::string version_dir = tablespace_version_dir(info);
  for (const auto& t : tablespaces) {
    const std::string oid = std::to_string(*t.oid);
    pipeline.sink().on_archive_begin(oid + ".tar", t);
    struct stat st;
    if (::lstat((t.path + "/" + version_dir).c_str(), &st) != 0)
      throw_errno("backup --local: tablespace " + oid + ": " + t.path + "/" + version_dir);
    walker.add_directory(version_dir, st);
    walker.walk(t.path, oid, inside, version_dir);
  }
  pipeline.sink().on_archive_begin("base.tar", pg::Tablespace{});
  walker.walk(pgdata, "", inside, "");
  // Every byte of the data directory is read before pg_backup_stop; the
  // workers compress and store the last groups while the stop segment is
  // archived (commit waits for both).
  pipeline.wait_for_reads();
  // pg_control last, as BASE_BACKUP sends it.
  {
    OpenFile f;
    f.name = pgdata + "/global/pg_control";
    f.fd = UniqueFd(::open(f.name.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    if (f.fd.get() < 0 || ::fstat(f.fd.get(), &st) != 0) throw_errno("backup --local: " + f.name);
    Bytes control(static_cast<std::size_t>(st.st_size));
    control.resize(read_at(f, control.data(), control.size(), 0));
    pg::TarEntry e;
    e.path = "global/pg_control";
    e.type = pg::TarEntryType::kFile;
    e.mode = st.st_mode & 07777;
    e.mtime = st.st_mtime;
    e.size = control.size();
    pipeline.sink().on_tar_entry_begin(e);
    pipeline.sink().on_tar_entry_data(control);
    pipeline.sink().on_tar_entry_end();
  }
  const StopResult stop = stop_backup(sql, info);
  const std::int64_t now_s = now_unix_us() / 1000000;
  add_content(pipeline.sink(), "backup_label", stop.label, now_s);
  add_content(pipeline.sink(), "tablespace_map", stop.map, now_s);

  BackupRecord r;
  r.tag = options.tag;
  r.source = "local";
  r.start_lsn = ctx.start_lsn;
  r.stop_lsn = stop.lsn;
  r.start_timeline =
      static_cast<pg::TimeLineId>(std::stoul(label_value(stop.label, "START TIMELINE")));
  r.stop_timeline = r.start_timeline;  // a primary's timeline does not change while it runs
  r.start_time_us = start_us;
  r.pg_version_num = info.version_num;
  r.system_id = info.system_id;
  r.wal_segment_size = info.segment_size;
  r.page_errors = ctx.errors.take();
  r.incremental_from = incremental.base_label;
  r.full_read_reason = incremental.reason;
  if (!r.page_errors.empty())
    spdlog::warn("backup --local: {} page(s) failed their checksum (listed in the backup record)",
                 r.page_errors.size());
  return pipeline.commit(r, options);
}

}  // namespace walvault::basebackup
