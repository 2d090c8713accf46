// The top of the command line (CLI11): the global options, the config file
// and environment (config.h), one verb's run (command.h), and the one place
// where an error becomes `walvault: error: <message>` on stderr and an exit
// status (core/error.h; CLI11 parse errors are usage, 2; any other
// std::exception internal, 12).
//
// Precedence: flags override WALVAULT_* environment variables, which
// override the INI config file (--config, default /etc/walvault.conf).
//
// archive-push and archive-get run once per WAL file, so start-up is on the
// hot path: run() reads no file besides the config file, and no command's
// set-up runs before its verb is known.
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

#include "cli/command.h"
#include "cli/config.h"

namespace walvault::cli {

// Runs the command line; returns the process exit status (always <= 125).
int run(int argc, char** argv);

// Registers the global options on `app`, writing into `globals`: --config
// (WALVAULT_CONFIG, default /etc/walvault.conf, read through EnvFirstConfig
// into `sections`), --repo (repeatable), --key-file, --passphrase-file,
// --spool-path, --log-level, each with its WALVAULT_* variable.
void register_globals(CLI::App& app, Globals& globals, std::shared_ptr<ConfigSections> sections);

// Completes `globals` once `app` is parsed: the config file in use, the store
// settings (s3-*), and the config file's repositories when neither --repo nor
// WALVAULT_REPO gave any. Throws Error(kUsage) for an unreadable
// WALVAULT_CONFIG or a bad config key.
void finish_globals(const CLI::App& app, Globals& globals, const ConfigSections& sections);

}  // namespace walvault::cli
