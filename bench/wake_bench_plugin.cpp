// How long work queued from another thread waits before it runs on the broker thread, with the
// broker wake (plugin/broker_wake.hpp) and without it (the tick only). A plugin for
// bench/wake_latency.sh: a thread queues a task every 20-30 ms (random, so that it falls
// anywhere in the broker's sleep); each task notes its wait (the first 20 are a warm-up). After plugin_opt_samples
// tasks it logs "wake_bench: <on|off> <samples> samples, p50 <ms> ms, p99 <ms> ms, max <ms> ms".
// plugin_opt_wake_address host:port (the broker's listener) or off. Bench broker only: other
// clients are left to allow_anonymous (a deferring basic-auth callback).
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "plugin/broker_queue.hpp"
#include "plugin/broker_wake.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Bench {
  mosquitto_plugin_id_t* id = nullptr;
  twins::BrokerQueue queue{100000};
  std::unique_ptr<twins::BrokerWake> wake;
  size_t samples = 500;
  size_t warm_up = 20;           // the first tasks: before the wake connected
  std::vector<double> waits_ms;  // broker thread only
  bool reported = false;
  std::atomic<bool> stopping{false};
  std::thread feeder;

  void Feed() {
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> pause_us(20000, 30000);
    while (!stopping) {
      std::this_thread::sleep_for(std::chrono::microseconds(pause_us(random)));
      const Clock::time_point queued = Clock::now();
      queue.Push([this, queued] {
        if (warm_up > 0) {
          --warm_up;
          return;
        }
        waits_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - queued).count());
        Report();
      });
    }
  }
  void Report() {
    if (reported || waits_ms.size() < samples) return;
    reported = true;
    std::vector<double> sorted = waits_ms;
    std::sort(sorted.begin(), sorted.end());
    const auto at = [&](double q) { return sorted[static_cast<size_t>(q * static_cast<double>(sorted.size() - 1))]; };
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "wake_bench: %s %zu samples, p50 %.3f ms, p99 %.3f ms, max %.3f ms",
                         wake ? "on" : "off", sorted.size(), at(0.5), at(0.99), sorted.back());
  }
};

int OnTick(int, void* event_data, void* userdata) {
  auto& bench = *static_cast<Bench*>(userdata);
  static_cast<mosquitto_evt_tick*>(event_data)->next_ns = 100;  // 2.1's next_ms, as mosquitto_twins asks
  if (bench.wake) bench.wake->Start();
  bench.queue.Drain();
  return MOSQ_ERR_SUCCESS;
}

int OnMessage(int, void* event_data, void* userdata) {
  auto& bench = *static_cast<Bench*>(userdata);
  const auto* msg = static_cast<mosquitto_evt_message*>(event_data);
  if (bench.wake && msg->client == bench.wake->connection()) bench.queue.Drain();
  return MOSQ_ERR_SUCCESS;
}

int OnAuth(int, void* event_data, void* userdata) {
  auto& bench = *static_cast<Bench*>(userdata);
  auto* auth = static_cast<mosquitto_evt_basic_auth*>(event_data);
  if (bench.wake->Check(mosquitto_client_id(auth->client), auth->username, auth->password) !=
      twins::WakeCredentials::kWake) {
    return MOSQ_ERR_PLUGIN_DEFER;
  }
  bench.wake->SetConnection(auth->client);
  return MOSQ_ERR_SUCCESS;
}

}  // namespace

extern "C" {

int mosquitto_plugin_version(int count, const int* versions) {
  return std::find(versions, versions + count, 5) != versions + count ? 5 : -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t* id, void** userdata, mosquitto_opt* opts, int opt_count) try {
  auto bench = std::make_unique<Bench>();
  bench->id = id;
  for (int i = 0; i < opt_count; ++i) {
    const std::string key = opts[i].key, value = opts[i].value;
    if (key == "samples") bench->samples = std::stoul(value);
    if (key != "wake_address") continue;
    twins::WakeTarget target;
    bool off = false;
    if (!twins::ParseWakeAddress(value, &target, &off).ok()) return MOSQ_ERR_INVAL;
    if (!off) {
      bench->wake = std::make_unique<twins::BrokerWake>(
          target, [](twins::LogLevel, const std::string&) {}, [](bool) {});
    }
  }
  if (bench->wake) {
    bench->queue.SetWaker([wake = bench->wake.get()] { wake->Request(); });
    mosquitto_callback_register(id, MOSQ_EVT_BASIC_AUTH, OnAuth, nullptr, bench.get());
    mosquitto_callback_register(id, MOSQ_EVT_MESSAGE, OnMessage, nullptr, bench.get());
  }
  mosquitto_callback_register(id, MOSQ_EVT_TICK, OnTick, nullptr, bench.get());
  bench->feeder = std::thread([b = bench.get()] { b->Feed(); });
  *userdata = bench.release();
  return MOSQ_ERR_SUCCESS;
} catch (...) {
  return MOSQ_ERR_UNKNOWN;
}

int mosquitto_plugin_cleanup(void* userdata, mosquitto_opt*, int) {
  auto* bench = static_cast<Bench*>(userdata);
  mosquitto_callback_unregister(bench->id, MOSQ_EVT_TICK, OnTick, nullptr);
  mosquitto_callback_unregister(bench->id, MOSQ_EVT_MESSAGE, OnMessage, nullptr);
  mosquitto_callback_unregister(bench->id, MOSQ_EVT_BASIC_AUTH, OnAuth, nullptr);
  bench->stopping = true;
  bench->feeder.join();
  delete bench;
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
