#include "core/parallel.h"

#include <algorithm>
#include <utility>

namespace walvault {

bool FirstError::capture(std::exception_ptr error) noexcept {
  std::lock_guard lock(mu_);
  if (error_) return false;
  error_ = std::move(error);
  failed_.store(true, std::memory_order_release);
  return true;
}

void FirstError::rethrow_if_failed() const {
  if (!failed()) return;
  std::exception_ptr error;
  {
    std::lock_guard lock(mu_);
    error = error_;
  }
  std::rethrow_exception(error);
}

WorkerPool::WorkerPool(int workers, std::size_t queue_capacity)
    : max_threads_(static_cast<std::size_t>(std::max(1, workers))),
      capacity_(std::max<std::size_t>(1, queue_capacity)) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  work_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::submit(Task task) {
  std::unique_lock lock(mu_);
  space_.wait(lock, [&] { return queue_.size() < capacity_ || error_.failed(); });
  error_.rethrow_if_failed();
  // A thread for this task unless an idle one is left over for it.
  if (queue_.size() + 1 > idle_threads_ && threads_.size() < max_threads_)
    threads_.emplace_back([this] { run(); });
  queue_.push_back(std::move(task));
  work_.notify_one();
}

void WorkerPool::wait_idle(std::unique_lock<std::mutex>& lock) {
  idle_.wait(lock, [&] { return running_ == 0 && (queue_.empty() || error_.failed()); });
}

void WorkerPool::wait() {
  {
    std::unique_lock lock(mu_);
    wait_idle(lock);
  }
  error_.rethrow_if_failed();
}

void WorkerPool::drain() noexcept {
  std::unique_lock lock(mu_);
  wait_idle(lock);
}

void WorkerPool::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_threads_;
    work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    --idle_threads_;
    if (stop_) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    space_.notify_one();
    lock.unlock();
    try {
      task();
    } catch (...) {
      error_.capture_current();
    }
    task = nullptr;  // what it holds goes before the pool counts it done
    lock.lock();
    --running_;
    if (error_.failed()) {
      queue_.clear();
      space_.notify_all();
    }
    if (running_ == 0 && (queue_.empty() || error_.failed())) idle_.notify_all();
  }
}

void parallel_for(std::size_t count, int workers, const std::function<void(std::size_t)>& fn) {
  std::atomic<std::size_t> next{0};
  FirstError error;
  auto run = [&] {
    while (!error.failed()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= count) return;
      try {
        fn(i);
      } catch (...) {
        error.capture_current();
      }
    }
  };
  const std::size_t threads =
      std::min<std::size_t>(count, static_cast<std::size_t>(std::max(1, workers)));
  {
    WorkerPool pool(static_cast<int>(threads) - 1, threads);
    try {
      for (std::size_t t = 1; t < threads; ++t) pool.submit(run);
    } catch (...) {
      error.capture_current();  // no thread for more: stop the ones running, then report
    }
    run();
    pool.wait();  // `run` never throws
  }
  error.rethrow_if_failed();
}

int default_parallelism() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace walvault
