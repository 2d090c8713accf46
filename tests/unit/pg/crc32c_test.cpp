#include <gtest/gtest.h>

#include <random>

#include "pg/crc32c_internal.h"
#include "pg/wal_segment.h"

namespace walvault::pg {
namespace {

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(as_bytes("")), 0x00000000u);
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros and 32 bytes of 0xFF.
  EXPECT_EQ(crc32c(Bytes(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(crc32c(Bytes(32, 0xFF)), 0x62A8AB43u);
}

TEST(Crc32c, PortableAndHardwareAgree) {
  if (!detail::crc32c_hardware_available()) GTEST_SKIP() << "CPU has no SSE4.2 crc32";
  std::mt19937_64 rng(42);
  Bytes buf(70000);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  // Every length 0..80 at every start offset 0..7 (alignment), then big ones.
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t len = 0; len <= 80; ++len) {
      ByteView view(buf.data() + offset, len);
      ASSERT_EQ(detail::crc32c_update_portable(0xFFFFFFFFu, view),
                detail::crc32c_update_hardware(0xFFFFFFFFu, view))
          << "offset " << offset << " len " << len;
    }
  }
  for (std::size_t len : {4095u, 8192u, 65536u, 69999u}) {
    ByteView view(buf.data() + 1, len);
    EXPECT_EQ(detail::crc32c_update_portable(0x12345678u, view),
              detail::crc32c_update_hardware(0x12345678u, view));
  }
}

TEST(Crc32c, IncrementalEqualsOneShot) {
  Bytes data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7 + 3);
  const std::uint32_t whole = crc32c(data);
  for (std::size_t split : {0u, 1u, 7u, 8u, 500u, 999u, 1000u}) {
    ByteView view(data);
    std::uint32_t crc = crc32c_update(0xFFFFFFFFu, view.first(split));
    crc = crc32c_update(crc, view.subspan(split));
    EXPECT_EQ(crc ^ 0xFFFFFFFFu, whole) << split;
  }
  EXPECT_EQ(detail::crc32c_update_portable(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu, whole);
}

}  // namespace
}  // namespace walvault::pg
