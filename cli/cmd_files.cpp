// `files backup|list|ls|restore|cat|diff|export|import`: file-volume
// snapshots (files/), in the same repositories as the database backups.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/backup_set.h"
#include "cli/command.h"
#include "cli/history_scope.h"
#include "core/contained_dir.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "files/browse.h"
#include "files/snapshot_restore.h"
#include "files/take_snapshot.h"
#include "files/tar_export.h"
#include "repo/lock.h"

namespace walvault::cli {

namespace {

std::string snapshot_line(const files::SnapshotRecord& r) {
  return "snapshot " + files::snapshot_id(r) + " of " + r.volume + " (" + r.label +
         "): " + std::to_string(r.files) + " files, " + mib(r.bytes) + ", " + mib(r.added_bytes) +
         " new";
}

}  // namespace

files::SnapshotRecord backup_volume(const Context& ctx, const FilesBackupArgs& a) {
  auto opened = ctx.repos.open_all(KeyFallback::kNone);
  std::vector<repo::Repository*> repos;
  for (auto& r : opened) repos.push_back(r.get());
  std::uint64_t unreadable = 0;
  // One start time for every repository: the same snapshot name in each.
  const std::int64_t start_us = a.start_us != 0 ? a.start_us : now_unix_us();
  std::optional<files::SnapshotRecord> first;
  for (repo::Repository* repo : repos) {
    repo::HistoryEntry entry = repo::start_history("files-backup");
    run_recorded({repo}, entry, [&] {
      const auto lock = repo::RepoLock::acquire(*repo, repo::LockMode::kShared, "files backup",
                                                command_lock_options());
      files::SnapshotStats stats;
      files::TakeSnapshotOptions options{
          .volume = a.volume, .paths = a.paths, .tag = a.tag, .start_us = start_us};
      options.walk = {a.excludes, a.one_file_system, a.force_reread,
                      a.parallel > 0 ? a.parallel : default_parallelism()};
      lock->check_held();
      const files::SnapshotRecord r = files::take_snapshot(*repo, options, stats);
      if (!first) first = r;
      for (const std::string& w : stats.warnings) spdlog::warn("files backup: {}", w);
      unreadable = std::max(unreadable, stats.unreadable);
      entry.detail = snapshot_line(r);
      entry.bytes = r.added_bytes;
      entry.extra = {{"volume", r.volume},
                     {"label", r.label},
                     {"id", files::snapshot_id(r)},
                     {"files", r.files},
                     {"bytes", r.bytes},
                     {"added_bytes", r.added_bytes},
                     {"unreadable", r.unreadable},
                     {"warnings", r.warning_count}};
      std::cout << snapshot_line(r) << ", "
                << static_cast<double>((r.end_us - r.start_us) / 100000) / 10.0 << " s"
                << (stats.warnings.empty()
                        ? ""
                        : "; " + std::to_string(stats.warnings.size()) + " warnings")
                << "\n";
    });
  }
  if (unreadable > 0)
    throw Error(ErrorCode::kPartial, "the snapshot is recorded, but " + std::to_string(unreadable) +
                                         " entries could not be read (named in the warnings)");
  return *first;
}

namespace {

int run_files_list(const Context& ctx, const std::string& volume, bool json) {
  auto r = ctx.repos.open_first();
  const auto all =
      files::list_snapshots(*r, volume.empty() ? std::nullopt : std::optional<std::string>(volume));
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : all) {
      auto j = nlohmann::json::parse(files::snapshot_to_json(s));
      j["id"] = files::snapshot_id(s);
      j["start_time"] = format_time_us(s.start_us);
      out.push_back(std::move(j));
    }
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  if (all.empty()) {
    std::cout << "no snapshots\n";
    return 0;
  }
  std::printf("%-12s %-16s %-20s %-10s %9s %12s %12s\n", "id", "volume", "time (UTC)", "tag",
              "files", "size", "added");
  for (const auto& s : all)
    std::printf("%-12s %-16s %-20.19s %-10s %9llu %12s %12s\n", files::snapshot_id(s).c_str(),
                s.volume.c_str(), format_time_us(s.start_us).c_str(),
                s.tag.empty() ? "-" : s.tag.c_str(), static_cast<unsigned long long>(s.files),
                mib(s.bytes).c_str(), mib(s.added_bytes).c_str());
  std::fflush(stdout);
  return 0;
}

char type_letter(files::NodeType t) {
  switch (t) {
    case files::NodeType::kDirectory:
      return 'd';
    case files::NodeType::kSymlink:
      return 'l';
    case files::NodeType::kFifo:
      return 'p';
    case files::NodeType::kCharDevice:
      return 'c';
    case files::NodeType::kBlockDevice:
      return 'b';
    case files::NodeType::kSocket:
      return 's';
    default:
      return '-';
  }
}

nlohmann::json node_json(const std::string& path, const files::Node& n) {
  return {{"path", path},           {"type", std::string(1, type_letter(n.type))},
          {"mode", n.mode},         {"uid", n.uid},
          {"gid", n.gid},           {"user", n.user},
          {"group", n.group},       {"size", n.size},
          {"mtime_ns", n.mtime_ns}, {"link_target", n.link_target}};
}

void print_node(const std::string& path, const files::Node& n) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", n.mode);
  const std::string owner = (n.user.empty() ? std::to_string(n.uid) : n.user) + "/" +
                            (n.group.empty() ? std::to_string(n.gid) : n.group);
  std::cout << type_letter(n.type) << " " << mode << " " << owner << " " << n.size << " "
            << format_time_us(n.mtime_ns / 1000).substr(0, 19) << " " << printable_name(path)
            << (n.type == files::NodeType::kSymlink ? " -> " + printable_name(n.link_target) : "")
            << "\n";
}

