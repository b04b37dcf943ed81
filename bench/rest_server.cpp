// The REST API alone (engine + RestServer, no broker), for bench/rest_bench.sh.
//
//   rest_bench_server DB_DIR [THREADS]
//
// Listens on a free 127.0.0.1 port with token "bench", stores a ~1 KiB document at
// twins/bench/documents/doc, prints "port N" on stdout once it serves, and runs until
// SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "rest/rest_server.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " DB_DIR [THREADS]\n";
    return 2;
  }
  // Blocked before any thread starts, so only sigwait below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto store = twins::OpenRocksDbStore(argv[1]);
  if (!store.ok()) {
    std::cerr << store.status().message() << "\n";
    return 1;
  }
  twins::Engine engine(std::move(store).value(), twins::Limits());

  // Integers print back unchanged, so the stored data is as long as written: 1 KiB.
  std::string data = "{\"data\":{\"model\":\"bench-sensor\",\"firmware\":\"4.2.1\",\"readings\":[";
  for (int i = 0; data.size() < 1024 + 6; ++i) data += (i ? "," : "") + std::to_string(1000 + i);
  data += "]}}";
  auto request = twins::ParseWriteRequest(data, engine.limits());
  auto put = request.ok() ? engine.Put("bench", "doc", request.value())
                          : twins::Result<twins::Document>(request.status());
  if (!put.ok()) {
    std::cerr << put.status().message() << "\n";
    return 1;
  }

  twins::RestOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = argc > 2 ? std::atoi(argv[2]) : 4;
  options.tokens = {"bench"};
  auto log = [](twins::LogLevel, const std::string& line) { std::cerr << line << "\n"; };
  auto server = twins::RestServer::Start(options, engine, log);
  if (!server.ok()) {
    std::cerr << server.status().message() << "\n";
    return 1;
  }
  std::cout << "port " << (*server)->port() << "\ndocument_bytes " << put->data.size() << std::endl;

  int signal = 0;
  sigwait(&stop, &signal);
  return 0;
}
