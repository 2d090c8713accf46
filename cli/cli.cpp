#include "cli/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/backup_cmd.h"
#include "cli/drill_cmd.h"
#include "cli/history_cmd.h"
#include "cli/maintenance_cmd.h"
#include "cli/ops_cmd.h"
#include "codec/crypto.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/time_util.h"
#include "ops/monitor.h"
#include "repo/cluster.h"
#include "repo/repository.h"
#include "store/object_store.h"
#include "walarchive/archive_get.h"
#include "walarchive/archive_push.h"
#include "walarchive/wal_list.h"

namespace walvault::cli {

namespace {

constexpr char kEnvPrefix[] = "WALVAULT_";
constexpr char kDefaultConfig[] = "/etc/walvault.conf";
constexpr char kDefaultSpool[] = "/var/spool/walvault";
constexpr std::string_view kS3Scheme = "s3://";

std::string env_name(std::string option) {
  for (auto& c : option) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return kEnvPrefix + option;
}

// INI reader that drops every key whose WALVAULT_* variable is set, so the
// environment overrides the file (CLI11 alone reads the file first), and
// takes the s3-* keys out into `s3_items`: they are config-file-only
// (store/s3_settings.h), so CLI11 never sees them and no flag exists for them.
// The top-level `repo` and every `repo<N>...` key go to `repo_items`
// (repos_from_config), used when neither --repo nor WALVAULT_REPO is given.
class EnvFirstConfig : public CLI::ConfigINI {
 public:
  EnvFirstConfig(std::shared_ptr<std::vector<CLI::ConfigItem>> s3_items,
                 std::shared_ptr<std::vector<CLI::ConfigItem>> repo_items,
                 std::shared_ptr<std::vector<CLI::ConfigItem>> retention_items)
      : s3_items_(std::move(s3_items)),
        repo_items_(std::move(repo_items)),
        retention_items_(std::move(retention_items)) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    auto items = CLI::ConfigINI::from_config(input);
    std::vector<CLI::ConfigItem> kept;
    for (auto& item : items) {
      if (item.name.starts_with("s3-")) {
        s3_items_->push_back(std::move(item));
      } else if (!item.parents.empty() && item.parents.front() == "retention") {
        retention_items_->push_back(std::move(item));  // retention_from_config
      } else if ((item.name == "repo" && item.parents.empty()) ||
                 (item.name.size() > 4 && item.name.starts_with("repo") &&
                  std::isdigit(static_cast<unsigned char>(item.name[4])))) {
        repo_items_->push_back(std::move(item));
      } else if (std::getenv(env_name(item.name).c_str()) == nullptr) {
        kept.push_back(std::move(item));
      }
    }
    return kept;
  }

 private:
  std::shared_ptr<std::vector<CLI::ConfigItem>> s3_items_;
  std::shared_ptr<std::vector<CLI::ConfigItem>> repo_items_;
  std::shared_ptr<std::vector<CLI::ConfigItem>> retention_items_;
};

// The repositories the config file names: `repo = a` or `repo = [a, b]`, or
// `repo1 = a`, `repo2 = b`, ... in the order of N (gaps allowed), not both.
// There are no per-repository keys (`repo2-key-file`): one key file can unlock
// several repositories (repo add-key-file --existing), so key-file serves all.
std::vector<std::string> repos_from_config(const std::vector<CLI::ConfigItem>& items) {
  constexpr std::size_t kMaxRepoNumberDigits = 6;
  std::vector<std::string> plain;
  std::map<unsigned long, std::string> numbered;
  for (const CLI::ConfigItem& item : items) {
    const std::string& name = item.name;
    if (!item.parents.empty())
      throw Error(ErrorCode::kUsage,
                  "config file: " + name + " belongs before the first [section]");
    if (name == "repo") {
      plain.insert(plain.end(), item.inputs.begin(), item.inputs.end());
      continue;
    }
    const std::string number = name.substr(4);
    if (number.find_first_not_of("0123456789") != std::string::npos)
      throw Error(ErrorCode::kUsage,
                  "config file: " + name +
                      ": there are no per-repository settings; key-file serves every repository "
                      "(register one key file with each: repo add-key-file --existing)");
    if (number.front() == '0' || number.size() > kMaxRepoNumberDigits)
      throw Error(ErrorCode::kUsage,
                  "config file: " + name + ": repositories are numbered repo1, repo2, ...");
    if (item.inputs.size() != 1 || item.inputs.front().empty())
      throw Error(ErrorCode::kUsage, "config file: " + name + " takes one repository location");
    if (!numbered.emplace(std::stoul(number), item.inputs.front()).second)
      throw Error(ErrorCode::kUsage, "config file: " + name + " is given twice");
  }
  if (!plain.empty() && !numbered.empty())
    throw Error(ErrorCode::kUsage,
                "config file: give the repositories as repo or as repo1, repo2, ..., not both");
  for (const auto& [n, location] : numbered) plain.push_back(location);
  return plain;
}

// The S3Settings of the config file's s3-* keys, which belong to its top
// (before any [section]) and take one value each.
store::S3Settings s3_settings_from_config(const std::vector<CLI::ConfigItem>& items) {
  store::S3Settings settings;
  for (const CLI::ConfigItem& item : items) {
    if (!item.parents.empty())
      throw Error(ErrorCode::kUsage,
                  "config file: " + item.name + " belongs before the first [section]");
    if (item.inputs.size() != 1)
      throw Error(ErrorCode::kUsage, "config file: " + item.name +
                                         " takes one value (quote a value with spaces or commas)");
    store::set_s3_setting(settings, item.name, item.inputs.front());
  }
  return settings;
}

// Why a --s3-* argument is refused, or "" when `argv` has none. The s3-*
// settings are config-file keys only: a credential in argv would be readable
// by every local user (ps, /proc/<pid>/cmdline). The message names the key,
// never the value.
std::string s3_flag_error(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!arg.starts_with("--s3-")) continue;
    const std::string key(arg.substr(
        2, arg.find('=') == std::string_view::npos ? std::string_view::npos : arg.find('=') - 2));
    if (store::is_s3_credential_key(key))
      return "--" + key +
             ": credentials are not accepted on the command line, where other local users can "
             "read them: put " +
             key + " in the config file or set the AWS_* variables";
    if (store::is_s3_setting_key(key))
      return "--" + key + ": S3 settings are read from the config file only (" + key + " = ...)";
    return "unknown option --" + key;
  }
  return "";
}

