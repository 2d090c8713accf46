// Where the command line's settings come from besides the flags: WALVAULT_*
// environment variables and the INI config file (--config, WALVAULT_CONFIG,
// default /etc/walvault.conf).
//
// Precedence: a flag overrides its WALVAULT_* variable, which overrides the
// config file. CLI11 alone would let the file win over the environment, so
// EnvFirstConfig drops every file key whose variable is set. It also takes
// out of the file the keys no flag has, for the app to read itself: the
// store drivers' settings (s3-*: config-file only, never argv, where a
// credential is readable by every local user), the repositories (`repo`,
// `repo1`, ...), and the [retention] and [files-retention] sections. Which
// keys are a driver's is
// the store's to say (store::classify_store_setting).
//
// Every refusal is Error(kUsage) naming the key at fault, never its value.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ops/retention.h"
#include "store/object_store.h"

namespace walvault::cli {

// "WALVAULT_KEY_FILE" for "key-file".
std::string env_name(std::string option);

// The config file's keys that no flag has, taken out by EnvFirstConfig.
struct ConfigSections {
  std::vector<CLI::ConfigItem> store;      // the store drivers' keys (s3-*)
  std::vector<CLI::ConfigItem> repos;      // `repo` and `repo<N>` keys
  std::vector<CLI::ConfigItem> retention;  // [retention] and [retention.TAG] sections
  // [files-retention], [files-retention.VOLUME] and [files-retention.VOLUME:TAG]
  std::vector<CLI::ConfigItem> files_retention;
  // [dump-retention], [dump-retention.DATABASE] and [dump-retention.DATABASE:TAG]
  std::vector<CLI::ConfigItem> dump_retention;
};

// CLI11's INI reader with the environment first (see above); writes the keys
// no flag has into `sections`, which it shares with the caller.
class EnvFirstConfig : public CLI::ConfigINI {
 public:
  explicit EnvFirstConfig(std::shared_ptr<ConfigSections> sections)
      : sections_(std::move(sections)) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  std::shared_ptr<ConfigSections> sections_;
};

// The repositories the config file names: `repo = a` or `repo = [a, b]`, or
// `repo1 = a`, `repo2 = b`, ... in the order of N (gaps allowed), not both.
// There are no per-repository keys (`repo2-key-file`): one key file can unlock
// several repositories (repo add-key-file --existing), so key-file serves all.
std::vector<std::string> repos_from_config(const std::vector<CLI::ConfigItem>& items);

// The store settings of the config file's driver keys (s3-*), which belong
// to its top (before any [section]) and take one value each; each is checked
// by its driver (Error(kUsage) naming the key).
store::StoreSettings store_settings_from_config(const std::vector<CLI::ConfigItem>& items);

// The database backups' retention rules of the [retention] (default policy)
// and [retention.TAG] sections; `pitr-window` belongs to [retention]. Throws
// Error(kUsage) naming the section and key of a bad one.
ops::RetentionRules retention_from_config(const std::vector<CLI::ConfigItem>& items);

// The file-volume snapshots' retention rules: [files-retention] (every volume
// without a section of its own), [files-retention.VOLUME] and
// [files-retention.VOLUME:TAG] (':' cannot occur in a volume name; a volume
// name's dots are kept). Throws Error(kUsage) naming the section and key of a
// bad one, or a section that does not name a volume.
ops::SnapshotRetentionRules snapshot_retention_from_config(
    const std::vector<CLI::ConfigItem>& items);
// The logical dumps' rules, the same way: [dump-retention],
// [dump-retention.DATABASE] and [dump-retention.DATABASE:TAG].
ops::SnapshotRetentionRules dump_retention_from_config(const std::vector<CLI::ConfigItem>& items);

// Why an argument of `argv` that names a store driver's key (--s3-*) is
// refused, or "" when there is none. The message names the key, never the
// value.
std::string store_flag_error(int argc, char** argv);

}  // namespace walvault::cli
