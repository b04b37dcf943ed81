// A test fixture owning one broker (tests/support/broker.hpp): whatever a test started is
// stopped at its end and must have exited cleanly (status 0, no sanitizer report).
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "tests/support/broker.hpp"

namespace twins::test {

class BrokerTest : public testing::Test {
 protected:
  void TearDown() override {
    if (!broker_) return;
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }

  std::unique_ptr<Broker> broker_;
};

}  // namespace twins::test
