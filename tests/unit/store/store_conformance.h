// The ObjectStore conformance suite: the behaviour every store shows,
// whatever is behind it (see object_store.h for the contract). A store joins
// by instantiating the suite with a factory in its own test file:
//
//   INSTANTIATE_TEST_SUITE_P(Posix, StoreConformance,
//       ::testing::Values(StoreFactory{"posix", make_posix_store,
//                                      {.exclusive_create = true, .reports_space = true}}),
//       store_factory_name);
//
// and by linking store_conformance.cpp, which holds the tests, into the same
// binary. The tests know nothing about any implementation: where stores
// legitimately differ, they branch on the declared Capabilities only, and the
// suite checks that the store declares exactly those.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "store/object_store.h"

namespace walvault::store::testing {

struct StoreFactory {
  std::string name;  // becomes the test name suffix: letters, digits, '_' only
  // A store over a fresh, empty location on every call; the factory owns
  // cleaning that location up (e.g. a scratch directory removed at exit).
  // nullptr means the backend is not configured here (S3 without a test
  // server) and skips the test; a factory that must not skip throws instead.
  std::function<std::unique_ptr<ObjectStore>()> make;
  Capabilities capabilities;  // what the store must report
};

inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

inline std::string store_factory_name(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    if (!store_) GTEST_SKIP() << "the " << GetParam().name << " store is not configured";
  }
  const Capabilities& declared() const { return GetParam().capabilities; }

  std::unique_ptr<ObjectStore> store_;
};

}  // namespace walvault::store::testing
