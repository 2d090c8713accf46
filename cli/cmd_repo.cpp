// `repo init`, `repo add-key-file`, `repo info`, `repo sync`.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "core/error.h"
#include "core/parallel.h"
#include "ops/sync.h"
#include "repo/cluster.h"
#include "store/object_store.h"

namespace walvault::cli {

namespace {

struct InitArgs {
  bool encrypt = false;
  int zstd_level = 1;
  std::string chunk_size = "1MiB";
};

struct KeyFileArgs {
  std::string out, existing;
};

struct SyncArgs {
  std::string from, to, from_key, to_key;
  bool dry_run = false;
  int parallel = default_parallelism();
};

int run_init(const Context& ctx, const InitArgs& a) {
  repo::InitOptions options;
  options.encrypt = a.encrypt;
  options.zstd_level = a.zstd_level;
  options.chunk_size = repo::parse_chunk_size(a.chunk_size);
  if (a.encrypt) options.passphrase = ctx.repos.secrets().passphrase;
  ctx.repos.for_each_location([&](const std::string& location) {
    auto st = store::open_store(location,
                                {.create = true, .settings = ctx.repos.access().store_settings});
    auto config = repo::Repository::init(*st, options);
    std::cout << "initialised repository " << config.repo_id << " at " << st->describe()
              << (config.encrypted ? " (encrypted)" : "") << "\n";
  });
  return 0;
}

// One key for every repository given: the first gets a new key file (--out),
// each other one a wrap of its master key under the same key.
int run_add_key_file(const Context& ctx, const KeyFileArgs& a) {
  if (a.out.empty() == a.existing.empty())
    throw Error(ErrorCode::kUsage,
                "repo add-key-file: give --out FILE (a new key file) or --existing FILE");
  auto opened = ctx.repos.open_all(KeyFallback::kPassphrase);
  const std::string& path = a.out.empty() ? a.existing : a.out;
  for (std::size_t i = 0; i < opened.size(); ++i) {
    repo::Repository& r = *opened[i];
    try {
      if (i == 0 && !a.out.empty()) {
        r.add_key_file(a.out);
        std::cout << "wrote key file " << a.out << "\n";
      } else {
        std::cout << "key file " << path
                  << (r.register_key_file(path) ? " now unlocks" : " already unlocked")
                  << " repository " << r.config().repo_id << " at " << r.store().describe() << "\n";
      }
    } catch (const Error& e) {
      throw ctx.repos.in_repository(ctx.repos.locations()[i], e);
    }
  }
  return 0;
}

int run_repo_info(const Context& ctx) {
  auto r = ctx.repos.open_first();
  const auto& c = r->config();
  std::cout << "repository " << c.repo_id << " at " << r->store().describe() << "\n"
            << "format " << c.format_version << ", zstd level " << c.zstd_level << ", chunk size "
            << c.chunk_size << " bytes" << (c.encrypted ? ", encrypted" : ", not encrypted")
            << "\n";
  if (auto cluster = repo::read_cluster(*r))
    std::cout << "cluster system id " << cluster->system_id << ", segment size "
              << cluster->segment_size << ", PostgreSQL " << cluster->pg_major << "\n";
  return 0;
}

// Prints the summary (with --dry-run, what would be copied) and names each
// backup it could not copy; 0, or the conflict exit status when a backup was
// left out.
int run_sync(const Context& ctx, const SyncArgs& a) {
  // One set of secrets for both, except a key file: a side without
  // --from/--to-key-file that --key-file does not unlock falls back to the
  // passphrase.
  auto open_side = [&](const std::string& location, const std::string& key_file) {
    try {
      return ctx.repos.open_with_key_file(location, key_file);
    } catch (const Error& e) {
      throw Error(e.code(), "repository " + location + ": " + e.what());
    }
  };
  if (absolute_location(a.from) == absolute_location(a.to))
    throw Error(ErrorCode::kUsage, "repo sync: --from and --to name the same repository");
  auto from = open_side(a.from, a.from_key);
  auto to = open_side(a.to, a.to_key);
  ops::SyncOptions options;
  options.dry_run = a.dry_run;
  options.parallel = a.parallel;
  // Sync writes chunks into `to` deduplicated against its indexes, like a backup.
  std::string refused;
  const auto from_lock =
      repo::RepoLock::acquire_for_reading(*from, "repo sync", command_lock_options(), &refused);
  if (!from_lock)
    spdlog::warn("repository {} does not take a lock ({}): copying from it without one",
                 store::redact_location(a.from), refused);
  std::unique_ptr<repo::RepoLock> to_lock;
  if (!a.dry_run)
    to_lock =
        repo::RepoLock::acquire(*to, repo::LockMode::kShared, "repo sync", command_lock_options());
  const ops::SyncReport report = ops::sync_repositories(*from, *to, options);
  for (const auto& why : report.skipped) spdlog::warn("{}", why);
  std::cout << ops::sync_report_text(report);
  std::cout.flush();
  return report.skipped.empty() ? 0 : exit_status(ErrorCode::kConflict);
}

}  // namespace

void register_repo(CLI::App& app, Verbs& verbs) {
  CLI::App* repo_cmd = app.add_subcommand("repo", "create and manage a repository");
  repo_cmd->require_subcommand(1);

  CLI::App* init = repo_cmd->add_subcommand("init", "create a repository");
  auto init_args = std::make_shared<InitArgs>();
  init->add_flag("--encrypt", init_args->encrypt, "encrypt with a passphrase-wrapped master key");
  init->add_option("--compress-level", init_args->zstd_level, "zstd level for new objects")
      ->check(CLI::Range(1, 19))
      ->default_str("1");
  init->add_option("--chunk-size", init_args->chunk_size,
                   "backup chunk size: whole 8 KiB pages, 64KiB to 64MiB (fixed at init)")
      ->default_str("1MiB");
  verbs.push_back({init, [init_args](const Context& ctx) { return run_init(ctx, *init_args); }});

  CLI::App* keyfile = repo_cmd->add_subcommand(
      "add-key-file", "write a key file for the hot path that unlocks every repository given");
  auto key_args = std::make_shared<KeyFileArgs>();
  CLI::Option* out =
      keyfile->add_option("--out", key_args->out, "path of the new key file (mode 0600)");
  keyfile
      ->add_option("--existing", key_args->existing,
                   "register this existing key file with the repositories instead")
      ->excludes(out);
  verbs.push_back(
      {keyfile, [key_args](const Context& ctx) { return run_add_key_file(ctx, *key_args); }});

  CLI::App* info = repo_cmd->add_subcommand("info", "show the repository's identity");
  verbs.push_back({info, run_repo_info});

  CLI::App* sync = repo_cmd->add_subcommand(
      "sync", "copy the WAL and backups one repository has and another lacks");
  auto sync_args = std::make_shared<SyncArgs>();
  sync->add_option("--from", sync_args->from, "the repository to copy from")->required();
  sync->add_option("--to", sync_args->to, "the repository to copy into (repo init it first)")
      ->required();
  sync->add_option("--from-key-file", sync_args->from_key, "key file of --from (else --key-file)");
  sync->add_option("--to-key-file", sync_args->to_key, "key file of --to (else --key-file)");
  sync->add_flag("--dry-run", sync_args->dry_run, "list what would be copied, write nothing");
  sync->add_option("--parallel", sync_args->parallel, "threads copying segments and chunks")
      ->check(CLI::Range(1, 64));
  verbs.push_back({sync, [sync_args](const Context& ctx) { return run_sync(ctx, *sync_args); }});
}

}  // namespace walvault::cli