struct SnapshotArgs {
  std::string snapshot, volume;
};

files::SnapshotRecord find(repo::Repository& r, const SnapshotArgs& a) {
  return files::find_snapshot(
      r, a.snapshot, a.volume.empty() ? std::nullopt : std::optional<std::string>(a.volume));
}

}  // namespace

ServedSnapshot first_with_snapshot(const Context& ctx, const std::string& spec,
                                   const std::string& volume, const char* lock_for) {
  ServedSnapshot out;
  first_that_serves(ctx.repos.locations(), [&](const std::string& location) {
    out.lock.reset();
    out.repo = ctx.repos.open(location);
    if (lock_for) {
      std::string refused;
      out.lock = repo::RepoLock::acquire_for_reading(*out.repo, lock_for, command_lock_options(),
                                                     &refused);
      if (!out.lock)
        spdlog::warn("repository {} does not take a lock ({}): reading without one",
                     store::redact_location(location), refused);
    }
    out.record = files::find_snapshot(
        *out.repo, spec, volume.empty() ? std::nullopt : std::optional<std::string>(volume));
    return true;
  });
  return out;
}

namespace {

ServedSnapshot first_with_snapshot(const Context& ctx, const SnapshotArgs& a,
                                   const char* lock_for = nullptr) {
  return cli::first_with_snapshot(ctx, a.snapshot, a.volume, lock_for);
}

int run_files_ls(const Context& ctx, const SnapshotArgs& a, const std::string& path, bool json) {
  const ServedSnapshot served = first_with_snapshot(ctx, a);
  const files::SnapshotRecord& s = served.record;
  repo::ChunkStore chunks(*served.repo);
  nlohmann::json out = nlohmann::json::array();
  files::walk_snapshot(
      chunks, s.root,
      [&](const std::string& p, const files::Node& n) {
        if (json)
          out.push_back(node_json(p, n));
        else
          print_node(p, n);
        return true;
      },
      path.empty() ? "." : path);
  if (json) std::cout << out.dump(1) << "\n";
  return 0;
}

struct FilesRestoreArgs {
  SnapshotArgs snapshot;
  VolumeRestoreOptions options;
};

int run_files_restore(const Context& ctx, const FilesRestoreArgs& a) {
  const ServedSnapshot served = first_with_snapshot(ctx, a.snapshot, "files restore");
  restore_volume(served, a.options);
  return 0;
}

}  // namespace