struct Globals {
  std::string config;
  std::vector<std::string> repos;  // several: 3-2-1 (archive-push needs every one)
  std::string key_file;
  std::string passphrase_file;
  std::string spool_path;
  std::string log_level = "warn";
  store::S3Settings s3;  // the config file's s3-* keys, for every s3:// repository
};

template <typename T>
CLI::Option* add_env_option(CLI::App* app, const std::string& flag, T& target,
                            const std::string& help) {
  return app->add_option("--" + flag, target, help)->envname(env_name(flag));
}

repo::Secrets load_secrets(const Globals& g) {
  repo::Secrets s;
  if (!g.key_file.empty()) s.key_file = g.key_file;
  if (!g.passphrase_file.empty()) {
    auto bytes = read_file(g.passphrase_file);
    if (!bytes)
      throw Error(ErrorCode::kKey, "passphrase file " + g.passphrase_file + " does not exist");
    std::string text(as_chars(*bytes));
    auto nl = text.find('\n');
    if (nl != std::string::npos) text.resize(nl);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    s.passphrase = text;
  } else if (const char* p = std::getenv("WALVAULT_PASSPHRASE")) {
    s.passphrase = p;
  }
  return s;
}

const std::vector<std::string>& require_repos(const Globals& g) {
  if (g.repos.empty())
    throw Error(ErrorCode::kUsage,
                "no repository: give --repo, WALVAULT_REPO or repo= (repo1=, ...) in the config "
                "file");
  for (const auto& repo : g.repos) {
    if (auto scheme = repo.find("://"); scheme != std::string::npos && !repo.starts_with(kS3Scheme))
      throw Error(ErrorCode::kUsage, "repository location " + repo + ": scheme '" +
                                         repo.substr(0, scheme) + "' is not supported");
  }
  return g.repos;
}

std::unique_ptr<repo::Repository> open_repo_at(const Globals& g, const std::string& location) {
  // Local paths are checked here for a clearer message; an S3 bucket or
  // repository that is missing is reported by the store and the repository.
  const bool local = location != "mem:" && !location.starts_with(kS3Scheme);
  if (local && ::access(location.c_str(), F_OK) != 0)
    throw Error(ErrorCode::kRepoFormat,
                "no walvault repository at " + location + " (run 'walvault repo init')");
  std::shared_ptr<store::ObjectStore> st = store::open_store(location, /*create=*/false, g.s3);
  return repo::Repository::open(st, load_secrets(g));
}

