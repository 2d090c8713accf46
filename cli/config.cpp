#include "cli/config.h"

#include <cctype>
#include <cstdlib>
#include <map>
#include <string_view>

#include "core/error.h"
#include "core/relative_path.h"
#include "core/time_util.h"
#include "files/snapshot_record.h"

namespace walvault::cli {

namespace {

constexpr char kEnvPrefix[] = "WALVAULT_";

bool is_repo_key(const CLI::ConfigItem& item) {
  return (item.name == "repo" && item.parents.empty()) ||
         (item.name.size() > 4 && item.name.starts_with("repo") &&
          std::isdigit(static_cast<unsigned char>(item.name[4])));
}

// Calls set(sub, name, value, where) for each key of the [ROOT] and
// [ROOT.SUB] sections in `items` (sub "" for [ROOT]; a SUB holding dots is
// joined back), `where` naming the section for messages. Throws
// Error(kUsage) for a key without exactly one value.
template <typename Set>
void for_each_section_key(const std::vector<CLI::ConfigItem>& items, const std::string& root,
                          Set set) {
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // CLI11's section markers
    std::string sub;
    for (std::size_t i = 1; i < item.parents.size(); ++i)
      sub += (i > 1 ? "." : "") + item.parents[i];
    const std::string where = "config file [" + root + (sub.empty() ? "" : "." + sub) + "]";
    if (item.inputs.size() != 1)
      throw Error(ErrorCode::kUsage, where + " " + item.name + " takes one value");
    set(sub, item.name, item.inputs.front(), where);
  }
}

}  // namespace

std::string env_name(std::string option) {
  for (auto& c : option) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return kEnvPrefix + option;
}

std::vector<CLI::ConfigItem> EnvFirstConfig::from_config(std::istream& input) const {
  auto items = CLI::ConfigINI::from_config(input);
  std::vector<CLI::ConfigItem> kept;
  for (auto& item : items) {
    if (store::classify_store_setting(item.name) != store::StoreSettingKey::kNone) {
      sections_->store.push_back(std::move(item));
    } else if (!item.parents.empty() && item.parents.front() == "retention") {
      sections_->retention.push_back(std::move(item));  // retention_from_config
    } else if (!item.parents.empty() && item.parents.front() == "files-retention") {
      sections_->files_retention.push_back(std::move(item));  // snapshot_retention_from_config
    } else if (!item.parents.empty() && item.parents.front() == "dump-retention") {
      sections_->dump_retention.push_back(std::move(item));  // dump_retention_from_config
    } else if (is_repo_key(item)) {
      sections_->repos.push_back(std::move(item));
    } else if (std::getenv(env_name(item.name).c_str()) == nullptr) {
      kept.push_back(std::move(item));
    }
  }
  return kept;
}

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

store::StoreSettings store_settings_from_config(const std::vector<CLI::ConfigItem>& items) {
  store::StoreSettings settings;
  for (const CLI::ConfigItem& item : items) {
    if (!item.parents.empty())
      throw Error(ErrorCode::kUsage,
                  "config file: " + item.name + " belongs before the first [section]");
    if (item.inputs.size() != 1)
      throw Error(ErrorCode::kUsage, "config file: " + item.name +
                                         " takes one value (quote a value with spaces or commas)");
    settings.set(item.name, item.inputs.front());
  }
  return settings;
}

ops::RetentionRules retention_from_config(const std::vector<CLI::ConfigItem>& items) {
  ops::RetentionRules rules;
  for_each_section_key(items, "retention",
                       [&](const std::string& tag, const std::string& name,
                           const std::string& value, const std::string& where) {
                         if (name == "pitr-window" && tag.empty())
                           rules.pitr_window = parse_duration(where + " pitr-window", value);
                         else
                           ops::set_retention_rule(
                               tag.empty() ? rules.default_policy : rules.tags[tag], name, value,
                               where);
                       });
  return rules;
}

namespace {

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// [SECTION], [SECTION.NAME] and [SECTION.NAME:TAG], NAME being `what` (a
// volume or a database: the same rule of characters).
ops::SnapshotRetentionRules grouped_retention_from_config(const std::vector<CLI::ConfigItem>& items,
                                                          const std::string& section,
                                                          const std::string& what) {
  ops::SnapshotRetentionRules rules;
  for_each_section_key(
      items, section,
      [&](const std::string& sub, const std::string& name, const std::string& value,
          const std::string& where) {
        if (sub.empty()) return ops::set_retention_rule(rules.all_volumes, name, value, where);
        const std::size_t colon = sub.find(':');
        const std::string volume = sub.substr(0, colon);
        if (auto problem = files::volume_problem(volume))
          throw Error(ErrorCode::kUsage, where + ": " + what + " " + printable_name(volume) + " " +
                                             *problem + " (sections are [" + section + "." +
                                             upper(what) + "] and [" + section + "." + upper(what) +
                                             ":TAG])");
        if (colon == std::string::npos)
          return ops::set_retention_rule(rules.volumes[volume], name, value, where);
        const std::string tag = sub.substr(colon + 1);
        if (tag.empty()) throw Error(ErrorCode::kUsage, where + ": no tag after ':'");
        ops::set_retention_rule(rules.volume_tags[{volume, tag}], name, value, where);
      });
  return rules;
}

}  // namespace

ops::SnapshotRetentionRules snapshot_retention_from_config(
    const std::vector<CLI::ConfigItem>& items) {
  return grouped_retention_from_config(items, "files-retention", "volume");
}

ops::SnapshotRetentionRules dump_retention_from_config(const std::vector<CLI::ConfigItem>& items) {
  return grouped_retention_from_config(items, "dump-retention", "database");
}

// The store settings are config-file keys only: a credential in argv would be
// readable by every local user (ps, /proc/<pid>/cmdline).
std::string store_flag_error(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!arg.starts_with("--")) continue;
    const std::string key(arg.substr(
        2, arg.find('=') == std::string_view::npos ? std::string_view::npos : arg.find('=') - 2));
    switch (store::classify_store_setting(key)) {
      case store::StoreSettingKey::kNone:
        continue;
      case store::StoreSettingKey::kCredential:
        return "--" + key +
               ": credentials are not accepted on the command line, where other local users can "
               "read them: put " +
               key + " in the config file or set the AWS_* variables";
      case store::StoreSettingKey::kSetting:
        return "--" + key + ": S3 settings are read from the config file only (" + key + " = ...)";
      case store::StoreSettingKey::kUnknown:
        return "unknown option --" + key;
    }
  }
  return "";
}

}  // namespace walvault::cli
