// `archive-push %p` (archive_command) and `archive-get %f %p`
// (restore_command): one process per WAL file, so nothing here runs before
// the verb is known and nothing is read that the call does not need.
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "cli/command.h"
#include "core/error.h"
#include "core/file_util.h"
#include "walarchive/archive_get.h"
#include "walarchive/archive_push.h"
#include "walarchive/prefetch.h"

namespace walvault::cli {

namespace {

struct PushArgs {
  std::string wal_path;
  int parallel = 1;
};

struct GetArgs {
  std::string name, destination;
  int prefetch = 8;
};

// Exit 0 means durable in every repository: each is pushed in turn and the
// first failure fails the call (PostgreSQL retries the whole file).
int run_push(const Context& ctx, const PushArgs& a) {
  walarchive::PushResult result;
  ctx.repos.for_each_location([&](const std::string& location) {
    auto r = ctx.repos.open(location);
    walarchive::PushOptions options;
    options.wal_path = a.wal_path;
    options.parallel = a.parallel;
    if (a.parallel > 1) options.spool_dir = spool_dir(ctx.globals, *r, "push");
    result = walarchive::archive_push(*r, options);
  });
  switch (result.outcome) {
    case walarchive::PushOutcome::kAlreadyArchived:
      spdlog::warn("{} was already archived with identical content", base_name(a.wal_path));
      break;
    case walarchive::PushOutcome::kBatchConfirmed:
      spdlog::info("{} was archived by an earlier batch", base_name(a.wal_path));
      break;
    case walarchive::PushOutcome::kStored:
      spdlog::info("archived {} (+{} in batch)", base_name(a.wal_path), result.batch_pushed);
      break;
  }
  return 0;
}

// The first repository that has the file serves it; a miss or a failure
// falls back to the next one. Exit 1 (silent) at the end of the archive.
int run_get(const Context& ctx, const GetArgs& a) {
  const bool served = first_that_serves(ctx.repos.locations(), [&](const std::string& location) {
    auto r = ctx.repos.open(location);
    walarchive::GetOptions options;
    if (a.prefetch > 0) options.spool_dir = spool_dir(ctx.globals, *r, "get");
    if (walarchive::archive_get(*r, a.name, a.destination, options) ==
        walarchive::GetOutcome::kNotFound)
      return false;
    walarchive::start_prefetch_process(*r, a.name, a.prefetch, options.spool_dir);
    return true;
  });
  return served ? 0 : 1;
}

}  // namespace

void register_archive_push(CLI::App& app, Verbs& verbs, int parallel) {
  CLI::App* push = app.add_subcommand("archive-push", "archive one WAL file (archive_command)");
  auto args = std::make_shared<PushArgs>();
  args->parallel = parallel;
  push->add_option("wal_path", args->wal_path, "%p: path of the WAL file")->required();
  push->add_option("--parallel", args->parallel, "segments pushed at once, including %p")
      ->envname(env_name("parallel"))
      ->check(CLI::Range(1, 64));
  verbs.push_back({push, [args](const Context& ctx) { return run_push(ctx, *args); }});
}

void register_archive_get(CLI::App& app, Verbs& verbs) {
  CLI::App* get = app.add_subcommand("archive-get", "fetch one WAL file (restore_command)");
  auto args = std::make_shared<GetArgs>();
  get->add_option("wal_file", args->name, "%f: name of the WAL file")->required();
  get->add_option("destination", args->destination, "%p: where to write it")->required();
  get->add_option("--prefetch", args->prefetch, "segments kept ready in the spool (0: off)")
      ->envname(env_name("prefetch"))
      ->check(CLI::Range(0, 256));
  verbs.push_back({get, [args](const Context& ctx) { return run_get(ctx, *args); }});
}

}  // namespace walvault::cli
