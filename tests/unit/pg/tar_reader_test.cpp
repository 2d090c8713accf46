// TarReader against tars made by GNU tar at test time (gnu and pax formats),
// fed in random chunk sizes, plus corrupt-header and truncation cases.
#include "pg/tar_reader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/error.h"
#include "support/pg_cluster.h"
#include "support/tar_builder.h"

namespace walvault::pg {
namespace {

namespace fs = std::filesystem;
using testing::run;
using testing::TarBuilder;
using testing::TempDir;

struct Recorded {
  TarEntry entry;
  std::string content;
  bool ended = false;
};

class RecordingSink : public TarEntrySink {
 public:
  void on_entry_begin(const TarEntry& entry) override {
    ASSERT_TRUE(entries.empty() || entries.back().ended) << "begin before the previous end";
    entries.push_back({entry, {}, false});
  }
  void on_entry_data(ByteView data) override {
    ASSERT_FALSE(entries.empty());
    entries.back().content.append(as_chars(data));
  }
  void on_entry_end() override {
    ASSERT_FALSE(entries.empty());
    EXPECT_EQ(entries.back().content.size(), entries.back().entry.size);
    entries.back().ended = true;
  }
  const Recorded* find(const std::string& path) const {
    for (const auto& r : entries)
      if (r.entry.path == path) return &r;
    return nullptr;
  }
  std::vector<Recorded> entries;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Feeds `tar` in random chunks (1 byte to 64 KiB, some exactly one block).
void feed_randomly(TarReader& reader, const std::string& tar, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::size_t pos = 0;
  while (pos < tar.size()) {
    std::size_t n;
    switch (rng() % 4) {
      case 0:
        n = 1 + rng() % 3;
        break;
      case 1:
        n = 512;
        break;
      default:
        n = 1 + rng() % 65536;
    }
    n = std::min(n, tar.size() - pos);
    reader.feed(as_bytes(std::string_view(tar).substr(pos, n)));
    pos += n;
  }
}

const std::string kLongDir = "d/" + std::string(60, 'a') + "/" + std::string(70, 'b');
const std::string kLongFile = kLongDir + "/" + std::string(40, 'c') + ".dat";
const std::string kLongLinkTarget = "../" + std::string(120, 't');

// A source tree with the shapes PostgreSQL and GNU tar produce; returns the
// tar made by GNU tar in `format` with 512-byte records, so its last 1024
// bytes are exactly the end-of-archive marker.
class TarFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string src = dir_.sub("src");
    fs::create_directories(src + "/" + kLongDir);
    write_file(src + "/empty", "");
    write_file(src + "/block512", random_bytes(512, 1));
    big_ = random_bytes((1 << 20) + 1, 2);
    write_file(src + "/big", big_);
    write_file(src + "/" + kLongFile, "long name content\n");
    fs::create_symlink("d/target", src + "/link");
    // ustar has no way to store a link target over 100 bytes.
    if (long_link()) fs::create_symlink(kLongLinkTarget, src + "/longlink");
    fs::create_hard_link(src + "/block512", src + "/hard");
    ::chmod((src + "/empty").c_str(), 0600);
    std::string tar = dir_.sub("out.tar");
    std::vector<std::string> argv = {"tar",   "--format=" + GetParam(),
                                     "-b",    "1",
                                     "-cf",   tar,
                                     "-C",    src,
                                     "empty", "block512",
                                     "big",   "d",
                                     "link",  "hard"};
    if (long_link()) argv.push_back("longlink");
    auto r = run(argv);
    ASSERT_EQ(r.status, 0) << r.err;
    tar_ = read_file(tar);
    ASSERT_GT(tar_.size(), 1024u);
    ASSERT_EQ(tar_.substr(tar_.size() - 1024), std::string(1024, '\0'));
  }

  void check_entries(const RecordingSink& sink) {
    for (const auto& r : sink.entries) EXPECT_TRUE(r.ended) << r.entry.path;
    const Recorded* e = sink.find("empty");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->entry.type, TarEntryType::kFile);
    EXPECT_EQ(e->entry.size, 0u);
    EXPECT_EQ(e->entry.mode, 0600u);
    const Recorded* b = sink.find("block512");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->content, random_bytes(512, 1));
    const Recorded* big = sink.find("big");
    ASSERT_NE(big, nullptr);
    EXPECT_EQ(big->entry.size, big_.size());
    EXPECT_TRUE(big->content == big_);
    EXPECT_GT(big->entry.mtime, 1600000000);
    const Recorded* lf = sink.find(kLongFile);
    ASSERT_NE(lf, nullptr) << "long name lost";
    EXPECT_EQ(lf->content, "long name content\n");
    const Recorded* ld = sink.find(kLongDir);
    ASSERT_NE(ld, nullptr) << "long directory name lost (trailing slash stripped)";
    EXPECT_EQ(ld->entry.type, TarEntryType::kDirectory);
    const Recorded* d = sink.find("d");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->entry.type, TarEntryType::kDirectory);
    const Recorded* link = sink.find("link");
    ASSERT_NE(link, nullptr);
    EXPECT_EQ(link->entry.type, TarEntryType::kSymlink);
    EXPECT_EQ(link->entry.link_target, "d/target");
    if (long_link()) {
      const Recorded* longlink = sink.find("longlink");
      ASSERT_NE(longlink, nullptr);
      EXPECT_EQ(longlink->entry.type, TarEntryType::kSymlink);
      EXPECT_EQ(longlink->entry.link_target, kLongLinkTarget);
    }
    const Recorded* hard = sink.find("hard");
    ASSERT_NE(hard, nullptr);
    EXPECT_EQ(hard->entry.type, TarEntryType::kHardlink);
    EXPECT_EQ(hard->entry.link_target, "block512");
    EXPECT_EQ(hard->entry.size, 0u);
  }

  bool long_link() const { return GetParam() != "ustar"; }

  TempDir dir_{"wv-tar"};
  std::string tar_, big_;
};

