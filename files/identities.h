// Owner names and ids, looked up once each per backup or restore.
//
// A snapshot records a file's owner by id and by name (files/tree.h). The
// backup asks for the names of ids, the restore for the ids of names; each
// answer is cached here, so the system's user and group databases (files
// opened and read per lookup) are consulted once per distinct owner, not once
// per file. Safe to call from several threads.
//
// - user(uid), group(gid): the name, or "" when the id has none (or a name
//   over 255 bytes, which the tree format does not keep).
// - uid(name, fallback), gid(name, fallback): the id of the name here, or
//   `fallback` (the id recorded with it) when the name is empty or unknown.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace walvault::files {

class Identities {
 public:
  std::string user(std::uint32_t uid);
  std::string group(std::uint32_t gid);
  uid_t uid(const std::string& name, uid_t fallback);
  gid_t gid(const std::string& name, gid_t fallback);

 private:
  std::mutex mu_;
  std::map<std::uint32_t, std::string> user_names_, group_names_;
  // name -> id; none for a name this system does not know
  std::map<std::string, std::optional<std::uint32_t>> user_ids_, group_ids_;
};

}  // namespace walvault::files
