// The commands of the command line, one cmd_<verb>.cpp per verb or verb
// group: each registers its subcommand(s) and options on the app and returns
// what runs each, so app.cpp only parses, builds the Context and calls the
// one that was given.
//
// A command's run function receives the parsed global options and the
// repositories (repo_set.h); it prints its output, returns the exit status
// of an expected outcome (0, or a monitoring status), and throws Error for a
// failure (app.cpp prints it and maps it to the exit status).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/config.h"
#include "cli/repo_set.h"

namespace walvault::cli {

inline constexpr char kDefaultSpool[] = "/var/spool/walvault";

// The global options, wherever they appear (before or after the verb).
struct Globals {
  RepoAccess repos;
  std::string spool_path;  // "": the default spool
  std::string log_level = "warn";
  std::string config;  // the config file in use (which may not exist)
};

// What a command runs with, once the command line is parsed.
struct Context {
  Globals globals;
  ConfigSections config;  // the config file's keys no flag has
  RepoSet repos;
};

// One verb: its subcommand, and what runs it once parsed. It runs when its
// subcommand was given and none of that subcommand's own subcommands was
// (`backup list` runs list, not backup).
struct Verb {
  CLI::App* command = nullptr;
  std::function<int(const Context&)> run;
};
using Verbs = std::vector<Verb>;

// Each adds its subcommands to `app` (in this order: the order of --help)
// and their Verbs to `verbs`. `parallel` is the default worker count.
void register_repo(CLI::App& app, Verbs& verbs);  // repo init|add-key-file|info|sync
void register_archive_push(CLI::App& app, Verbs& verbs, int parallel);
void register_archive_get(CLI::App& app, Verbs& verbs);
void register_wal(CLI::App& app, Verbs& verbs);  // wal list
// backup, backup list; returns `backup` (register_maintenance adds to it).
CLI::App& register_backup(CLI::App& app, Verbs& verbs, int parallel);
// expire, gc; backup keep|unkeep on `backup`.
void register_maintenance(CLI::App& app, CLI::App& backup, Verbs& verbs);
void register_restore(CLI::App& app, Verbs& verbs, int parallel);
void register_verify(CLI::App& app, Verbs& verbs);
void register_info(CLI::App& app, Verbs& verbs);
void register_monitor(CLI::App& app, Verbs& verbs);  // check, metrics
// drill (its option --drill-check is a hidden global: the config file's drill-check keys).
void register_drill(CLI::App& app, Verbs& verbs, int parallel);
void register_history(CLI::App& app, Verbs& verbs);
void register_files(CLI::App& app,
                    Verbs& verbs);  // files backup|list|ls|restore|cat|diff|export|import
void register_dump(CLI::App& app, Verbs& verbs);  // dump, dump list|restore|import
// schedule install|list|remove|run, and notify (what a failed job's unit calls).
void register_schedule(CLI::App& app, Verbs& verbs);

// This walvault binary's absolute path (/proc/self/exe), "walvault" when unknown.
std::string this_binary();

// "12.3 MiB": sizes as backup, backup list and restore print them.
std::string mib(std::uint64_t bytes);

// The restore_command a restored cluster runs: this binary's archive-get with
// the same config file, repositories and secrets' locations (never the
// secrets themselves), every path absolute. Restore and drill write it.
std::string archive_get_command(const Globals& globals);

// The local spool of `purpose` ("push", "get") for one repository, created;
// "" when it cannot be used (batching, prefetch and pre-staging are then
// off; correctness does not depend on them).
std::string spool_dir(const Globals& globals, const repo::Repository& repo, const char* purpose);

// One argument quoted for /bin/sh when it needs it.
std::string shell_quote(const std::string& arg);

}  // namespace walvault::cli
