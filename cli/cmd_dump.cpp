// `dump [--db NAME | --all] [--globals]`, `dump list`, `dump restore`,
// `dump import`: logical dumps (dump/), in the same repositories as the
// backups.
#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/history_scope.h"
#include "core/contained_dir.h"
#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "dump/restore_dump.h"
#include "dump/take_dump.h"
#include "repo/lock.h"

namespace walvault::cli {

namespace {

struct DumpArgs {
  std::string pg, database, tag, pg_bin;
  bool all = false, globals = false;
};

std::string dump_line(const dump::DumpRecord& r) {
  return "dump " + dump::dump_id(r) + " of " + r.database + " (" + r.label + ", " +
         dump::format_name(r.format) + "): " + mib(r.bytes) + ", " + mib(r.added_bytes) + " new";
}

nlohmann::json dump_extra(const dump::DumpRecord& r) {
  return {{"database", r.database}, {"label", r.label},
          {"id", dump::dump_id(r)}, {"format", dump::format_name(r.format)},
          {"bytes", r.bytes},       {"added_bytes", r.added_bytes}};
}

// One database's dump (one pg_dump), or the globals' when `database` is
// dump::kGlobalsDatabase (one pg_dumpall), into every repository, recorded
// in each repository's history.
void dump_one(const std::vector<repo::Repository*>& repos, const DumpArgs& a,
              const std::string& database) {
  repo::HistoryEntry entry = repo::start_history("dump");
  run_recorded(repos, entry, [&] {
    std::vector<std::unique_ptr<repo::RepoLock>> locks;
    for (repo::Repository* r : repos)
      locks.push_back(
          repo::RepoLock::acquire(*r, repo::LockMode::kShared, "dump", command_lock_options()));
    const dump::TakeDumpOptions options{
        .conninfo = a.pg, .database = database, .tag = a.tag, .pg_bin = a.pg_bin};
    const std::vector<dump::DumpRecord> records = database == dump::kGlobalsDatabase
                                                      ? dump::take_globals(repos, options)
                                                      : dump::take_dump(repos, options);
    const dump::DumpRecord& first = records.front();
    entry.detail = dump_line(first);
    entry.bytes = first.added_bytes;
    entry.extra = dump_extra(first);
    for (const dump::DumpRecord& r : records)
      std::cout << dump_line(r) << ", "
                << static_cast<double>((r.end_us - r.start_us) / 100000) / 10.0 << " s\n";
  });
}

int run_dump(const Context& ctx, const DumpArgs& a) {
  if (a.pg.empty()) throw Error(ErrorCode::kUsage, "dump: give --pg (or WALVAULT_PG)");
  if (a.all && !a.database.empty())
    throw Error(ErrorCode::kUsage, "dump: give --db NAME or --all, not both");
  if (!a.all && !a.globals && a.database.empty())
    throw Error(ErrorCode::kUsage, "dump: give --db NAME, --all or --globals");
  auto opened = ctx.repos.open_all(KeyFallback::kNone);
  std::vector<repo::Repository*> repos;
  for (auto& r : opened) repos.push_back(r.get());
  std::vector<std::string> databases =
      a.all ? dump::databases_to_dump(a.pg)
            : (a.database.empty() ? std::vector<std::string>{} : std::vector{a.database});
  for (const std::string& db : databases) {
    if (auto p = dump::dumpable_problem(db))
      throw Error(ErrorCode::kUsage, "database " + printable_name(db) + " " + *p);
  }
  // The globals first, as pg_dumpall orders them: roles before what they own.
  if (a.all || a.globals) databases.insert(databases.begin(), dump::kGlobalsDatabase);
  for (const std::string& db : databases) dump_one(repos, a, db);
  return 0;
}

int run_dump_list(const Context& ctx, const std::string& database, bool json) {
  auto r = ctx.repos.open_first();
  const auto all =
      dump::list_dumps(*r, database.empty() ? std::nullopt : std::optional<std::string>(database));
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : all) {
      nlohmann::json j = dump_extra(d);
      j["tag"] = d.tag;
      j["start_time"] = format_time_us(d.start_us);
      j["end_time"] = format_time_us(d.end_us);
      j["source"] = d.source;
      j["file"] = d.file;
      j["host"] = d.host;
      j["server_version"] = d.server_version;
      j["chunks"] = d.chunks.size();
      out.push_back(std::move(j));
    }
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  if (all.empty()) {
    std::cout << "no dumps\n";
    return 0;
  }
  std::printf("%-12s %-16s %-20s %-7s %-10s %12s %12s\n", "id", "database", "time (UTC)", "format",
              "tag", "size", "added");
  for (const auto& d : all)
    std::printf("%-12s %-16s %-20.19s %-7s %-10s %12s %12s\n", dump::dump_id(d).c_str(),
                d.database.c_str(), format_time_us(d.start_us).c_str(),
                dump::format_name(d.format).c_str(), d.tag.empty() ? "-" : d.tag.c_str(),
                mib(d.bytes).c_str(), mib(d.added_bytes).c_str());
  std::fflush(stdout);
  return 0;
}

struct DumpRestoreArgs {
  std::string dump, pg, database, from_database, pg_bin;
  std::vector<std::string> tables;
  bool create = false;
};

// From the first repository that has the dump, under a shared lock (gc
// cannot remove its chunks while they are read).
int run_dump_restore(const Context& ctx, const DumpRestoreArgs& a) {
  if (a.pg.empty()) throw Error(ErrorCode::kUsage, "dump restore: give --pg (or WALVAULT_PG)");
  std::unique_ptr<repo::Repository> repo;
  std::unique_ptr<repo::RepoLock> lock;
  dump::DumpRecord record;
  first_that_serves(ctx.repos.locations(), [&](const std::string& location) {
    lock.reset();
    repo = ctx.repos.open(location);
    std::string refused;
    lock = repo::RepoLock::acquire_for_reading(*repo, "dump restore", command_lock_options(),
                                               &refused);
    if (!lock)
      spdlog::warn("repository {} does not take a lock ({}): reading without one",
                   store::redact_location(location), refused);
    // "latest" is the newest dump of --from-db, else of the database restored into.
    const std::string of = a.from_database.empty() ? a.database : a.from_database;
    if (a.dump == "latest" && of.empty())
      throw Error(ErrorCode::kUsage, std::string("dump restore latest: give --from-db NAME (") +
                                         dump::kGlobalsDatabase + " for the globals) or --db");
    record = dump::find_dump(*repo, a.dump, a.dump == "latest" ? std::optional(of) : std::nullopt);
    return true;
  });
  const std::int64_t t0 = now_unix_us();
  const dump::RestoreDumpResult result = dump::restore_dump(*repo, record,
                                                            {.conninfo = a.pg,
                                                             .database = a.database,
                                                             .create = a.create,
                                                             .tables = a.tables,
                                                             .pg_bin = a.pg_bin});
  std::cout << "restored dump " << dump::dump_id(record) << " of " << record.database << " ("
            << record.label << ") into "
            << (dump::is_globals(record)
                    ? std::string("the server")
                    : (result.created ? "new database " : "database ") + a.database)
            << " with " << result.program << ": " << mib(result.bytes_sent) << " read, "
            << static_cast<double>((now_unix_us() - t0) / 100000) / 10.0 << " s\n";
  if (!result.already_existed.empty()) {
    std::cout << result.already_existed.size()
              << " already existed and stayed (a role's attributes and password were set from "
                 "the dump):";
    for (std::size_t i = 0; i < result.already_existed.size(); ++i)
      std::cout << (i ? ", " : " ") << result.already_existed[i];
    std::cout << "\n";
  }
  return 0;
}

struct DumpImportArgs {
  std::string database, time, tag, file;
};

int run_dump_import(const Context& ctx, const DumpImportArgs& a) {
  const std::optional<std::int64_t> time_us = parse_time_us(a.time);
  if (!time_us) throw Error(ErrorCode::kUsage, "--time: '" + a.time + "' is not a time");
  UniqueFd file(::open(a.file.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) throw_errno("dump import: opening " + a.file, errno);
  auto r = ctx.repos.open_first();
  repo::HistoryEntry entry = repo::start_history("dump-import");
  run_recorded({r.get()}, entry, [&] {
    const auto lock =
        repo::RepoLock::acquire(*r, repo::LockMode::kShared, "dump import", command_lock_options());
    const dump::DumpRecord d =
        dump::import_dump(*r, a.database, *time_us, a.tag, file.get(), a.file);
    entry.detail = "imported " + a.file + ": " + dump_line(d);
    entry.bytes = d.added_bytes;
    entry.extra = dump_extra(d);
    std::cout << "imported " << a.file << " as " << dump_line(d) << "\n";
  });
  return 0;
}

void add_pg_option(CLI::App* cmd, std::string& pg, const std::string& help) {
  cmd->add_option("--pg", pg, help)->envname(env_name("pg"));
}

void register_dump_subcommands(CLI::App* dump, Verbs& verbs) {
  CLI::App* list = dump->add_subcommand("list", "list dumps");
  auto database = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  list->add_option("--db", *database, "only this database's dumps");
  list->add_flag("--json", *json, "machine-readable output");
  verbs.push_back({list, [database, json](const Context& ctx) {
                     return run_dump_list(ctx, *database, *json);
                   }});

  CLI::App* restore = dump->add_subcommand(
      "restore", "restore a dump into a database (the globals: into the server)");
  auto r = std::make_shared<DumpRestoreArgs>();
  restore->add_option("dump", r->dump, "an id, latest, or DATABASE@TIME")->required();
  restore->add_option("--db", r->database,
                      "the database to restore into (it must exist, unless --create); not for "
                      "the globals");
  restore->add_flag("--create", r->create, "create the --db database (it must not exist)");
  restore->add_option("--from-db", r->from_database,
                      "with latest: the newest dump of this database (default: --db)");
  add_pg_option(restore, r->pg, "libpq connection string of the target server");
  restore->add_option("--table", r->tables, "only this table (repeatable; custom-format dumps)");
  restore->add_option("--pg-bin", r->pg_bin,
                      "directory of pg_restore/psql (default: the server's major's)");
  verbs.push_back({restore, [r](const Context& ctx) { return run_dump_restore(ctx, *r); }});

  CLI::App* imp = dump->add_subcommand("import", "bring a dump file (.sql, .sql.gz, custom) in");
  auto i = std::make_shared<DumpImportArgs>();
  imp->add_option("--db", i->database, "the database it is a dump of")->required();
  imp->add_option("--time", i->time, "when it was taken (UTC unless a zone is given)")->required();
  imp->add_option("--tag", i->tag, "tag for retention policies");
  imp->add_option("file", i->file, "the dump file")->required();
  verbs.push_back({imp, [i](const Context& ctx) { return run_dump_import(ctx, *i); }});
}

}  // namespace

void register_dump(CLI::App& app, Verbs& verbs) {
  CLI::App* dump = app.add_subcommand(
      "dump", "logical dump of a database (pg_dump); 'dump list|restore|import'");
  dump->require_subcommand(0, 1);
  auto a = std::make_shared<DumpArgs>();
  add_pg_option(dump, a->pg, "libpq connection string of the server");
  dump->add_option("--db", a->database, "the database to dump");
  dump->add_flag("--all", a->all,
                 "the globals and every database that takes connections, one dump each");
  dump->add_flag("--globals", a->globals,
                 "the cluster's roles and tablespaces (pg_dumpall --globals-only), as dump " +
                     std::string(dump::kGlobalsDatabase));
  dump->add_option("--tag", a->tag, "tag for retention policies");
  dump->add_option("--pg-bin", a->pg_bin, "directory of pg_dump (default: the server's major's)");
  verbs.push_back({dump, [a](const Context& ctx) { return run_dump(ctx, *a); }});
  register_dump_subcommands(dump, verbs);
}

}  // namespace walvault::cli
