// The one way walvault runs work in parallel: a bounded worker pool, a
// parallel_for on top of it, and the first-error capture both use.
//
// WorkerPool runs tasks (std::function<void()>) on up to N threads. Threads
// start lazily, one at a time, when a task is submitted and no thread is
// idle, so a pool that is never used costs nothing (archive-push is one
// process per WAL file). The queue is bounded: submit() blocks while it is
// full, so a producer faster than the workers waits instead of buffering
// without limit (backpressure).
//
// Failure: the first exception a task throws is kept (FirstError); the tasks
// still queued are dropped, no new task is accepted (submit() rethrows that
// failure instead) and wait() rethrows it to the owner. Later failures are
// dropped: the first one is what the owner reports. The pool's destructor
// drops the queued tasks, waits for the running ones and joins every thread,
// so an owner unwinding from its own exception leaks no thread; a failure no
// one rethrew goes with the pool (the owner is already failing).
//
// Ordering: tasks start in submission order; with more than one thread they
// run (and finish) in any order. Everything a task did happens-before
// wait() returns.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace walvault {

// The first of the exceptions raised by several threads, kept for the one
// that reports. Thread-safe.
class FirstError {
 public:
  // Keeps `error` unless a failure is kept already; true when this was the
  // first. Call capture_current() inside a catch block.
  bool capture(std::exception_ptr error) noexcept;
  bool capture_current() noexcept { return capture(std::current_exception()); }
  // True once a failure is kept (cheap: polled by workers between items).
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  // Rethrows the kept failure, if any; it stays kept.
  void rethrow_if_failed() const;

 private:
  mutable std::mutex mu_;
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

class WorkerPool {
 public:
  using Task = std::function<void()>;

  // Up to `workers` threads (at least 1), at most `queue_capacity` tasks
  // waiting (at least 1) besides those running.
  WorkerPool(int workers, std::size_t queue_capacity);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`, blocking while the queue is full. Throws the first
  // failure instead once a task failed (the task is then not run), and what
  // starting a thread throws (std::system_error; the task is not queued).
  void submit(Task task);
  // Blocks until every submitted task ran, or after a failure until none is
  // running; then rethrows the first failure. The pool stays usable when
  // nothing failed.
  void wait();
  // As wait(), but never throws: a failure stays kept for wait(). For an
  // owner that must know its tasks are done before it frees what they use,
  // while unwinding from an exception of its own.
  void drain() noexcept;
  bool failed() const noexcept { return error_.failed(); }

 private:
  void run();
  void wait_idle(std::unique_lock<std::mutex>& lock);

  const std::size_t max_threads_;
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable work_, space_, idle_;
  std::deque<Task> queue_;
  std::size_t idle_threads_ = 0;
  std::size_t running_ = 0;
  bool stop_ = false;
  FirstError error_;
  std::vector<std::thread> threads_;
};

// Runs fn(0) .. fn(count - 1) on up to `workers` threads, the caller's among
// them (so `workers` = 1 runs everything on the caller's thread, in order),
// and returns when all have run. Indexes start in increasing order. After the
// first failure no new index starts; that failure is rethrown once every
// thread has returned. fn must be safe to call from several threads at once.
void parallel_for(std::size_t count, int workers, const std::function<void(std::size_t)>& fn);

// The default --parallel of every command: the machine's hardware threads
// (std::thread::hardware_concurrency), at least 1 when it is unknown.
int default_parallelism();

}  // namespace walvault
