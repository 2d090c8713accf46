#include "support/file_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "support/seeded_bytes.h"

namespace walvault::testing {

void write_bytes(const std::string& path, ByteView data) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::string read_file_text(const std::string& path) {
  const Bytes b = read_bytes(path);
  return std::string(b.begin(), b.end());
}

void set_mtime(const std::string& path, std::int64_t sec, long nsec) {
  const struct timespec t[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// A tree with every kind of entry the format records.
void generate_tree(const std::string& root) {
  ASSERT_EQ(mkdir((root + "/docs").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root + "/docs/empty").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((root + "/many").c_str(), 0755), 0);
  for (int i = 0; i < 300; ++i)
    write_bytes(root + "/many/f" + std::to_string(i) + ".txt",
                as_bytes("report " + std::to_string(i) + "\n" + std::string(i * 7, 'x')));
  write_bytes(root + "/docs/large.bin", seeded_bytes(1, 9u << 20));
  std::string csv;
  for (int i = 0; i < 100000; ++i)
    csv += std::to_string(i) + ",study," + std::to_string(i * 31) + "\n";
  write_bytes(root + "/docs/report.csv", as_bytes(csv));
  write_bytes(root + "/docs/empty.txt", {});
  // sparse: data, a 16 MiB hole, data
  {
    const int fd = open((root + "/sparse.img").c_str(), O_WRONLY | O_CREAT, 0640);
    ASSERT_GE(fd, 0);
    const Bytes block = seeded_bytes(2, 65536);
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 0), 65536);
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 16 << 20), 65536);
    close(fd);
  }
  // sparse at the end: data, then a 4 MiB hole up to the size
  {
    const int fd = open((root + "/tail-hole.img").c_str(), O_WRONLY | O_CREAT, 0640);
    ASSERT_GE(fd, 0);
    const Bytes block = seeded_bytes(3, 8192);
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 0), 8192);
    ASSERT_EQ(ftruncate(fd, (4 << 20) + 8192), 0);
    close(fd);
  }
  ASSERT_EQ(symlink("/etc/passwd", (root + "/abs-link").c_str()), 0);
  ASSERT_EQ(symlink("../nowhere/dangling", (root + "/docs/dangling").c_str()), 0);
  ASSERT_EQ(symlink("large.bin", (root + "/docs/rel-link").c_str()), 0);
  ASSERT_EQ(link((root + "/docs/report.csv").c_str(), (root + "/hard-report.csv").c_str()), 0);
  ASSERT_EQ(mkfifo((root + "/pipe").c_str(), 0620), 0);
  write_bytes(root + "/" + std::string("na\xefme-\xff\xfe", 9), as_bytes("not utf-8"));
  write_bytes(root + "/" + std::string(255, 'L'), as_bytes("long name"));
  write_bytes(root + "/setuid-tool", as_bytes("#!/bin/sh\n"));
  ASSERT_EQ(chmod((root + "/setuid-tool").c_str(), 04751), 0);
  write_bytes(root + "/no-access", as_bytes("secret"));
  ASSERT_EQ(chmod((root + "/no-access").c_str(), 0), 0);
  ASSERT_EQ(setxattr((root + "/docs/report.csv").c_str(), "user.study", "42", 2, 0), 0);
  ASSERT_EQ(chown((root + "/docs/large.bin").c_str(), 1234, 5678), 0);
  set_mtime(root + "/docs/large.bin", 1700000000, 123456789);
  set_mtime(root + "/abs-link", 1600000000, 5);
  set_mtime(root + "/docs", 1650000000, 77);
}

// Every difference between two trees in what a restore must reproduce.
void compare_trees(const std::string& a, const std::string& b, const std::string& rel,
                   std::vector<std::string>& diffs, bool holes) {
  std::vector<std::string> names_a, names_b;
  for (auto* names : {&names_a, &names_b}) {
    DIR* d = opendir((names == &names_a ? a : b).c_str());
    ASSERT_NE(d, nullptr);
    while (auto* e = readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        names->push_back(e->d_name);
    closedir(d);
    std::sort(names->begin(), names->end());
  }
  if (names_a != names_b) diffs.push_back(rel + ": entries differ");
  for (const std::string& name : names_a) {
    const std::string pa = a + "/" + name, pb = b + "/" + name, r = rel + "/" + name;
    struct stat sa, sb;
    if (lstat(pa.c_str(), &sa) != 0 || lstat(pb.c_str(), &sb) != 0) {
      diffs.push_back(r + ": missing");
      continue;
    }
    if (sa.st_mode != sb.st_mode) diffs.push_back(r + ": mode");
    if (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid) diffs.push_back(r + ": owner");
    if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
      diffs.push_back(r + ": mtime");
    if (S_ISREG(sa.st_mode)) {
      if (read_bytes(pa) != read_bytes(pb)) diffs.push_back(r + ": content");
      if (holes && sa.st_blocks < sa.st_size / 512 / 2 && sb.st_blocks > sa.st_blocks * 2)
        diffs.push_back(r + ": holes filled");
      char va[64], vb[64];
      const ssize_t la = getxattr(pa.c_str(), "user.study", va, sizeof va);
      const ssize_t lb = getxattr(pb.c_str(), "user.study", vb, sizeof vb);
      if (la != lb || (la > 0 && std::memcmp(va, vb, la) != 0)) diffs.push_back(r + ": xattr");
    } else if (S_ISLNK(sa.st_mode)) {
      char ta[4096], tb[4096];
      const ssize_t la = readlink(pa.c_str(), ta, sizeof ta),
                    lb = readlink(pb.c_str(), tb, sizeof tb);
      if (la != lb || std::memcmp(ta, tb, la) != 0) diffs.push_back(r + ": link target");
    } else if (S_ISDIR(sa.st_mode)) {
      compare_trees(pa, pb, r, diffs, holes);
    }
  }
}

}  // namespace walvault::testing
