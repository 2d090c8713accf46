// core/buffer_pool: the fixed budget of buffers a pipeline holds.
#include "core/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/parallel.h"

namespace walvault {
namespace {

TEST(BufferPool, NeverHandsOutMoreThanItsCountAndReusesBuffers) {
  BufferPool pool(4096, 3);
  std::mutex mu;
  std::set<std::uint8_t*> seen;
  // A producer and workers passing buffers around, as a backup does.
  WorkerPool workers(4, 64);
  for (int i = 0; i < 200; ++i) {
    auto buffer = std::make_shared<BufferPool::Buffer>(pool.acquire());
    std::memset(buffer->data(), i & 0xff, pool.buffer_bytes());
    workers.submit([&, buffer, i] {
      EXPECT_EQ(buffer->data()[pool.buffer_bytes() - 1], i & 0xff);  // no one else wrote it
      {
        std::lock_guard lock(mu);
        seen.insert(buffer->data());
      }
      buffer->release();
    });
  }
  workers.wait();
  EXPECT_LE(pool.peak_out(), 3u);
  EXPECT_LE(seen.size(), 3u);  // at most `count` buffers ever allocated
}

TEST(BufferPool, AcquireWaitsForARelease) {
  BufferPool pool(64, 2);
  BufferPool::Buffer a = pool.acquire(), b = pool.acquire();
  std::uint8_t* const first = a.data();
  auto third = std::async(std::launch::async, [&] { return pool.acquire(); });
  a.release();  // the waiting acquire gets this one
  BufferPool::Buffer c = third.get();
  EXPECT_EQ(c.data(), first);
  EXPECT_EQ(pool.peak_out(), 2u);
  BufferPool::Buffer moved = std::move(c);
  EXPECT_FALSE(c);  // NOLINT(bugprone-use-after-move): a moved-from handle owns nothing
  EXPECT_TRUE(moved);
}

}  // namespace
}  // namespace walvault
