// core/parallel: the bounded worker pool, parallel_for and FirstError.
#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace walvault {
namespace {

using namespace std::chrono_literals;

// Threads of this process, from /proc.
std::size_t thread_count() {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
    n += !e.path().empty();
  return n;
}

TEST(ParallelFor, RunsEveryIndexOnceOnSeveralThreads) {
  std::vector<std::atomic<int>> runs(1000);
  std::mutex mu;
  std::set<std::thread::id> threads;
  parallel_for(runs.size(), 4, [&](std::size_t i) {
    ++runs[i];
    std::lock_guard lock(mu);
    threads.insert(std::this_thread::get_id());
    std::this_thread::sleep_for(10us);
  });
  for (const auto& r : runs) EXPECT_EQ(r.load(), 1);
  EXPECT_GT(threads.size(), 1u);
  EXPECT_LE(threads.size(), 4u);
}

TEST(ParallelFor, OneWorkerRunsInOrderOnTheCaller) {
  std::vector<std::size_t> order;
  const auto caller = std::this_thread::get_id();
  parallel_for(5, 1, [&](std::size_t i) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    order.push_back(i);
  });
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  parallel_for(0, 4, [](std::size_t) { FAIL() << "no index to run"; });
}

TEST(ParallelFor, FirstFailureIsRethrownAndStopsNewIndexes) {
  std::vector<std::size_t> ran;
  try {
    parallel_for(10, 1, [&](std::size_t i) {
      ran.push_back(i);
      if (i == 3) throw std::runtime_error("index 3");
    });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "index 3");
  }
  EXPECT_EQ(ran, (std::vector<std::size_t>{0, 1, 2, 3}));

  std::atomic<int> started{0};
  EXPECT_THROW(parallel_for(10000, 4,
                            [&](std::size_t) {
                              ++started;
                              throw std::runtime_error("every index fails");
                            }),
               std::runtime_error);
  EXPECT_LE(started.load(), 4);  // each thread stops after its own failure at the latest
}

TEST(WorkerPool, RunsEveryTaskAndWaitReturnsWhenAllRan) {
  WorkerPool pool(3, 2);
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) pool.submit([&] { ++done; });
  pool.wait();
  EXPECT_EQ(done.load(), 100);
  for (int i = 0; i < 10; ++i) pool.submit([&] { ++done; });  // usable again
  pool.wait();
  EXPECT_EQ(done.load(), 110);
}

TEST(WorkerPool, StartsThreadsOnlyWhenWorkArrives) {
  const std::size_t before = thread_count();
  {
    WorkerPool pool(8, 8);
    EXPECT_EQ(thread_count(), before);
    pool.submit([] {});
    pool.wait();
    EXPECT_EQ(thread_count(), before + 1);  // the idle thread took the task
  }
  EXPECT_EQ(thread_count(), before);
}

TEST(WorkerPool, SubmitBlocksWhileTheQueueIsFull) {
  WorkerPool pool(1, 1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> running;
  pool.submit([&] {
    running.set_value();
    released.wait();
  });
  running.get_future().wait();
  pool.submit([] {});  // fills the queue
  std::atomic<bool> third_queued{false};
  std::thread producer([&] {
    pool.submit([] {});
    third_queued = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(third_queued.load());  // backpressure
  release.set_value();
  producer.join();
  EXPECT_TRUE(third_queued.load());
  pool.wait();
}

TEST(WorkerPool, FirstFailureDropsQueuedTasksAndIsRethrown) {
  WorkerPool pool(1, 100);
  std::atomic<int> ran{0};
  pool.submit([] {
    std::this_thread::sleep_for(50ms);
    throw std::runtime_error("first");
  });
  for (int i = 0; i < 10; ++i) pool.submit([&] { ++ran; });
  pool.drain();  // never throws
  try {
    pool.wait();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
  EXPECT_EQ(ran.load(), 0);
  EXPECT_TRUE(pool.failed());
  try {
    pool.submit([&] { ++ran; });
    FAIL() << "a failed pool took a task";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
}

TEST(WorkerPool, AnOwnerThrowingLeaksNoThreadAndDropsQueuedTasks) {
  const std::size_t before = thread_count();
  std::atomic<int> started{0}, finished{0}, queued_ran{0};
  try {
    WorkerPool pool(2, 10);
    for (int i = 0; i < 2; ++i)
      pool.submit([&] {
        ++started;
        std::this_thread::sleep_for(50ms);
        ++finished;
      });
    while (started.load() < 2) std::this_thread::yield();
    for (int i = 0; i < 5; ++i) pool.submit([&] { ++queued_ran; });
    throw std::runtime_error("the owner fails");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(finished.load(), 2);  // running tasks were waited for
  EXPECT_EQ(queued_ran.load(), 0);
  EXPECT_EQ(thread_count(), before);
}

TEST(FirstError, KeepsOnlyTheFirstOfManyThreads) {
  FirstError error;
  EXPECT_FALSE(error.failed());
  error.rethrow_if_failed();  // nothing kept: no throw
  std::atomic<int> firsts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      try {
        throw std::runtime_error("thread " + std::to_string(t));
      } catch (...) {
        firsts += error.capture_current();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(firsts.load(), 1);
  EXPECT_TRUE(error.failed());
  EXPECT_THROW(error.rethrow_if_failed(), std::runtime_error);
  EXPECT_THROW(error.rethrow_if_failed(), std::runtime_error);  // stays kept
}

TEST(DefaultParallelism, IsAtLeastOne) { EXPECT_GE(default_parallelism(), 1); }

}  // namespace
}  // namespace walvault