TEST_P(TarFixture, RandomChunksYieldEveryEntry) {
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    RecordingSink sink;
    TarReader reader(sink);
    feed_randomly(reader, tar_, seed);
    EXPECT_TRUE(reader.saw_end_marker());
    reader.finish();
    EXPECT_EQ(reader.bytes_consumed(), tar_.size());
    check_entries(sink);
    // empty, block512, big, link, hard, [longlink], and d with two directories and a file.
    EXPECT_EQ(sink.entries.size(), long_link() ? 10u : 9u);
  }
}

TEST_P(TarFixture, WholeTarInOneChunk) {
  RecordingSink sink;
  TarReader reader(sink);
  reader.feed(as_bytes(tar_));
  reader.finish();
  check_entries(sink);
}

// PostgreSQL 13/14 stream tars without the end-of-archive marker.
TEST_P(TarFixture, MissingEndMarkerIsAccepted) {
  RecordingSink sink;
  TarReader reader(sink);
  feed_randomly(reader, tar_.substr(0, tar_.size() - 1024), 7);
  EXPECT_FALSE(reader.saw_end_marker());
  reader.finish();
  check_entries(sink);
}

TEST_P(TarFixture, TruncationIsReportedAtFinish) {
  std::size_t body = tar_.size() - 1024;
  // Every cut that is not at an entry boundary must be reported: inside the
  // first header, inside data, inside padding, inside the last header.
  for (std::size_t cut : {std::size_t{100}, std::size_t{512 + 300}, body / 2, body - 1}) {
    RecordingSink sink;
    TarReader reader(sink);
    feed_randomly(reader, tar_.substr(0, cut), 3);
    try {
      reader.finish();
      ADD_FAILURE() << "no error for a cut at " << cut;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
  }
}

TEST_P(TarFixture, CorruptHeaderIsRejected) {
  // The first header, and the header after "empty" (no data, so at 512 plus
  // any extension blocks; find it by its name).
  std::size_t second = tar_.find("block512");
  ASSERT_NE(second, std::string::npos);
  second -= second % 512;
  for (std::size_t offset : {std::size_t{0}, second + 1, second + 130}) {
    std::string bad = tar_;
    bad[offset] ^= 0x01;
    RecordingSink sink;
    TarReader reader(sink);
    try {
      feed_randomly(reader, bad, 11);
      reader.finish();
      ADD_FAILURE() << "no error for a flipped bit at " << offset;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
    }
  }
}

// "tar -C dir ." names everything "./x"; the reader drops the "./".
TEST_P(TarFixture, DotSlashPrefixIsDropped) {
  std::string tar = dir_.sub("dot.tar");
  auto r = run({"tar", "--format=" + GetParam(), "-cf", tar, "-C", dir_.sub("src"), "."});
  ASSERT_EQ(r.status, 0) << r.err;
  RecordingSink sink;
  TarReader reader(sink);
  feed_randomly(reader, read_file(tar), 5);
  reader.finish();
  ASSERT_NE(sink.find("."), nullptr);
  EXPECT_EQ(sink.find(".")->entry.type, TarEntryType::kDirectory);
  check_entries(sink);
}

INSTANTIATE_TEST_SUITE_P(GnuTar, TarFixture, ::testing::Values("gnu", "pax", "ustar"),
                         [](const auto& info) { return info.param; });

// `value` as width-1 octal digits and a NUL in h[offset, offset + width).
void put_octal(std::string& h, std::size_t offset, std::size_t width, std::uint64_t value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
  h.replace(offset, width - 1, buf);
}

// One ustar header block with a valid checksum; `size` in base-256 when
// `base256`, as PostgreSQL and GNU tar write sizes of 8 GiB and more.
std::string make_header(const std::string& name, char type, std::uint64_t size, bool base256) {
  std::string h(512, '\0');
  h.replace(0, name.size(), name);
  put_octal(h, 100, 8, 0640);
  put_octal(h, 108, 8, 26);
  put_octal(h, 116, 8, 26);
  if (base256) {
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>(size >> (8 * i));
  } else {
    put_octal(h, 124, 12, size);
  }
  put_octal(h, 136, 12, 1700000000);
  h[156] = type;
  h.replace(257, 8,
            std::string("ustar\0"
                        "00",
                        8));
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  put_octal(h, 148, 7, sum);  // six digits, NUL, and the space already there
  return h;
}

TEST(TarReader, Base256SizeAndTruncation) {
  RecordingSink sink;
  TarReader reader(sink);
  std::uint64_t size = (9ULL << 30) + 5;
  reader.feed(as_bytes(make_header("base/1/16384.2", '0', size, true)));
  reader.feed(as_bytes(std::string(1000, 'x')));
  ASSERT_EQ(sink.entries.size(), 1u);
  EXPECT_EQ(sink.entries[0].entry.size, size);
  EXPECT_EQ(sink.entries[0].entry.mode, 0640u);
  EXPECT_EQ(sink.entries[0].entry.uid, 26u);
  EXPECT_EQ(sink.entries[0].entry.mtime, 1700000000);
  EXPECT_EQ(sink.entries[0].content.size(), 1000u);
  EXPECT_THROW(reader.finish(), Error);
}

TEST(TarReader, HandMadeHeaderRoundTrip) {
  RecordingSink sink;
  TarReader reader(sink);
  std::string tar = make_header("PG_VERSION", '0', 3, false) + "15\n" + std::string(509, '\0');
  tar += make_header("pg_wal/", '5', 0, false);
  reader.feed(as_bytes(tar));
  reader.finish();
  ASSERT_EQ(sink.entries.size(), 2u);
  EXPECT_EQ(sink.entries[0].content, "15\n");
  EXPECT_EQ(sink.entries[1].entry.path, "pg_wal");
  EXPECT_EQ(sink.entries[1].entry.type, TarEntryType::kDirectory);
}

TEST(TarReader, UnsupportedTypeIsRejected) {
  RecordingSink sink;
  TarReader reader(sink);
  try {
    reader.feed(as_bytes(make_header("dev/null", '3', 0, false)));
    ADD_FAILURE() << "a character device was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("unsupported entry type"), std::string::npos);
  }
}

TEST(TarReader, DataAfterEndMarkerIsRejected) {
  RecordingSink sink;
  TarReader reader(sink);
  std::string stream(1024, '\0');
  stream += "x";
  EXPECT_THROW(reader.feed(as_bytes(stream)), Error);
}

TEST(TarReader, GarbageIsNotATar) {
  RecordingSink sink;
  TarReader reader(sink);
  EXPECT_THROW(reader.feed(as_bytes(random_bytes(512, 9))), Error);
}

TEST(TarReader, EmptyStreamIsAnEmptyArchive) {
  RecordingSink sink;
  TarReader reader(sink);
  reader.finish();
  EXPECT_TRUE(sink.entries.empty());
}

TEST(TarReader, MtimesBeyondTheYear2262AreRefusedNamingTheEntry) {
  // Times are kept in nanoseconds as int64; a crafted mtime past that range
  // (found by the fuzzer under UBSan) is refused, not wrapped.
  auto read = [](const std::string& tar) {
    RecordingSink sink;
    TarReader reader(sink);
    reader.feed(as_bytes(tar));
    reader.finish();
    return sink.entries.at(0).entry;
  };
  const std::string end(1024, '\0');
  std::string far = make_header("far", '0', 0, false);
  put_octal(far, 136, 12, 077777777777);  // the largest octal mtime: year 2242
  far.replace(148, 8, "        ");
  unsigned sum = 0;
  for (char c : far) sum += static_cast<unsigned char>(c);
  put_octal(far, 148, 7, sum);
  EXPECT_EQ(read(far + end).mtime_ns, 077777777777LL * 1'000'000'000);

  std::string beyond = make_header("beyond", '0', 0, false);
  const std::uint64_t year_2499 = 16'725'225'600;  // seconds; ns overflow int64
  beyond[136] = static_cast<char>(0x80);
  for (int i = 0; i < 11; ++i)
    beyond[147 - i] = i < 8 ? static_cast<char>(year_2499 >> (8 * i)) : '\0';
  beyond.replace(148, 8, "        ");
  sum = 0;
  for (char c : beyond) sum += static_cast<unsigned char>(c);
  put_octal(beyond, 148, 7, sum);
  try {
    read(beyond + end);
    ADD_FAILURE() << "an mtime in 2499 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("'beyond' has an mtime out of range"), std::string::npos)
        << e.what();
  }

  const std::string pax = TarBuilder::pax_record("mtime", "99999999999.5");
  const std::string pax_tar = TarBuilder::header("PaxHeader", 'x', pax.size()) + pax +
                              std::string(512 - pax.size() % 512, '\0') +
                              TarBuilder::header("late", '0', 0) + end;
  EXPECT_THROW(read(pax_tar), Error);
}

}  // namespace
}  // namespace walvault::pg
