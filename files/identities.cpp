#include "files/identities.h"

#include <grp.h>
#include <pwd.h>

#include <optional>

namespace walvault::files {
namespace {

constexpr std::size_t kMaxName = 255;

std::optional<std::uint32_t> lookup_uid(const std::string& name) {
  struct passwd pw, *found = nullptr;
  char buf[4096];
  if (getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_uid;
  return std::nullopt;
}

std::optional<std::uint32_t> lookup_gid(const std::string& name) {
  struct group gr, *found = nullptr;
  char buf[4096];
  if (getgrnam_r(name.c_str(), &gr, buf, sizeof buf, &found) == 0 && found) return found->gr_gid;
  return std::nullopt;
}

}  // namespace

namespace {

std::optional<std::string> lookup_user(std::uint32_t uid) {
  struct passwd pw, *found = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_name;
  return std::nullopt;
}

std::optional<std::string> lookup_group(std::uint32_t gid) {
  struct group gr, *found = nullptr;
  char buf[4096];
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &found) == 0 && found) return found->gr_name;
  return std::nullopt;
}

// The name of `id` in `names`, looked up with `lookup` the first time; ""
// for none (or one too long to record).
template <typename Lookup>
std::string cached_name(std::map<std::uint32_t, std::string>& names, std::uint32_t id,
                        Lookup lookup) {
  auto [it, fresh] = names.try_emplace(id);
  if (fresh) {
    it->second = lookup(id).value_or("");
    if (it->second.size() > kMaxName) it->second.clear();
  }
  return it->second;
}

}  // namespace

std::string Identities::user(std::uint32_t uid) {
  std::lock_guard lock(mu_);
  return cached_name(user_names_, uid, lookup_user);
}

std::string Identities::group(std::uint32_t gid) {
  std::lock_guard lock(mu_);
  return cached_name(group_names_, gid, lookup_group);
}

namespace {

// The id of `name` in `ids`, looked up with `lookup` the first time;
// `fallback` for an empty or unknown name.
template <typename Lookup>
std::uint32_t cached_id(std::map<std::string, std::optional<std::uint32_t>>& ids,
                        const std::string& name, std::uint32_t fallback, Lookup lookup) {
  if (name.empty()) return fallback;
  auto [it, fresh] = ids.try_emplace(name);
  if (fresh) it->second = lookup(name);
  return it->second.value_or(fallback);
}

}  // namespace

uid_t Identities::uid(const std::string& name, uid_t fallback) {
  std::lock_guard lock(mu_);
  return cached_id(user_ids_, name, fallback, lookup_uid);
}

gid_t Identities::gid(const std::string& name, gid_t fallback) {
  std::lock_guard lock(mu_);
  return cached_id(group_ids_, name, fallback, lookup_gid);
}

}  // namespace walvault::files
