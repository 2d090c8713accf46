// Robustness of TarReader against crafted tars (`walvault backup --from-tar`
// reads whatever a pipe delivers): whatever the bytes and however they are
// chunked, feed()/finish() either succeed or throw Error(kInvalidInput), and
// the sink sees a consistent sequence (begin, exactly entry.size bytes of
// data, end) that never holds more data than was fed. Run under
// -fsanitize=address,undefined (scripts/sanitize) to make out-of-bounds reads
// visible; WALVAULT_FUZZ_SECONDS lets the loops run longer there.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "core/error.h"
#include "pg/tar_reader.h"
#include "support/fuzz_seeds.h"
#include "support/tar_builder.h"

namespace walvault::pg {
namespace {

using walvault::testing::FuzzSeeds;

// Checks the sink contract on every call; never throws itself.
class CheckingSink : public TarEntrySink {
 public:
  void on_entry_begin(const TarEntry& entry) override {
    EXPECT_FALSE(open_) << "begin before the previous entry ended";
    EXPECT_NE(entry.path.find('\0'), 0u);
    open_ = true;
    expected_ = entry.size;
    received_ = 0;
    ++entries;
  }
  void on_entry_data(ByteView data) override {
    EXPECT_TRUE(open_) << "data outside an entry";
    received_ += data.size();
    data_bytes += data.size();
    EXPECT_LE(received_, expected_) << "more data than the entry's size";
  }
  void on_entry_end() override {
    EXPECT_TRUE(open_) << "end without begin";
    EXPECT_EQ(received_, expected_) << "entry ended short";
    open_ = false;
  }
  std::uint64_t entries = 0;
  std::uint64_t data_bytes = 0;

