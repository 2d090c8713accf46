// Hostile entry names in a tar stream: the reader refuses, naming the entry,
// every name that could lead out of the directory it is restored into
// (absolute, "..", empty components, NUL), in the plain header, a GNU long
// name or a pax path, hard links leading out, and devices and FIFOs; long
// names that are fine come through whole.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "pg/tar_reader.h"
#include "support/tar_builder.h"

namespace walvault::pg {
namespace {

using walvault::testing::TarBuilder;

class NameSink : public TarEntrySink {
 public:
  void on_entry_begin(const TarEntry& entry) override { entries.push_back(entry); }
  void on_entry_data(ByteView) override {}
  void on_entry_end() override {}
  std::vector<TarEntry> entries;
};

// Feeds `tar`; the error message when the reader refuses it, "" otherwise.
std::string refusal(const std::string& tar, NameSink& sink) {
  TarReader reader(sink);
  try {
    reader.feed(as_bytes(tar));
    reader.finish();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << e.what();
    return e.what();
  }
  return "";
}

TEST(TarPath, EscapingNamesAreRefusedNamingTheEntry) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"../../etc/evil", "tar: entry '../../etc/evil': has a '..' component"},
      {"base/../../../x", "tar: entry 'base/../../../x': has a '..' component"},
      {"/tmp/x", "tar: entry '/tmp/x': is absolute"},
      {"base//x", "tar: entry 'base//x': has an empty component"},
      {"base/./x", "tar: entry 'base/./x': has a '.' component"},
  };
  for (const auto& [name, message] : cases) {
    for (int form = 0; form < 3; ++form) {
      SCOPED_TRACE(name + " form " + std::to_string(form));
      TarBuilder tar;
      tar.dir("base");
      if (form == 0) tar.file(name, "evil");
      if (form == 1) tar.gnu_long_file(name, "evil");
      if (form == 2) tar.pax_file(name, "evil");
      NameSink sink;
      EXPECT_EQ(refusal(tar.finish(), sink), message);
      ASSERT_EQ(sink.entries.size(), 1u);  // "base" only
    }
  }
  // A NUL inside a pax path (a plain header field ends at its first NUL).
  NameSink sink;
  EXPECT_EQ(refusal(TarBuilder().pax_file(std::string("ok\0/../../x", 11), "x").finish(), sink),
            "tar: entry 'ok\\x00/../../x': contains a NUL byte");
}

TEST(TarPath, DotSlashPrefixAndTrailingSlashAreStripped) {
  NameSink sink;
  EXPECT_EQ(refusal(TarBuilder()
                        .dir("./")
                        .dir("./base/")
                        .file("./base/PG_VERSION", "15\n")
                        .symlink("./pg_tblspc/16384", "/abs/anywhere")
                        .finish(),
                    sink),
            "");
  ASSERT_EQ(sink.entries.size(), 4u);
  EXPECT_EQ(sink.entries[0].path, ".");
  EXPECT_EQ(sink.entries[1].path, "base");
  EXPECT_EQ(sink.entries[2].path, "base/PG_VERSION");
  EXPECT_EQ(sink.entries[3].path, "pg_tblspc/16384");
  // A symlink's target is the file system's business: stored as is.
  EXPECT_EQ(sink.entries[3].link_target, "/abs/anywhere");
}

TEST(TarPath, HardLinksLeadingOutAreRefused) {
  for (const auto& [target, problem] :
       {std::pair{"../../etc/shadow", "has a '..' component"}, {"/etc/shadow", "is absolute"}}) {
    NameSink sink;
    EXPECT_EQ(refusal(TarBuilder().hardlink("base/x", target).finish(), sink),
              std::string("tar: hard link 'base/x' names '") + target + "': " + problem);
    EXPECT_TRUE(sink.entries.empty());
  }
  // Within the archive the reader passes it on (the backup then refuses it).
  NameSink sink;
  EXPECT_EQ(refusal(TarBuilder().file("a", "x").hardlink("b", "./a").finish(), sink), "");
  ASSERT_EQ(sink.entries.size(), 2u);
  EXPECT_EQ(sink.entries[1].type, TarEntryType::kHardlink);
  EXPECT_EQ(sink.entries[1].link_target, "a");
}

TEST(TarPath, DevicesAndFifosAreRefusedNamingTheEntry) {
  for (const auto& [type, what] :
       {std::pair{'3', "a character device"}, {'4', "a block device"}, {'6', "a FIFO"}}) {
    NameSink sink;
    const std::string message = refusal(TarBuilder().special("base/dev", type).finish(), sink);
    EXPECT_EQ(message, std::string("tar: unsupported entry type: 'base/dev' is ") + what +
                           "; a data directory holds only files, directories and links");
    EXPECT_TRUE(sink.entries.empty());
  }
}

TEST(TarPath, LongNamesAreStoredWholeOrRefusedClearly) {
  // 300 bytes in components of 60: GNU long name and pax path both work.
  std::string long_name = "base";
  while (long_name.size() < 300) long_name += "/" + std::string(59, 'n');
  for (int form = 0; form < 2; ++form) {
    NameSink sink;
    TarBuilder tar;
    if (form == 0) tar.gnu_long_file(long_name, "x");
    if (form == 1) tar.pax_file(long_name, "x");
    EXPECT_EQ(refusal(tar.finish(), sink), "");
    ASSERT_EQ(sink.entries.size(), 1u);
    EXPECT_EQ(sink.entries[0].path, long_name);
  }
  // Beyond what a file system takes: refused, the message cut short.
  const std::string component(256, 'c');
  std::string beyond_path_max;
  while (beyond_path_max.size() <= 5000) beyond_path_max += std::string(200, 'p') + "/";
  beyond_path_max += "x";
  for (const auto& [name, problem] :
       {std::pair{component, std::string("has a component longer than 255 bytes")},
        {beyond_path_max, std::string("is longer than 4095 bytes")}}) {
    for (int form = 0; form < 2; ++form) {
      NameSink sink;
      TarBuilder tar;
      if (form == 0) tar.gnu_long_file(name, "x");
      if (form == 1) tar.pax_file(name, "x");
      const std::string message = refusal(tar.finish(), sink);
      EXPECT_TRUE(message.ends_with(": " + problem)) << message;
      EXPECT_LT(message.size(), 300u) << message;
      EXPECT_TRUE(sink.entries.empty());
    }
  }
}

}  // namespace
}  // namespace walvault::pg