files::RestoreStats restore_volume(const ServedSnapshot& served, const VolumeRestoreOptions& o) {
  const files::SnapshotRecord& s = served.record;
  repo::ChunkStore chunks(*served.repo);
  files::RestoreOptions options;
  options.includes = o.includes;
  options.delta = o.delta;
  options.restore_owner = ::geteuid() == 0;
  options.root_metadata = s.root_node;
  options.parallel = o.parallel > 0 ? o.parallel : std::clamp(4 * default_parallelism(), 4, 16);
  files::RestoreStats stats;
  const std::int64_t t0 = now_unix_us();
  files::restore_snapshot(chunks, s.root, o.to, options, stats);
  for (const std::string& w : stats.warnings) spdlog::warn("files restore: {}", w);
  std::cout << "restored snapshot " << files::snapshot_id(s) << " of " << s.volume << " ("
            << s.label << ") into " << o.to << ": " << stats.files << " files, "
            << mib(stats.written_bytes) << " written";
  if (o.delta)
    std::cout << ", " << stats.unchanged_files << " files unchanged, " << stats.removed
              << " entries removed";
  std::cout << ", " << static_cast<double>((now_unix_us() - t0) / 100000) / 10.0 << " s";
  if (!options.restore_owner) std::cout << " (owners not restored: not root)";
  std::cout << "\n";
  return stats;
}