// Opens `location` with `key_file` (else --key-file). A key file unlocks only
// the repositories it is registered with, so when that was --key-file and it
// does not unlock this one, the passphrase is tried (when there is one).
std::unique_ptr<repo::Repository> open_repo_or_passphrase(const Globals& g,
                                                          const std::string& location,
                                                          const std::string& key_file = "") {
  Globals side = g;
  if (!key_file.empty()) side.key_file = key_file;
  try {
    return open_repo_at(side, location);
  } catch (const Error& e) {
    side.key_file.clear();
    if (e.code() != ErrorCode::kKey || !key_file.empty() || g.key_file.empty() ||
        !load_secrets(side).passphrase)
      throw;
    return open_repo_at(side, location);
  }
}

// Commands that act on one repository use the first one given.
std::unique_ptr<repo::Repository> open_repo(const Globals& g) {
  return open_repo_at(g, require_repos(g).front());
}

// With several repositories, errors say which one they are about.
Error in_repository(const Globals& g, const std::string& location, const Error& e) {
  if (g.repos.size() < 2) return e;
  return Error(e.code(), "repository " + location + ": " + e.what());
}

// Every repository, all opened before anything is written to any.
std::vector<std::unique_ptr<repo::Repository>> open_all(const Globals& g,
                                                        bool passphrase_fallback) {
  std::vector<std::unique_ptr<repo::Repository>> opened;
  for (const auto& location : require_repos(g)) {
    try {
      opened.push_back(passphrase_fallback ? open_repo_or_passphrase(g, location)
                                           : open_repo_at(g, location));
    } catch (const Error& e) {
      throw in_repository(g, location, e);
    }
  }
  return opened;
}

// The local spool for one repository, or "" when it cannot be used
// (batching and prefetch are then off; correctness does not depend on them).
std::string spool_dir(const Globals& g, const repo::Repository& r, const char* purpose) {
  std::string base = g.spool_path.empty() ? kDefaultSpool : g.spool_path;
  std::string dir = base + "/" + r.config().repo_id + "/" + purpose;
  try {
    make_dirs(dir);
  } catch (const Error& e) {
    spdlog::info("spool unavailable, batching/prefetch off: {}", e.what());
    return "";
  }
  if (::access(dir.c_str(), W_OK) != 0) return "";
  return dir;
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_logger_st("walvault");
  logger->set_pattern("walvault: %l: %v");
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw Error(ErrorCode::kUsage, "--log-level: unknown level '" + level + "'");
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

// Detaches and prefetches the next segments after archive-get returned, so
// PostgreSQL's next restore_command call finds its segment in the spool.
void start_prefetch(repo::Repository& r, const std::string& file_name, int count,
                    const std::string& dir) {
  if (count <= 0 || dir.empty()) return;
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = ::fork();
  if (pid != 0) return;  // parent (or fork failure: prefetch is an optimisation)
  ::setsid();
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
  }
  int status = 0;
  try {
    walarchive::prefetch(r, file_name, count, dir);
  } catch (...) {
    status = 1;  // the foreground call fetches for itself on a miss
  }
  ::_exit(status);
}

std::string absolute(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.starts_with(kS3Scheme) || path == "mem:")
    return path;
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) return path;
  return std::string(cwd) + "/" + path;
}

// The restore_command a restored cluster runs: this binary with the same
// repositories and secrets' locations (never the secrets themselves).
std::string archive_get_command(const Globals& g, const std::string& config_in_use) {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string cmd = shell_quote(n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : "walvault");
  if (!config_in_use.empty() && ::access(config_in_use.c_str(), R_OK) == 0)
    cmd += " --config " + shell_quote(absolute(config_in_use));
  for (const auto& r : g.repos) cmd += " --repo " + shell_quote(absolute(r));
  if (!g.key_file.empty()) cmd += " --key-file " + shell_quote(absolute(g.key_file));
  if (!g.passphrase_file.empty())
    cmd += " --passphrase-file " + shell_quote(absolute(g.passphrase_file));
  if (!g.spool_path.empty()) cmd += " --spool-path " + shell_quote(absolute(g.spool_path));
  return cmd + " archive-get %f %p";
}

// Whether the repositories' secret reached us through WALVAULT_PASSPHRASE
// alone, which archive_get_command cannot carry (it never holds a secret).
bool secret_only_in_environment(const Globals& g) {
  return g.key_file.empty() && g.passphrase_file.empty() &&
         std::getenv("WALVAULT_PASSPHRASE") != nullptr;
}

}  // namespace

