// "Nothing arrives", proved with a marker instead of a timeout (which passes whenever delivery
// is merely slow): after the act under test, send something whose message to the receiver the
// broker must order after anything that act could have caused, and check it comes first.
//   - The same client's later publish: MQTT keeps one publisher's messages in order.
//   - The same client's later twin request of the same kind: its reply follows earlier replies.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "tests/support/mqtt_client.hpp"

namespace twins::test {

// `send_marker` sends the marker (false: it could not); `receiver` must then get `marker_topic`
// before anything else.
inline testing::AssertionResult OnlyMarkerArrives(MqttClient& receiver, const std::function<bool()>& send_marker,
                                                  const std::string& marker_topic) {
  if (!send_marker()) return testing::AssertionFailure() << "the marker " << marker_topic << " was not sent";
  auto first = receiver.Next(10000);
  if (!first) return testing::AssertionFailure() << "nothing arrived, not even the marker " << marker_topic;
  if (first->topic != marker_topic) {
    return testing::AssertionFailure() << "before the marker " << marker_topic << ": " << first->topic << " "
                                       << first->payload;
  }
  return testing::AssertionSuccess();
}

// The marker is `sender` publishing `marker_topic` at QoS 1 (`receiver` subscribes to it).
inline testing::AssertionResult OnlyMarkerArrives(MqttClient& receiver, MqttClient& sender,
                                                  const std::string& marker_topic) {
  return OnlyMarkerArrives(
      receiver, [&] { return sender.Publish(marker_topic, "marker", 1); }, marker_topic);
}

}  // namespace twins::test