namespace {

int run_files_cat(const Context& ctx, const SnapshotArgs& a, const std::string& path) {
  const ServedSnapshot served = first_with_snapshot(ctx, a);
  const files::SnapshotRecord& s = served.record;
  repo::ChunkStore chunks(*served.repo);
  const std::optional<files::Node> node = files::find_entry(chunks, s.root, path);
  if (!node)
    throw Error(ErrorCode::kNotFound,
                "snapshot " + files::snapshot_id(s) + " has no " + printable_name(path));
  std::cout.flush();
  files::write_file_content(chunks, *node, 1);
  return 0;
}

int run_files_diff(const Context& ctx, const SnapshotArgs& a, const SnapshotArgs& b, bool json) {
  // The first repository that has both.
  std::unique_ptr<repo::Repository> r;
  files::SnapshotRecord before, after;
  first_that_serves(ctx.repos.locations(), [&](const std::string& location) {
    r = ctx.repos.open(location);
    before = find(*r, a);
    after = find(*r, b);
    return true;
  });
  repo::ChunkStore chunks(*r);
  nlohmann::json out = nlohmann::json::array();
  std::uint64_t added = 0, removed = 0, changed = 0;
  files::diff_snapshots(
      chunks, before.root, after.root,
      [&](files::Change c, const std::string& path, const files::Node* old_node,
          const files::Node* new_node) {
        const char mark = c == files::Change::kAdded     ? '+'
                          : c == files::Change::kRemoved ? '-'
                                                         : 'M';
        (c == files::Change::kAdded ? added : c == files::Change::kRemoved ? removed : changed)++;
        const std::uint64_t old_size = old_node ? old_node->size : 0;
        const std::uint64_t new_size = new_node ? new_node->size : 0;
        if (json) {
          out.push_back({{"change", std::string(1, mark)},
                         {"path", path},
                         {"old_size", old_size},
                         {"new_size", new_size}});
          return;
        }
        std::cout << mark << " " << printable_name(path);
        if (c == files::Change::kChanged && old_size != new_size)
          std::cout << " (" << old_size << " -> " << new_size << " bytes)";
        else if (c != files::Change::kChanged)
          std::cout << " (" << (old_node ? old_size : new_size) << " bytes)";
        std::cout << "\n";
      });
  if (json)
    std::cout << out.dump(1) << "\n";
  else
    std::cout << added << " added, " << removed << " removed, " << changed << " changed\n";
  return 0;
}

struct ExportArgs {
  SnapshotArgs snapshot;
  std::string format = "tar", output = "-";
};

int run_files_export(const Context& ctx, const ExportArgs& a) {
  if (a.format != "tar" && a.format != "tar.gz")
    throw Error(ErrorCode::kUsage, "--format: '" + a.format + "' is neither tar nor tar.gz");
  const ServedSnapshot served = first_with_snapshot(ctx, a.snapshot);
  const files::SnapshotRecord& s = served.record;
  repo::ChunkStore chunks(*served.repo);
  UniqueFd file;
  int fd = 1;
  if (a.output != "-") {
    file = UniqueFd(::open(a.output.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (file.get() < 0) throw_errno("files export: creating " + a.output, errno);
    fd = file.get();
  }
  std::vector<std::string> warnings;
  files::export_tar(chunks, s.root, s.root_node, fd, {.gzip = a.format == "tar.gz"}, warnings);
  for (const std::string& w : warnings) spdlog::warn("files export: {}", w);
  if (file.get() >= 0 && ::fsync(file.get()) != 0) throw_errno("files export: " + a.output, errno);
  return 0;
}

struct ImportArgs {
  std::string volume, time, tag, file;
};

// Into every repository, like `files backup`: the file is read once per
// repository (a pipe can serve only one).
int run_files_import(const Context& ctx, const ImportArgs& a) {
  const std::optional<std::int64_t> time_us = parse_time_us(a.time);
  if (!time_us) throw Error(ErrorCode::kUsage, "--time: '" + a.time + "' is not a time");
  UniqueFd file(::open(a.file.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) throw_errno("files import: opening " + a.file, errno);
  auto opened = ctx.repos.open_all(KeyFallback::kNone);
  if (opened.size() > 1 && ::lseek(file.get(), 0, SEEK_CUR) < 0)
    throw Error(ErrorCode::kUsage, "files import: " + a.file +
                                       " cannot be read again for a second repository (a pipe?): "
                                       "import into one, then `repo sync`");
  for (auto& r : opened) {
    if (::lseek(file.get(), 0, SEEK_SET) < 0 && opened.size() > 1)
      throw_errno("files import: rewinding " + a.file, errno);
    repo::HistoryEntry entry = repo::start_history("files-import");
    run_recorded({r.get()}, entry, [&] {
      const auto lock = repo::RepoLock::acquire(*r, repo::LockMode::kShared, "files import",
                                                command_lock_options());
      files::SnapshotStats stats;
      const files::SnapshotRecord s =
          files::import_snapshot(*r, a.volume, *time_us, a.tag, file.get(), a.file, stats);
      entry.detail = "imported " + a.file + ": " + snapshot_line(s);
      entry.bytes = s.added_bytes;
      std::cout << "imported " << a.file << " as " << snapshot_line(s) << "\n";
    });
  }
  return 0;
}

void add_snapshot_args(CLI::App* cmd, SnapshotArgs& a) {
  cmd->add_option("snapshot", a.snapshot, "an id, latest, or VOLUME@TIME")->required();
  cmd->add_option("--volume", a.volume, "with latest: the newest of this volume");
}

void register_files_reading(CLI::App* files, Verbs& verbs) {
  CLI::App* ls = files->add_subcommand("ls", "list a snapshot's entries");
  auto ls_args = std::make_shared<std::pair<SnapshotArgs, std::string>>();
  auto ls_json = std::make_shared<bool>(false);
  add_snapshot_args(ls, ls_args->first);
  ls->add_option("path", ls_args->second, "only this path and what is below it");
  ls->add_flag("--json", *ls_json, "machine-readable output");
  verbs.push_back({ls, [ls_args, ls_json](const Context& ctx) {
                     return run_files_ls(ctx, ls_args->first, ls_args->second, *ls_json);
                   }});

  CLI::App* cat = files->add_subcommand("cat", "write one file of a snapshot to stdout");
  auto cat_args = std::make_shared<std::pair<SnapshotArgs, std::string>>();
  add_snapshot_args(cat, cat_args->first);
  cat->add_option("path", cat_args->second, "the file's path in the snapshot")->required();
  verbs.push_back({cat, [cat_args](const Context& ctx) {
                     return run_files_cat(ctx, cat_args->first, cat_args->second);
                   }});

  CLI::App* diff = files->add_subcommand("diff", "what changed between two snapshots");
  auto diff_args = std::make_shared<std::pair<SnapshotArgs, SnapshotArgs>>();
  auto diff_json = std::make_shared<bool>(false);
  diff->add_option("before", diff_args->first.snapshot, "the older snapshot")->required();
  diff->add_option("after", diff_args->second.snapshot, "the newer snapshot")->required();
  diff->add_flag("--json", *diff_json, "machine-readable output");
  verbs.push_back({diff, [diff_args, diff_json](const Context& ctx) {
                     return run_files_diff(ctx, diff_args->first, diff_args->second, *diff_json);
                   }});
}

void register_files_transfer(CLI::App* files, Verbs& verbs) {
  CLI::App* restore = files->add_subcommand("restore", "restore a snapshot into a directory");
  auto r = std::make_shared<FilesRestoreArgs>();
  add_snapshot_args(restore, r->snapshot);
  restore->add_option("--to", r->options.to, "the directory to restore into (empty or new)")
      ->required();
  restore->add_option("--include", r->options.includes, "only this path (repeatable)");
  restore->add_flag("--delta", r->options.delta, "bring an existing directory to the snapshot");
  restore
      ->add_option("--parallel", r->options.parallel,
                   "threads writing files (default: 4 x CPUs, 4 to 16)")
      ->check(CLI::Range(1, 64));
  verbs.push_back({restore, [r](const Context& ctx) { return run_files_restore(ctx, *r); }});

  CLI::App* exp = files->add_subcommand("export", "a snapshot as a tar stream");
  auto e = std::make_shared<ExportArgs>();
  add_snapshot_args(exp, e->snapshot);
  exp->add_option("--format", e->format, "tar or tar.gz")->default_str("tar");
  exp->add_option("--output,-o", e->output, "a new file ('-' for stdout)")->default_str("-");
  verbs.push_back({exp, [e](const Context& ctx) { return run_files_export(ctx, *e); }});

  CLI::App* imp = files->add_subcommand("import", "bring a tarball in as a snapshot");
  auto i = std::make_shared<ImportArgs>();
  imp->add_option("--volume", i->volume, "the volume it is a snapshot of")->required();
  imp->add_option("--time", i->time, "when it was taken (UTC unless a zone is given)")->required();
  imp->add_option("--tag", i->tag, "tag for retention policies");
  imp->add_option("file", i->file, "a .tar or .tar.gz file")->required();
  verbs.push_back({imp, [i](const Context& ctx) { return run_files_import(ctx, *i); }});
}

}  // namespace

void register_files(CLI::App& app, Verbs& verbs) {
  CLI::App* files =
      app.add_subcommand("files", "file-volume snapshots (uploads, scripts, reports)");
  files->require_subcommand(1);

  CLI::App* backup = files->add_subcommand("backup", "snapshot one or more directories");
  auto b = std::make_shared<FilesBackupArgs>();
  backup->add_option("--volume", b->volume, "the volume's name (e.g. app_data)")->required();
  backup->add_option("paths", b->paths, "directories to snapshot")->required();
  backup->add_option("--tag", b->tag, "tag for retention policies");
  backup->add_option("--exclude", b->excludes, "glob of names or paths to leave out (repeatable)");
  backup->add_flag("--one-file-system", b->one_file_system, "do not cross into other file systems");
  backup->add_flag("--force-reread", b->force_reread, "read every file, even unchanged ones");
  backup
      ->add_option("--parallel", b->parallel,
                   "threads compressing and storing while one reads (default: CPUs)")
      ->check(CLI::Range(1, 64));
  verbs.push_back({backup, [b](const Context& ctx) {
                     backup_volume(ctx, *b);
                     return 0;
                   }});

  CLI::App* list = files->add_subcommand("list", "list snapshots");
  auto volume = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  list->add_option("--volume", *volume, "only this volume");
  list->add_flag("--json", *json, "machine-readable output");
  verbs.push_back(
      {list, [volume, json](const Context& ctx) { return run_files_list(ctx, *volume, *json); }});

  register_files_reading(files, verbs);
  register_files_transfer(files, verbs);
}

}  // namespace walvault::cli