int run(int argc, char** argv) {
  codec::initialize_crypto();
  CLI::App app{"walvault: PostgreSQL WAL archiving, backup and point-in-time recovery"};
  app.require_subcommand(1);
  // The global options may also follow the verb (`walvault repo init --repo X`,
  // as restic and pgBackRest take them): every subcommand, added below,
  // inherits this and hands options it does not know to its parent. Wherever
  // it appears, a global option is the same option: --repo collects every
  // occurrence in order, a single-valued one given twice is a usage error.
  app.fallthrough();
  auto s3_items = std::make_shared<std::vector<CLI::ConfigItem>>();
  auto repo_items = std::make_shared<std::vector<CLI::ConfigItem>>();
  auto retention_items = std::make_shared<std::vector<CLI::ConfigItem>>();
  app.config_formatter(std::make_shared<EnvFirstConfig>(s3_items, repo_items, retention_items));
  Globals g;
  const char* env_config = std::getenv("WALVAULT_CONFIG");
  app.set_config("--config", env_config ? env_config : kDefaultConfig,
                 "INI configuration file (WALVAULT_CONFIG); the only source of the s3-* keys");
  add_env_option(&app, "repo", g.repos,
                 "repository location: a directory or s3://bucket/prefix; repeat for several");
  add_env_option(&app, "key-file", g.key_file, "key file that unlocks an encrypted repository");
  add_env_option(&app, "passphrase-file", g.passphrase_file,
                 "file whose first line is the repository passphrase (else WALVAULT_PASSPHRASE)");
  add_env_option(&app, "spool-path", g.spool_path, "local spool for batching and prefetch")
      ->default_str(kDefaultSpool);
  add_env_option(&app, "log-level", g.log_level, "trace, debug, info, warn, error, off")
      ->default_str("warn");

  // repo
  CLI::App* repo_cmd = app.add_subcommand("repo", "create and manage a repository");
  repo_cmd->require_subcommand(1);
  CLI::App* init_cmd = repo_cmd->add_subcommand("init", "create a repository");
  bool encrypt = false;
  int zstd_level = 1;
  init_cmd->add_flag("--encrypt", encrypt, "encrypt with a passphrase-wrapped master key");
  init_cmd->add_option("--compress-level", zstd_level, "zstd level for new objects")
      ->check(CLI::Range(1, 19))
      ->default_str("1");
  std::string chunk_size_text = "1MiB";
  init_cmd
      ->add_option("--chunk-size", chunk_size_text,
                   "backup chunk size: whole 8 KiB pages, 64KiB to 64MiB (fixed at init)")
      ->default_str("1MiB");
  CLI::App* keyfile_cmd = repo_cmd->add_subcommand(
      "add-key-file", "write a key file for the hot path that unlocks every repository given");
  std::string key_out, key_existing;
  CLI::Option* key_out_opt =
      keyfile_cmd->add_option("--out", key_out, "path of the new key file (mode 0600)");
  keyfile_cmd
      ->add_option("--existing", key_existing,
                   "register this existing key file with the repositories instead")
      ->excludes(key_out_opt);
  CLI::App* info_cmd = repo_cmd->add_subcommand("info", "show the repository's identity");
  CLI::App* sync_cmd = repo_cmd->add_subcommand(
      "sync", "copy the WAL and backups one repository has and another lacks");
  std::string sync_from, sync_to, sync_from_key, sync_to_key;
  bool sync_dry_run = false;
  int sync_parallel = static_cast<int>(std::max(4u, std::thread::hardware_concurrency()));
  sync_cmd->add_option("--from", sync_from, "the repository to copy from")->required();
  sync_cmd->add_option("--to", sync_to, "the repository to copy into (repo init it first)")
      ->required();
  sync_cmd->add_option("--from-key-file", sync_from_key, "key file of --from (else --key-file)");
  sync_cmd->add_option("--to-key-file", sync_to_key, "key file of --to (else --key-file)");
  sync_cmd->add_flag("--dry-run", sync_dry_run, "list what would be copied, write nothing");
  sync_cmd->add_option("--parallel", sync_parallel, "threads copying segments and chunks")
      ->check(CLI::Range(1, 64));

  // archive-push / archive-get
  CLI::App* push_cmd = app.add_subcommand("archive-push", "archive one WAL file (archive_command)");
  std::string push_path;
  int parallel = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  push_cmd->add_option("wal_path", push_path, "%p: path of the WAL file")->required();
  push_cmd->add_option("--parallel", parallel, "segments pushed at once, including %p")
      ->envname(env_name("parallel"))
      ->check(CLI::Range(1, 64));
  CLI::App* get_cmd = app.add_subcommand("archive-get", "fetch one WAL file (restore_command)");
  std::string get_name, get_dest;
  int prefetch = 8;
  get_cmd->add_option("wal_file", get_name, "%f: name of the WAL file")->required();
  get_cmd->add_option("destination", get_dest, "%p: where to write it")->required();
  get_cmd->add_option("--prefetch", prefetch, "segments kept ready in the spool (0: off)")
      ->envname(env_name("prefetch"))
      ->check(CLI::Range(0, 256));

  // wal
  CLI::App* wal_cmd = app.add_subcommand("wal", "inspect archived WAL");
  wal_cmd->require_subcommand(1);
  CLI::App* wal_list_cmd =
      wal_cmd->add_subcommand("list", "timelines, ranges, gaps, commit times, restore points");
  bool json_out = false;
  wal_list_cmd->add_flag("--json", json_out, "machine-readable output");

  // backup / backup list / restore
  CLI::App* backup_cmd =
      app.add_subcommand("backup", "take a base backup; 'backup list' lists them");
  backup_cmd->require_subcommand(0, 1);
  BackupArgs backup_args;
  backup_args.parallel = parallel;
  backup_args.progress = ::isatty(2) == 1;
  backup_cmd
      ->add_option("--pg", backup_args.pg,
                   "libpq connection string of the server (replication connection)")
      ->envname(env_name("pg"));
  backup_cmd->add_option("--from-tar", backup_args.from_tar,
                         "ingest a pg_basebackup tar stream ('-' for stdin) instead");
  backup_cmd->add_option("--tag", backup_args.tag, "tag for retention policies");
  backup_cmd->add_option("--checkpoint", backup_args.checkpoint, "fast or spread")
      ->default_str("fast");
  backup_cmd->add_option("--parallel", backup_args.parallel, "worker threads")
      ->check(CLI::Range(1, 64));
  backup_cmd
      ->add_option("--wal-timeout", backup_args.wal_timeout_s,
                   "seconds to wait for the WAL that makes the backup consistent")
      ->envname(env_name("wal-timeout"))
      ->check(CLI::Range(1, 86400))
      ->default_str("60");
  backup_cmd->add_flag("--progress,!--no-progress", backup_args.progress,
                       "progress line on stderr (default: when stderr is a terminal)");
  CLI::App* backup_list_cmd = backup_cmd->add_subcommand("list", "list backups");
  bool backup_list_json = false;
  backup_list_cmd->add_flag("--json", backup_list_json, "machine-readable output");
  MaintenanceCli maintenance;  // expire, gc, backup keep/unkeep
  add_maintenance_commands(app, *backup_cmd, maintenance);

  CLI::App* restore_cmd =
      app.add_subcommand("restore", "rebuild a data directory at a chosen point in time");
  RestoreArgs restore_args;
  restore_args.parallel = parallel;
  restore_cmd->add_option("--pgdata", restore_args.pgdata, "data directory to restore into")
      ->required();
  restore_cmd->add_option("--target-time", restore_args.target_time,
                          "recover to this time ('2026-11-26 10:00:00+00')");
  restore_cmd->add_option("--target-lsn", restore_args.target_lsn, "recover to this LSN");
  restore_cmd->add_option("--target-xid", restore_args.target_xid,
                          "recover to this transaction's commit");
  restore_cmd->add_option("--target-name", restore_args.target_name,
                          "recover to this restore point");
  restore_cmd->add_flag("--target-immediate", restore_args.target_immediate,
                        "stop as soon as the backup is consistent");
  restore_cmd->add_option("--target-timeline", restore_args.target_timeline, "latest or a number")
      ->default_str("latest");
  restore_cmd
      ->add_option("--target-action", restore_args.target_action,
                   "pause, promote or shutdown once the target is reached")
      ->default_str("pause");
  restore_cmd->add_option("--set", restore_args.set, "restore this backup (label)");
  restore_cmd->add_flag("--dry-run", restore_args.dry_run, "print the plan, write nothing");
  restore_cmd->add_flag("--delta", restore_args.delta,
                        "reuse a non-empty directory: rewrite only what differs");
  restore_cmd->add_flag("--force", restore_args.force,
                        "with --delta: overwrite a data directory of another cluster");
  restore_cmd->add_option("--tablespace-map", restore_args.tablespace_map,
                          "OLD=NEW tablespace location (repeatable)");
  restore_cmd->add_flag("--no-direct-io", restore_args.no_direct_io,
                        "write through the page cache (default: O_DIRECT where possible)");
  restore_cmd->add_option("--parallel", restore_args.parallel, "writer threads")
      ->check(CLI::Range(1, 64));
  restore_cmd->add_option("--restore-command", restore_args.restore_command,
                          "restore_command to write (default: this walvault's archive-get)");

  // verify / info (read-only)
  CLI::App* verify_cmd =
      app.add_subcommand("verify", "check that every backup and the WAL it needs are whole");
  bool verify_read_data = false, verify_json = false;
  verify_cmd->add_flag("--read-data", verify_read_data,
                       "also read and check every object's content (every chunk, every segment)");
  verify_cmd->add_flag("--json", verify_json, "machine-readable output");
  CLI::App* repo_info_cmd = app.add_subcommand(
      "info", "repository size, backups, restorable window, WAL and restore points");
  bool repo_info_json = false;
  repo_info_cmd->add_flag("--json", repo_info_json, "machine-readable output");

  // check / metrics (monitoring)
  CLI::App* check_cmd = app.add_subcommand(
      "check",
      "one line and exit 0 OK / 1 WARNING / 2 CRITICAL for monitoring (backup and WAL age)");
  std::string max_backup_age = "26h", max_wal_age = "15m", check_pg, archive_timeout = "60";
  check_cmd->add_option("--max-backup-age", max_backup_age, "WARNING past this, CRITICAL past 2x")
      ->default_str("26h");
  check_cmd->add_option("--max-wal-age", max_wal_age, "WARNING past this, CRITICAL past 2x")
      ->default_str("15m");
  check_cmd->add_option("--pg", check_pg,
                        "also force a WAL switch on this server and wait for it to be archived");
  check_cmd->add_option("--archive-timeout", archive_timeout, "how long to wait for it")
      ->default_str("60");
  CLI::App* metrics_cmd =
      app.add_subcommand("metrics", "Prometheus text exposition of the repository's state");
  std::string metrics_textfile;
  metrics_cmd->add_option("--textfile", metrics_textfile,
                          "write atomically to this file (node_exporter textfile collector)");

  // drill / history (keeping a repository healthy)
  CLI::App* drill_cmd = app.add_subcommand(
      "drill", "restore a backup into a scratch directory, start it, run checks, time it");
  DrillArgs drill_args;
  drill_args.parallel = parallel;
  std::string drill_timeout = "30m", drill_rto;
  drill_cmd->add_option("--set", drill_args.set, "restore this backup (default: the newest)");
  drill_cmd->add_option("--target-time", drill_args.target_time,
                        "recover to this time (default: the end of the archive)");
  drill_cmd->add_option("--scratch", drill_args.scratch,
                        "empty or new directory to restore into (default: mkdtemp in /var/tmp)");
  drill_cmd->add_option("--check", drill_args.check_sql,
                        "SQL whose first column of the first row must equal the next --expect");
  drill_cmd->add_option("--expect", drill_args.expect, "expected text of the matching --check");
  drill_cmd->add_option("--check-script", drill_args.check_script,
                        "executable run with PGHOST/PGPORT/PGDATA set; must exit 0");
  drill_cmd->add_option("--pg-bin", drill_args.pg_bin,
                        "PostgreSQL binaries (default /usr/lib/postgresql/<major>/bin)");
  drill_cmd->add_option("--run-as", drill_args.run_as, "the server's user when run as root")
      ->default_str("postgres");
  drill_cmd->add_option("--db-user", drill_args.db_user, "role of the checks (default: --run-as)");
  drill_cmd->add_option("--dbname", drill_args.dbname, "database of the checks")
      ->default_str("postgres");
  drill_cmd->add_flag("--keep", drill_args.keep, "keep the scratch directory (server stopped)");
  drill_cmd->add_option("--timeout", drill_timeout, "give up on recovery after this long")
      ->default_str("30m");
  drill_cmd->add_option("--target-rto", drill_rto, "fail when the drill takes longer than this");
  // Config-file checks: drill-check = "SQL => EXPECTED" (repeatable).
  app.add_option("--drill-check", drill_args.config_checks)
      ->group("")
      ->envname(env_name("drill-check"));
  CLI::App* history_cmd =
      app.add_subcommand("history", "backups, expires, gcs, verifies and drills, oldest first");
  std::string history_since;
  bool history_json = false;
  history_cmd->add_option("--since", history_since, "only the last 90m, 26h, 7d, ...");
  history_cmd->add_flag("--json", history_json, "machine-readable output");

  if (const std::string refused = s3_flag_error(argc, argv); !refused.empty()) {
    std::cerr << "walvault: error: " << refused << " (see --help)\n";
    return exit_status(ErrorCode::kUsage);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "walvault: error: " << e.what() << " (see --help)\n";
    return exit_status(ErrorCode::kUsage);
  }

  try {
    setup_logging(g.log_level);
    if (env_config && ::access(env_config, R_OK) != 0)
      throw Error(ErrorCode::kUsage,
                  std::string("WALVAULT_CONFIG names ") + env_config + ", which cannot be read");
    g.s3 = s3_settings_from_config(*s3_items);
    if (auto from_config = repos_from_config(*repo_items); g.repos.empty())
      g.repos = std::move(from_config);  // --repo and WALVAULT_REPO come first

    if (*init_cmd) {
      repo::InitOptions options;
      options.encrypt = encrypt;
      options.zstd_level = zstd_level;
      options.chunk_size = repo::parse_chunk_size(chunk_size_text);
      if (encrypt) options.passphrase = load_secrets(g).passphrase;
      for (const auto& location : require_repos(g)) {
        try {
          auto st = store::open_store(location, /*create=*/true, g.s3);
          auto config = repo::Repository::init(*st, options);
          std::cout << "initialised repository " << config.repo_id << " at " << st->describe()
                    << (config.encrypted ? " (encrypted)" : "") << "\n";
        } catch (const Error& e) {
          throw in_repository(g, location, e);
        }
      }
      return 0;
    }
    if (*keyfile_cmd) {
      if (key_out.empty() == key_existing.empty())
        throw Error(ErrorCode::kUsage,
                    "repo add-key-file: give --out FILE (a new key file) or --existing FILE");
      // One key for every repository given: the first gets a new key file
      // (--out), each other one a wrap of its master key under the same key.
      auto opened = open_all(g, /*passphrase_fallback=*/true);
      const std::string& path = key_out.empty() ? key_existing : key_out;
      for (std::size_t i = 0; i < opened.size(); ++i) {
        repo::Repository& r = *opened[i];
        try {
          if (i == 0 && !key_out.empty()) {
            r.add_key_file(key_out);
            std::cout << "wrote key file " << key_out << "\n";
          } else {
            std::cout << "key file " << path
                      << (r.register_key_file(path) ? " now unlocks" : " already unlocked")
                      << " repository " << r.config().repo_id << " at " << r.store().describe()
                      << "\n";
          }
        } catch (const Error& e) {
          throw in_repository(g, require_repos(g)[i], e);
        }
      }
      return 0;
    }
    if (*info_cmd) {
      auto r = open_repo(g);
      const auto& c = r->config();
      std::cout << "repository " << c.repo_id << " at " << r->store().describe() << "\n"
                << "format " << c.format_version << ", zstd level " << c.zstd_level
                << ", chunk size " << c.chunk_size << " bytes"
                << (c.encrypted ? ", encrypted" : ", not encrypted") << "\n";
      if (auto cluster = repo::read_cluster(*r))
        std::cout << "cluster system id " << cluster->system_id << ", segment size "
                  << cluster->segment_size << ", PostgreSQL " << cluster->pg_major << "\n";
      return 0;
    }
    if (*sync_cmd) {
      // One set of secrets for both, except a key file: a side without
      // --from/--to-key-file that --key-file does not unlock falls back to
      // the passphrase.
      auto open_side = [&](const std::string& location, const std::string& key_file) {
        try {
          return open_repo_or_passphrase(g, location, key_file);
        } catch (const Error& e) {
          throw Error(e.code(), "repository " + location + ": " + e.what());
        }
      };
      if (absolute(sync_from) == absolute(sync_to))
        throw Error(ErrorCode::kUsage, "repo sync: --from and --to name the same repository");
      auto from = open_side(sync_from, sync_from_key);
      auto to = open_side(sync_to, sync_to_key);
      return run_sync(*from, *to, sync_dry_run, sync_parallel);
    }
    if (*push_cmd) {
      // Exit 0 means durable in every repository: each is pushed in turn and
      // the first failure fails the call (PostgreSQL retries the whole file).
      walarchive::PushResult result;
      for (const auto& location : require_repos(g)) {
        try {
          auto r = open_repo_at(g, location);
          walarchive::PushOptions options;
          options.wal_path = push_path;
          options.parallel = parallel;
          if (parallel > 1) options.spool_dir = spool_dir(g, *r, "push");
          result = walarchive::archive_push(*r, options);
        } catch (const Error& e) {
          throw in_repository(g, location, e);
        }
      }
      switch (result.outcome) {
        case walarchive::PushOutcome::kAlreadyArchived:
          spdlog::warn("{} was already archived with identical content", base_name(push_path));
          break;
        case walarchive::PushOutcome::kBatchConfirmed:
          spdlog::info("{} was archived by an earlier batch", base_name(push_path));
          break;
        case walarchive::PushOutcome::kStored:
          spdlog::info("archived {} (+{} in batch)", base_name(push_path), result.batch_pushed);
          break;
      }
      return 0;
    }
    if (*get_cmd) {
      // The first repository that has the file serves it; a miss or a failure
      // falls back to the next one.
      std::optional<Error> failure;
      for (const auto& location : require_repos(g)) {
        try {
          auto r = open_repo_at(g, location);
          walarchive::GetOptions options;
          if (prefetch > 0) options.spool_dir = spool_dir(g, *r, "get");
          if (walarchive::archive_get(*r, get_name, get_dest, options) ==
              walarchive::GetOutcome::kNotFound)
            continue;
          start_prefetch(*r, get_name, prefetch, options.spool_dir);
          return 0;
        } catch (const Error& e) {
          if (g.repos.size() > 1) spdlog::warn("repository {}: {}", location, e.what());
          if (!failure) failure = in_repository(g, location, e);
        }
      }
      if (failure) throw *failure;
      return 1;  // the expected end of the archive: no noise
    }
    if (*maintenance.expire || *maintenance.gc || *maintenance.keep || *maintenance.unkeep) {
      auto opened = open_all(g, /*passphrase_fallback=*/false);
      std::vector<repo::Repository*> repos;
      for (auto& r : opened) repos.push_back(r.get());
      return run_maintenance(maintenance, repos, *retention_items);
    }
    if (*backup_list_cmd) {
      auto r = open_repo(g);
      return run_backup_list(*r, backup_list_json);
    }
    if (*backup_cmd) {
      auto opened = open_all(g, /*passphrase_fallback=*/false);
      std::vector<repo::Repository*> repos;
      for (auto& r : opened) repos.push_back(r.get());
      return run_backup(repos, backup_args);
    }
    if (*restore_cmd) {
      if (restore_args.restore_command.empty()) {
        restore_args.restore_command =
            archive_get_command(g, app.get_config_ptr()->as<std::string>());
        restore_args.secret_only_in_environment = secret_only_in_environment(g);
      }
      return run_restore(
          require_repos(g), [&](const std::string& location) { return open_repo_at(g, location); },
          restore_args);
    }
    if (*wal_list_cmd) {
      auto r = open_repo(g);
      auto listing = walarchive::list_wal(*r);
      std::cout << (json_out ? walarchive::wal_listing_json(listing)
                             : walarchive::wal_listing_text(listing));
      return 0;
    }
    if (*verify_cmd) {
      auto r = open_repo(g);
      return run_verify(*r, verify_read_data, verify_json);
    }
    if (*repo_info_cmd) {
      auto r = open_repo(g);
      return run_info(*r, repo_info_json);
    }
    if (*check_cmd) {
      ops::CheckOptions options;
      options.max_backup_age = parse_duration("--max-backup-age", max_backup_age);
      options.max_wal_age = parse_duration("--max-wal-age", max_wal_age);
      options.archive_timeout = parse_duration("--archive-timeout", archive_timeout);
      options.pg = check_pg;
      ops::CheckResult result;
      try {
        auto r = open_repo(g);
        result = ops::run_check(*r, options);
      } catch (const Error& e) {
        result = {ops::CheckStatus::kCritical, std::string("WALVAULT CRITICAL - ") + e.what()};
      }
      std::cout << result.line << "\n";
      return static_cast<int>(result.status);
    }
    if (*metrics_cmd) {
      auto r = open_repo(g);
      const std::string text = ops::metrics_text(*r);
      if (metrics_textfile.empty()) {
        std::cout << text;
      } else {
        write_file_atomic(metrics_textfile, as_bytes(text), 0644, Overwrite::kYes,
                          Durability::kNone);
      }
      return 0;
    }
    if (*drill_cmd) {
      drill_args.timeout = parse_duration("--timeout", drill_timeout);
      if (!drill_rto.empty()) drill_args.target_rto = parse_duration("--target-rto", drill_rto);
      drill_args.restore_command = archive_get_command(g, app.get_config_ptr()->as<std::string>());
      drill_args.secret_only_in_environment = secret_only_in_environment(g);
      return run_drill(
          require_repos(g), [&](const std::string& location) { return open_repo_at(g, location); },
          drill_args);
    }
    if (*history_cmd) {
      const std::int64_t since_us =
          history_since.empty()
              ? 0
              : now_unix_us() - parse_duration("--since", history_since).count() * 1000000;
      auto r = open_repo(g);
      return run_history(*r, since_us, history_json);
    }
    throw Error(ErrorCode::kInternal, "no command ran");
  } catch (const Error& e) {
    std::cerr << "walvault: error: " << e.what() << "\n";
    return exit_status(e.code());
  } catch (const std::exception& e) {
    std::cerr << "walvault: error: " << e.what() << "\n";
    return exit_status(ErrorCode::kInternal);
  }
}

}  // namespace walvault::cli
