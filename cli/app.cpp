#include "cli/app.h"

#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "codec/crypto.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/process_heap.h"

namespace walvault::cli {

namespace {

constexpr char kDefaultConfig[] = "/etc/walvault.conf";

template <typename T>
CLI::Option* add_env_option(CLI::App& app, const std::string& flag, T& target,
                            const std::string& help) {
  return app.add_option("--" + flag, target, help)->envname(env_name(flag));
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

// The verb a command line names: the first word that is not an option or a
// global option's value (every global option but --help and --version takes
// one). Empty when there is none, or --help/--version comes first.
std::string named_verb(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--version") return "";
    if (arg.rfind("-", 0) != 0) return arg;
    if (arg.find('=') == std::string::npos) ++i;  // its value
  }
  return "";
}

// Every verb, in the order of --help; for archive-push and archive-get only
// that verb. PostgreSQL runs those once per WAL file, so their start-up is on
// recovery's and archiving's critical path, and building the whole command
// tree (every verb's options) was a measurable part of a call
// (docs/decisions.md, "PITR: where the seconds go").
Verbs register_verbs(CLI::App& app, const std::string& verb) {
  Verbs verbs;
  if (verb == "archive-get") {
    register_archive_get(app, verbs);
    return verbs;
  }
  const int parallel = default_parallelism();
  if (verb == "archive-push") {
    register_archive_push(app, verbs, parallel);
    return verbs;
  }
  register_repo(app, verbs);
  register_archive_push(app, verbs, parallel);
  register_archive_get(app, verbs);
  register_wal(app, verbs);
  CLI::App& backup = register_backup(app, verbs, parallel);
  register_maintenance(app, backup, verbs);
  register_restore(app, verbs, parallel);
  register_verify(app, verbs);
  register_info(app, verbs);
  register_monitor(app, verbs);
  register_drill(app, verbs, parallel);
  register_history(app, verbs);
  register_files(app, verbs);
  register_schedule(app, verbs);
  register_dump(app, verbs);
  return verbs;
}

int run_verb(const Verbs& verbs, const Context& context) {
  for (const Verb& verb : verbs) {
    if (verb.command->parsed() && verb.command->get_subcommands().empty()) return verb.run(context);
  }
  throw Error(ErrorCode::kInternal, "no command ran");
}

// The one place errors are printed: one line, and the code's exit status.
int run_parsed(const CLI::App& app, Globals& globals, const ConfigSections& sections,
               const Verbs& verbs) {
  try {
    setup_logging(globals.log_level);
    finish_globals(app, globals, sections);
    const Context context{globals, sections, RepoSet(globals.repos)};
    return run_verb(verbs, context);
  } catch (const Error& e) {
    std::cerr << "walvault: error: " << e.what() << "\n";
    return exit_status(e.code());
  } catch (const std::exception& e) {
    std::cerr << "walvault: error: " << e.what() << "\n";
    return exit_status(ErrorCode::kInternal);
  }
}

}  // namespace

void register_globals(CLI::App& app, Globals& g, std::shared_ptr<ConfigSections> sections) {
  app.config_formatter(std::make_shared<EnvFirstConfig>(std::move(sections)));
  const char* env_config = std::getenv("WALVAULT_CONFIG");
  app.set_config("--config", env_config ? env_config : kDefaultConfig,
                 "INI configuration file (WALVAULT_CONFIG); the only source of the s3-* keys");
  add_env_option(app, "repo", g.repos.locations,
                 "repository location: a directory or s3://bucket/prefix; repeat for several");
  add_env_option(app, "key-file", g.repos.key_file,
                 "key file that unlocks an encrypted repository");
  add_env_option(app, "passphrase-file", g.repos.passphrase_file,
                 "file whose first line is the repository passphrase (else WALVAULT_PASSPHRASE)");
  add_env_option(app, "spool-path", g.spool_path, "local spool for batching and prefetch")
      ->default_str(kDefaultSpool);
  add_env_option(app, "log-level", g.log_level, "trace, debug, info, warn, error, off")
      ->default_str("warn");
}

void finish_globals(const CLI::App& app, Globals& g, const ConfigSections& sections) {
  if (const char* env_config = std::getenv("WALVAULT_CONFIG");
      env_config && ::access(env_config, R_OK) != 0)
    throw Error(ErrorCode::kUsage,
                std::string("WALVAULT_CONFIG names ") + env_config + ", which cannot be read");
  g.config = app.get_config_ptr()->as<std::string>();
  g.repos.store_settings = store_settings_from_config(sections.store);
  if (auto from_config = repos_from_config(sections.repos); g.repos.locations.empty())
    g.repos.locations = std::move(from_config);  // --repo and WALVAULT_REPO come first
}

namespace {

// Builds the command line's parser with `verb`'s verbs (register_verbs) and
// runs it. A parse error with the verb-only tree (a word read as the verb
// that was an option's value after all) is retried with every verb.
int parse_and_run(int argc, char** argv, const std::string& verb) {
  CLI::App app{"walvault: PostgreSQL WAL archiving, backup and point-in-time recovery"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("walvault ") + WALVAULT_VERSION);
  // The global options may also follow the verb (`walvault repo init --repo X`,
  // as restic and pgBackRest take them): every subcommand, added below,
  // inherits this and hands options it does not know to its parent. Wherever
  // it appears, a global option is the same option: --repo collects every
  // occurrence in order, a single-valued one given twice is a usage error.
  app.fallthrough();
  auto sections = std::make_shared<ConfigSections>();
  Globals globals;
  register_globals(app, globals, sections);
  const Verbs verbs = register_verbs(app, verb);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    if (!verb.empty()) return parse_and_run(argc, argv, "");
    std::cerr << "walvault: error: " << e.what() << " (see --help)\n";
    return exit_status(ErrorCode::kUsage);
  }
  return run_parsed(app, globals, *sections, verbs);
}

}  // namespace

int run(int argc, char** argv) {
  std::string verb = named_verb(argc, argv);
  // archive-get prepares the heap itself, only when it reads a segment from
  // the repository (walarchive/archive_get.cpp): a segment waiting in the
  // spool is a rename, and PostgreSQL's recovery waits for every such call.
  if (verb != "archive-get") prepare_process_heap();
  codec::initialize_crypto();
  if (const std::string refused = store_flag_error(argc, argv); !refused.empty()) {
    std::cerr << "walvault: error: " << refused << " (see --help)\n";
    return exit_status(ErrorCode::kUsage);
  }
  if (verb != "archive-get" && verb != "archive-push") verb.clear();
  return parse_and_run(argc, argv, verb);
}

}  // namespace walvault::cli