 private:
  bool open_ = false;
  std::uint64_t expected_ = 0, received_ = 0;
};

using walvault::testing::TarBuilder;

std::string header(const std::string& name, char type, std::uint64_t size,
                   const std::string& link = "") {
  return TarBuilder::header(name, type, size, link);
}

std::string padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

// A tar with every kind of header the reader handles; header offsets in
// `headers` so mutations can re-checksum them.
std::string sample_tar(std::vector<std::size_t>& headers) {
  std::string tar;
  auto add = [&](const std::string& h, const std::string& data) {
    headers.push_back(tar.size());
    tar += h + padded(data);
  };
  add(header("PG_VERSION", '0', 3), "15\n");
  add(header("base/", '5', 0), "");
  const std::string long_name = "base/1/" + std::string(150, 'n');
  add(header("././@LongLink", 'L', long_name.size() + 1), long_name + '\0');
  add(header("ignored", '0', 700), std::string(700, 'd'));
  const std::string pax = TarBuilder::pax_record("path", "pg_wal/" + std::string(120, 'p')) +
                          TarBuilder::pax_record("size", "1025") +
                          TarBuilder::pax_record("mtime", "1700000001.5") +
                          TarBuilder::pax_record("linkpath", "x");
  add(header("PaxHeader", 'x', pax.size()), pax);
  add(header("ignored2", '0', 1), std::string(1025, 'e'));
  add(header("pg_tblspc/16384", '2', 0, "/srv/ts"), "");
  add(header("hard", '1', 0, "PG_VERSION"), "");
  const std::string long_link = std::string(130, 'k');
  add(header("././@LongLink", 'K', long_link.size()), long_link);
  add(header("sym", '2', 0), "");
  tar += std::string(1024, '\0');
  return tar;
}

// Feeds `tar` in random chunks, then finishes: true when accepted, false on
// Error(kInvalidInput); any other exception fails the test.
bool feed_and_finish(const std::string& tar, std::mt19937_64& rng, CheckingSink& sink,
                     const std::string& context) {
  TarReader reader(sink);
  try {
    std::size_t pos = 0;
    while (pos < tar.size()) {
      std::size_t n = rng() % 3 == 0 ? 1 + rng() % 7 : 1 + rng() % 2048;
      n = std::min(n, tar.size() - pos);
      reader.feed(as_bytes(std::string_view(tar).substr(pos, n)));
      pos += n;
    }
    reader.finish();
    EXPECT_LE(reader.bytes_consumed(), tar.size()) << context;
    return true;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << context << ": " << e.what();
    return false;
  }
}

TEST(TarReaderFuzz, SampleIsAccepted) {
  std::vector<std::size_t> headers;
  const std::string tar = sample_tar(headers);
  std::mt19937_64 rng(1);
  CheckingSink sink;
  ASSERT_TRUE(feed_and_finish(tar, rng, sink, "pristine"));
  EXPECT_EQ(sink.entries, 7u);
}

TEST(TarReaderFuzz, ByteFlipsWithRepairedChecksums) {
  // Mutations inside headers and extension data, each header's checksum
  // recomputed so the damage reaches the number, name and pax parsers.
  std::vector<std::size_t> headers;
  const std::string pristine = sample_tar(headers);
  for (FuzzSeeds seeds(400); seeds.next();) {
    std::mt19937_64 rng(seeds.seed());
    std::string tar = pristine;
    const int flips = 1 + static_cast<int>(rng() % 6);
    for (int f = 0; f < flips; ++f) {
      const std::size_t at =
          rng() % 3 == 0 ? rng() % tar.size() : headers[rng() % headers.size()] + rng() % 512;
      tar[at] =
          rng() % 2 ? static_cast<char>(rng()) : static_cast<char>(tar[at] ^ (1 << rng() % 8));
    }
    if (rng() % 4 != 0)
      for (std::size_t h : headers) TarBuilder::set_checksum(tar, h);
    CheckingSink sink;
    feed_and_finish(tar, rng, sink, seeds.describe());
    EXPECT_LE(sink.data_bytes, tar.size()) << seeds.describe();
  }
}

TEST(TarReaderFuzz, CraftedNumbersAndLengths) {
  // Size, mode and mtime fields and pax lengths from a hostile writer: huge,
  // base-256, negative, unterminated, non-octal.
  const char* const fields[] = {"77777777777",
                                "\x80\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                                "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                                "99999999999",
                                " 1 2 3",
                                "",
                                "00000000001\x01"};
  for (FuzzSeeds seeds(300); seeds.next();) {
    std::mt19937_64 rng(seeds.seed() + 77);
    const char types[] = {'0', '5', '2', '1', 'L', 'K', 'x', 'g', '7', '\0'};
    std::string h = header("f", types[rng() % sizeof types], rng() % 4096);
    const std::size_t offsets[] = {100, 108, 116, 124, 136};
    const std::string field = fields[rng() % std::size(fields)];
    const std::size_t at = offsets[rng() % std::size(offsets)];
    h.replace(at, std::min<std::size_t>(field.size(), 12), field.substr(0, 12));
    TarBuilder::set_checksum(h, 0);
    std::string body;
    if (h[156] == 'x' || h[156] == 'g') {
      const std::string lens[] = {
          "0", "1", "5", "99999999999999999999", "-3", "18446744073709551615"};
      body = lens[rng() % std::size(lens)] + " path=x\n" + std::to_string(rng()) +
             " size=" + lens[rng() % std::size(lens)] + "\n";
    } else {
      body.assign(rng() % 2048, 'z');
    }
    std::string tar = h + padded(body) + (rng() % 2 ? std::string(1024, '\0') : "");
    CheckingSink sink;
    feed_and_finish(tar, rng, sink, seeds.describe());
  }
}

TEST(TarReaderFuzz, RandomBytesAndTruncations) {
  std::vector<std::size_t> headers;
  const std::string pristine = sample_tar(headers);
  for (FuzzSeeds seeds(200); seeds.next();) {
    std::mt19937_64 rng(seeds.seed() + 5000);
    std::string tar;
    if (rng() % 2) {
      tar = pristine.substr(0, rng() % pristine.size());
    } else {
      tar.resize(rng() % 4096);
      for (char& c : tar) c = static_cast<char>(rng());
    }
    CheckingSink sink;
    feed_and_finish(tar, rng, sink, seeds.describe());
  }
}

}  // namespace
}  // namespace walvault::pg
