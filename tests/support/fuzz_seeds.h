// Seeds of a fuzz loop: a fixed set every run, then more for a bounded time
// when asked (scripts/sanitize, under AddressSanitizer and UBSan).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace walvault::testing {

// Yields seeds 0, 1, ..., `fixed_rounds - 1` (the same inputs every run),
// then, when WALVAULT_FUZZ_SECONDS=<s> is set, further seeds until <s>
// seconds have passed since construction. Use:
//   for (FuzzSeeds seeds(64); seeds.next();) { std::mt19937_64 rng(seeds.seed()); ... }
// A failing input is reproduced by its seed (name it in the assertion).
class FuzzSeeds {
 public:
  explicit FuzzSeeds(std::uint64_t fixed_rounds)
      : fixed_rounds_(fixed_rounds), start_(std::chrono::steady_clock::now()) {
    if (const char* s = std::getenv("WALVAULT_FUZZ_SECONDS"); s && *s)
      budget_ = std::chrono::duration<double>(std::stod(s));
  }
  // Advances to the next seed; false when the loop is done.
  bool next() {
    if (started_) ++seed_;
    started_ = true;
    if (seed_ < fixed_rounds_) return true;
    return std::chrono::steady_clock::now() - start_ < budget_;
  }
  std::uint64_t seed() const { return seed_; }
  std::string describe() const { return "seed " + std::to_string(seed_); }

 private:
  std::uint64_t fixed_rounds_;
  std::uint64_t seed_ = 0;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::duration<double> budget_{0};
};

}  // namespace walvault::testing
