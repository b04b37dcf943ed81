// Turns successful twin writes into time-series samples, per the twin's `_config`.
//
// Installed with Engine::SetObserver. For each put or patch of a document (never of
// `_config` itself) it reads the twin's configuration, so a `_config` change applies from
// the next write on, evaluates the triggers (points.hpp) and hands the samples, stamped
// with the time of the write, to the sink. It never waits on the network: the sink queues.
// A document without `_tsdb_trigger` costs one configuration read and no JSON parsing.
#pragma once

#include "engine.hpp"
#include "log.hpp"
#include "sample.hpp"

namespace twins {

class TsdbObserver final : public WriteObserver {
 public:
  // `engine` and `sink` must outlive the observer. `log` may be empty.
  TsdbObserver(const Engine& engine, SampleSink& sink, LogFn log = nullptr)
      : engine_(engine), sink_(sink), log_(std::move(log)) {}

  void OnWrite(const WriteEvent& event) noexcept override;

 private:
  const Engine& engine_;
  SampleSink& sink_;
  LogFn log_;
};

}  // namespace twins
