// Command-line wiring (CLI11): parse flags, environment and config file,
// call a command, and turn its outcome into an exit status. No command logic
// lives here.
//
// Precedence: flags override WALVAULT_* environment variables, which
// override the INI config file (--config, default /etc/walvault.conf).
#pragma once

namespace walvault::cli {

// Runs the command line; returns the process exit status (always <= 125).
int run(int argc, char** argv);

}  // namespace walvault::cli
