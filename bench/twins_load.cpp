// twins_load: a load generator for the in-band twin API, on libmosquitto.
//
// N device connections, client ids <prefix><i>, each with at most one request in flight on
// $SCW/twins/<client id>/<doc>/<method>; a request completes when its reply arrives on
// <request topic>/response/success (or /response/error, counted as an error). Before the clock
// starts, every device puts its document once, so that gets find it.
//
// One thread drives every connection: epoll says which sockets are readable and libmosquitto's
// loop_read/loop_write do the MQTT work. A thread per connection (mosquitto_loop_start) would
// add a wake-up and a context switch per message, and on a 2-core machine every cycle the
// generator spends is taken from the broker it measures.
//
//   twins_load --port P[,P2...] [--devices 64] [--method get|put|patch|worst] [--qos 0|1] [--mqtt 5|311]
//              [--duration 10 | --requests N] [--warmup 1] [--rate R] [--doc state]
//              [--prefix bench-] [--timeout-ms 5000] [--label text]
//              [--ids K [--id-step S] --reconnect-every M] [--broker-pid PID[,PID2...]]
//              [--server-pid PID[,PID2...]]
//
// --rate R caps the total at R requests/s, spread evenly over the devices (still one in flight
// each); without it the loop is closed and runs flat out. --ids K sweeps client ids 0..K-1:
// each connection makes M requests, disconnects and comes back under its next id, with no
// priming and no warm-up; the run ends when every id has been served. --id-step S visits only
// ids 0, S, 2S, ... below K: a sample spread over a large preloaded database.
//
// --method worst floods the worst request shapes within the default limits, in turn (as
// bench/worst_case_bench.cpp has them): puts of 7 000 keys, of 5 000 escaped keys, of 1 000
// arrays nested to the depth limit, and of 32 000 numbers (alternately 0 and 1), each over a
// `_config` of ~8 KiB (the default max_config_bytes) that the priming writes instead of the
// document: an on-update trigger on the whole document and on-change on the array's key.
// Against a broker with plugin_opt_max_requests_per_second 0 and a Graphite URL, so that
// every request is taken and its triggers evaluated (bench/bystander_bench.sh).
//
// --broker-pid adds the broker's CPU use over the measured window (all its threads, from
// /proc), the figure least disturbed by a noisy machine, and its main thread's alone.
//
// Several ports: the devices are dealt out over them in turn (device i to port i mod n), for
// brokers sharing one store; give their pids to --broker-pid and their CPU use is summed.
// --server-pid adds the CPU use of other processes and of their children (a PostgreSQL
// postmaster: its backends, WAL writer and WAL sender), as server_cpu and server_us_per_op.
// broker_wait and server_wait are how long their threads were runnable but waited for a CPU
// (schedstat), in cores like the CPU figures: what other work on the machine took from them.
// completed_all counts every reply since the first connection (priming and warm-up too), for
// figures taken around the whole run (a database's transaction counter).
//
// Prints one JSON line on stdout and one human-readable line on stderr.

#include <dirent.h>
#include <mosquitto.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <queue>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  std::vector<int> ports = {1883};
  int devices = 64;
  std::string method = "get";
  int qos = 0;
  int mqtt = 5;
  double duration = 10;
  long requests = 0;  // > 0: stop after this many measured requests instead of after `duration`
  double warmup = 1;
  double rate = 0;
  std::string doc = "state";
  std::string prefix = "bench-";
  int timeout_ms = 5000;
  std::string label;
  long ids = 0;  // > 0: the id sweep
  long id_step = 1;
  long reconnect_every = 1;
  std::vector<int> broker_pids;
  std::vector<int> server_pids;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "twins_load: %s (see the header of bench/twins_load.cpp)\n", why.c_str());
  std::exit(2);
}

// "1,2,3" -> {1, 2, 3}; std::stoi's exception on anything else.
std::vector<int> IntList(const std::string& value) {
  std::vector<int> list;
  for (size_t start = 0; start <= value.size();) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    list.push_back(std::stoi(value.substr(start, comma - start)));
    start = comma + 1;
  }
  return list;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  const std::map<std::string, std::function<void(const std::string&)>> flags = {
      {"--host", [&](const std::string& v) { o.host = v; }},
      {"--port", [&](const std::string& v) { o.ports = IntList(v); }},
      {"--devices", [&](const std::string& v) { o.devices = std::stoi(v); }},
      {"--method", [&](const std::string& v) { o.method = v; }},
      {"--qos", [&](const std::string& v) { o.qos = std::stoi(v); }},
      {"--mqtt", [&](const std::string& v) { o.mqtt = std::stoi(v); }},
      {"--duration", [&](const std::string& v) { o.duration = std::stod(v); }},
      {"--requests", [&](const std::string& v) { o.requests = std::stol(v); }},
      {"--warmup", [&](const std::string& v) { o.warmup = std::stod(v); }},
      {"--rate", [&](const std::string& v) { o.rate = std::stod(v); }},
      {"--doc", [&](const std::string& v) { o.doc = v; }},
      {"--prefix", [&](const std::string& v) { o.prefix = v; }},
      {"--timeout-ms", [&](const std::string& v) { o.timeout_ms = std::stoi(v); }},
      {"--label", [&](const std::string& v) { o.label = v; }},
      {"--ids", [&](const std::string& v) { o.ids = std::stol(v); }},
      {"--id-step", [&](const std::string& v) { o.id_step = std::stol(v); }},
      {"--reconnect-every", [&](const std::string& v) { o.reconnect_every = std::stol(v); }},
      {"--broker-pid", [&](const std::string& v) { o.broker_pids = IntList(v); }},
      {"--server-pid", [&](const std::string& v) { o.server_pids = IntList(v); }},
  };
  for (int i = 1; i < argc; i += 2) {
    auto flag = flags.find(argv[i]);
    if (flag == flags.end()) Usage(std::string("unknown option ") + argv[i]);
    if (i + 1 >= argc) Usage(std::string(argv[i]) + " needs a value");
    try {
      flag->second(argv[i + 1]);
    } catch (const std::exception&) {
      Usage(std::string("bad value for ") + argv[i]);
    }
  }
  if (o.method != "get" && o.method != "put" && o.method != "patch" && o.method != "worst") {
    Usage("--method is get, put, patch or worst");
  }
  if (o.qos != 0 && o.qos != 1) Usage("--qos is 0 or 1");
  if (o.mqtt != 5 && o.mqtt != 311) Usage("--mqtt is 5 or 311");
  if (o.devices < 1 || o.reconnect_every < 1 || o.id_step < 1 || o.rate < 0) {
    Usage("--devices, --reconnect-every, --id-step must be positive, --rate not negative");
  }
  if (o.ids > 0) o.devices = static_cast<int>(std::min<long>(o.devices, (o.ids + o.id_step - 1) / o.id_step));
  return o;
}

// ~1 KiB of device state: nested objects, numbers, strings, arrays (as bench/engine_bench.cpp).
std::string KilobyteData() {
  std::string data = "{\"device\":{\"model\":\"thermo-3000\",\"firmware\":\"4.2.0\"},";
  for (int i = 0; i < 12; ++i) {
    data += "\"sensor" + std::to_string(i) + "\":{\"value\":" + std::to_string(20 + i % 7) +
            ".5,\"unit\":\"celsius\",\"ok\":true,\"history\":[1,2,3]},";
  }
  return data + "\"tags\":[\"a\",\"b\",\"c\"]}";
}

// Distinct keys of `width` lower-case letters: "aaa", "aab", ...
std::string Key(int i, int width) {
  std::string key(width, 'a');
  for (int pos = width - 1; pos >= 0; --pos, i /= 26) key[pos] = static_cast<char>('a' + i % 26);
  return key;
}

// The bodies of --method worst, taken in turn.
std::vector<std::string> WorstBodies() {
  auto body = [](const std::string& data) { return "{\"data\":" + data + "}"; };
  std::vector<std::string> bodies;
  std::string keys = "{", escaped = "{", nested = "{\"n\":[";
  for (int i = 0; i < 7000; ++i) keys += (i ? ",\"" : "\"") + Key(i, 4) + "\":0";
  for (int i = 0; i < 5000; ++i) escaped += (i ? ",\"\\u0061" : "\"\\u0061") + Key(i, 3) + "\":0";
  const std::string chain = std::string(30, '[') + "0" + std::string(30, ']');
  for (int i = 0; i < 1000; ++i) nested += (i ? "," : "") + chain;
  bodies.push_back(body(keys + "}"));
  bodies.push_back(body(escaped + "}"));
  bodies.push_back(body(nested + "]}"));
  for (const char* number : {"0", "1"}) {
    std::string array = "{\"a\":[" + std::string(number);
    for (int i = 1; i < 32000; ++i) array += std::string(",") + number;
    bodies.push_back(body(array + "]}"));
  }
  return bodies;
}

// The `_config` of --method worst: as large as max_config_bytes (8192) allows.
std::string WorstConfigBody(const std::string& doc) {
  std::string config = "{\"documents\":{\"" + doc +
                       "\":{\"_tsdb_trigger\":\"on-update\",\"a\":{\"_tsdb_trigger\":\"on-change\"}}";
  for (int i = 0; config.size() + 60 < 8192; ++i) {
    config += ",\"d" + Key(i, 4) + "\":{\"_tsdb_trigger\":\"on-change\",\"_tags\":{\"site\":\"lyon\"}}";
  }
  return "{\"data\":" + config + "}}}";
}

enum class Phase { kPriming, kWarmup, kMeasure, kDone };

struct Load;

struct Device {
  Load* load = nullptr;
  int slot = 0;
  long id = 0;          // the number in the client id
  long done_on_id = 0;  // requests completed under this id (id sweep)
  mosquitto* mosq = nullptr;
  std::string topic;  // of the request in flight
  bool in_flight = false;
  bool primed = false;
  bool failed = false;  // a publish failed inside a callback: dropped on the next Flush
  bool rotate = false;
  bool watching_out = false;
  Clock::time_point sent;
  Clock::time_point due;  // next send under --rate
};

struct Stats {
  std::vector<int64_t> latency_ns;
  Clock::time_point last_completion;
  Clock::duration max_gap{};  // the longest time without any reply: shows pauses of the machine
  long completed_all = 0;     // every reply, priming and warm-up included
  long error_replies = 0;
  long timeouts = 0;
  long disconnects = 0;
};

struct Load {
  Options options;
  std::vector<Device> devices;
  std::string put_body;
  long patch_counter = 0;
  std::vector<std::string> worst_bodies;  // --method worst
  std::string worst_config;
  long worst_counter = 0;
  int epoll_fd = -1;
  Phase phase = Phase::kPriming;
  int primed = 0;
  int lost = 0;
  int finished = 0;  // lost, or (id sweep) done
  Clock::time_point measure_start, measure_end;
  Stats stats;
  std::vector<Device*> touched;  // sockets that may have bytes to write
  using Due = std::pair<Clock::time_point, Device*>;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> waiting;  // --rate: idle until due
};

// `method`: get, put or patch; worst (a worst-case put) or config (its `_config`), put too.
void Send(Device& d, const std::string& method) {
  Load& load = *d.load;
  std::string body;
  std::string doc = load.options.doc;
  std::string verb = method;
  if (method == "put") {
    body = load.put_body;
  } else if (method == "patch") {
    body = "{\"version\":0,\"data\":{\"sensor3\":{\"value\":" + std::to_string(++load.patch_counter) + "}}}";
  } else if (method == "worst") {
    body = load.worst_bodies[load.worst_counter++ % load.worst_bodies.size()];
    verb = "put";
  } else if (method == "config") {
    body = load.worst_config;
    doc = "_config";
    verb = "put";
  }
  d.topic = "$SCW/twins/" + load.options.prefix + std::to_string(d.id) + "/" + doc + "/" + verb;
  d.in_flight = true;
  d.sent = Clock::now();
  int rc = mosquitto_publish(d.mosq, nullptr, d.topic.c_str(), static_cast<int>(body.size()), body.data(),
                             load.options.qos, false);
  if (rc != MOSQ_ERR_SUCCESS) {
    d.in_flight = false;
    d.failed = true;
  }
  load.touched.push_back(&d);
}

// The next request of a device that just finished one (or just connected).
void Next(Device& d, Clock::time_point now) {
  Load& load = *d.load;
  if (load.phase == Phase::kDone || d.rotate || d.failed || d.mosq == nullptr) return;
  if (load.options.rate > 0) {
    if (d.due > now) {
      load.waiting.push({d.due, &d});
      return;
    }
    d.due += std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(load.options.devices / load.options.rate));
  }
  Send(d, load.options.method);
}

void StartClock(Load& load, Clock::time_point now) {
  load.phase = Phase::kWarmup;  // even with no warm-up: the main loop starts the measure and its CPU clocks
  load.measure_start = now +
                       std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(load.options.warmup));
  // Staggered, so that a capped rate is smooth rather than N requests at once.
  const double interval = load.options.rate > 0 ? load.options.devices / load.options.rate : 0;
  for (Device& d : load.devices) {
    d.due = now + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(interval * d.slot / load.options.devices));
    Next(d, now);
  }
}

void Complete(Device& d, bool success) {
  Load& load = *d.load;
  const Clock::time_point now = Clock::now();
  d.in_flight = false;
  ++load.stats.completed_all;
  if (load.phase == Phase::kPriming) {
    if (!success) {
      std::fprintf(stderr, "twins_load: priming put of %s%ld was refused\n", load.options.prefix.c_str(), d.id);
      std::exit(1);
    }
    d.primed = true;
    if (++load.primed == static_cast<int>(load.devices.size())) StartClock(load, now);
    return;
  }
  if (load.phase == Phase::kMeasure) {
    load.stats.latency_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - d.sent).count());
    if (!success) ++load.stats.error_replies;
    load.stats.max_gap = std::max(load.stats.max_gap, now - load.stats.last_completion);
    load.stats.last_completion = now;
  }
  if (load.options.ids > 0 && ++d.done_on_id >= load.options.reconnect_every) {
    d.rotate = true;
    return;
  }
  Next(d, now);
}

void OnConnect(mosquitto*, void* obj, int rc, int, const mosquitto_property*) {
  auto& d = *static_cast<Device*>(obj);
  if (rc != 0) {
    std::fprintf(stderr, "twins_load: connection refused: %s\n", mosquitto_connack_string(rc));
    std::exit(1);
  }
  Load& load = *d.load;
  if (load.phase == Phase::kPriming && !d.primed) {
    Send(d, load.options.method == "worst" ? "config" : "put");
  } else {
    Next(d, Clock::now());
  }
}

void OnMessage(mosquitto*, void* obj, const mosquitto_message* msg, const mosquitto_property*) {
  auto& d = *static_cast<Device*>(obj);
  if (!d.in_flight) return;
  const char* topic = msg->topic;
  if (std::strncmp(topic, d.topic.c_str(), d.topic.size()) != 0) return;
  const char* suffix = topic + d.topic.size();
  if (std::strcmp(suffix, "/response/success") == 0) {
    Complete(d, true);
  } else if (std::strcmp(suffix, "/response/error") == 0) {
    Complete(d, false);
  }
}

void Watch(Load& load, Device& d, int op, bool out) {
  epoll_event ev{};
  ev.events = out ? EPOLLIN | EPOLLOUT : EPOLLIN;
  ev.data.ptr = &d;
  epoll_ctl(load.epoll_fd, op, mosquitto_socket(d.mosq), &ev);
  d.watching_out = out;
}

// Connects the device under its current id; the CONNACK arrives through the event loop.
void Connect(Load& load, Device& d) {
  const std::string client_id = load.options.prefix + std::to_string(d.id);
  d.mosq = mosquitto_new(client_id.c_str(), true, &d);
  if (d.mosq == nullptr) {
    std::fprintf(stderr, "twins_load: out of memory\n");
    std::exit(1);
  }
  mosquitto_int_option(d.mosq, MOSQ_OPT_PROTOCOL_VERSION,
                       load.options.mqtt == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  mosquitto_int_option(d.mosq, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_v5_callback_set(d.mosq, OnConnect);
  mosquitto_message_v5_callback_set(d.mosq, OnMessage);
  const int port = load.options.ports[d.slot % load.options.ports.size()];
  int rc = mosquitto_connect(d.mosq, load.options.host.c_str(), port, 60);
  if (rc != MOSQ_ERR_SUCCESS) {
    std::fprintf(stderr, "twins_load: cannot connect to %s:%d: %s\n", load.options.host.c_str(), port,
                 mosquitto_strerror(rc));
    std::exit(1);
  }
  Watch(load, d, EPOLL_CTL_ADD, false);
  d.done_on_id = 0;
  d.rotate = false;
}

void Disconnect(Device& d) {
  mosquitto_disconnect(d.mosq);
  mosquitto_loop_write(d.mosq, 1);
  mosquitto_destroy(d.mosq);  // closing the socket also takes it out of the epoll set
  d.mosq = nullptr;
}

// Outside callbacks only: it destroys the client.
void Lose(Load& load, Device& d) {
  if (d.mosq == nullptr) return;
  mosquitto_destroy(d.mosq);
  d.mosq = nullptr;
  ++load.stats.disconnects;
  ++load.lost;
  ++load.finished;
}

void Flush(Load& load) {
  for (Device* d : load.touched) {
    if (d->mosq == nullptr) continue;
    if (d->failed) {
      Lose(load, *d);
      continue;
    }
    if (mosquitto_want_write(d->mosq) && mosquitto_loop_write(d->mosq, 1) != MOSQ_ERR_SUCCESS) {
      Lose(load, *d);
      continue;
    }
    bool pending = mosquitto_want_write(d->mosq);
    if (pending != d->watching_out) Watch(load, *d, EPOLL_CTL_MOD, pending);
  }
  load.touched.clear();
}

void Rotate(Load& load) {
  for (Device& d : load.devices) {
    if (!d.rotate || d.mosq == nullptr) continue;
    Disconnect(d);
    d.rotate = false;
    d.id += load.options.devices * load.options.id_step;
    if (d.id >= load.options.ids) {
      ++load.finished;  // no id left for this slot
      continue;
    }
    Connect(load, d);
  }
}

void Housekeeping(Load& load, Clock::time_point now) {
  for (Device& d : load.devices) {
    if (d.mosq == nullptr) continue;
    mosquitto_loop_misc(d.mosq);  // keep-alive pings
    if (d.in_flight && now - d.sent > std::chrono::milliseconds(load.options.timeout_ms)) {
      // A late reply would then complete the next request early: a run with timeouts is
      // reported as such and its latencies are not to be trusted.
      d.in_flight = false;
      if (load.phase == Phase::kMeasure) ++load.stats.timeouts;
      if (load.phase == Phase::kPriming) {
        std::fprintf(stderr, "twins_load: priming put of %s%ld timed out\n", load.options.prefix.c_str(), d.id);
        std::exit(1);
      }
      Next(d, now);
    }
  }
}

// The fields of /proc/.../stat after "pid (comm)", from the state on (field 3), or none.
std::vector<std::string> StatFields(const std::string& path) {
  std::ifstream in(path);
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> fields;
  size_t end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos) return fields;
  size_t pos = end_of_name + 2;
  while (pos < stat.size()) {
    size_t space = stat.find(' ', pos);
    if (space == std::string::npos) space = stat.size();
    fields.push_back(stat.substr(pos, space - pos));
    pos = space + 1;
  }
  return fields;
}

// User + system CPU seconds in a stat file (utime and stime are fields 14 and 15; with
// `reaped`, also cutime and cstime: children that ended and were waited for), 0 if unread.
double StatCpuSeconds(const std::string& path, bool reaped = false) {
  std::vector<std::string> fields = StatFields(path);
  if (fields.size() < 15) return 0;
  double ticks = std::stod(fields[11]) + std::stod(fields[12]);
  if (reaped) ticks += std::stod(fields[13]) + std::stod(fields[14]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The whole processes' CPU seconds (all their threads).
double ProcessCpuSeconds(const std::vector<int>& pids) {
  double sum = 0;
  for (int pid : pids) sum += StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat");
  return sum;
}

// Their main threads' alone (a broker's is the one that runs Mosquitto's loop).
double MainThreadCpuSeconds(const std::vector<int>& pids) {
  double sum = 0;
  for (int pid : pids) {
    sum += StatCpuSeconds("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/stat");
  }
  return sum;
}

// Seconds a task spent runnable but waiting for a CPU (the second field of its schedstat): what
// the other loads of a shared machine take from it. 0 if it cannot be read.
double RunQueueWaitSeconds(const std::string& task_dir) {
  std::ifstream in(task_dir + "/schedstat");
  double on_cpu_ns = 0, waiting_ns = 0;
  in >> on_cpu_ns >> waiting_ns;
  return in ? waiting_ns / 1e9 : 0;
}

// Over all the threads of the processes.
double ThreadsRunQueueWaitSeconds(const std::vector<int>& pids) {
  double sum = 0;
  for (int pid : pids) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    DIR* dir = opendir(tasks.c_str());
    if (dir == nullptr) continue;
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') sum += RunQueueWaitSeconds(tasks + "/" + entry->d_name);
    }
    closedir(dir);
  }
  return sum;
}

// The processes with their children (a PostgreSQL postmaster's backends and auxiliary processes
// are its children, each one thread): CPU seconds, the children reaped included, and run-queue
// waits of those alive.
void TreeClocks(const std::vector<int>& pids, double* cpu, double* wait) {
  *cpu = *wait = 0;
  if (pids.empty()) return;
  for (int pid : pids) {
    *cpu += StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat", true);
    *wait += RunQueueWaitSeconds("/proc/" + std::to_string(pid));
  }
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return;
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    const std::string dir = std::string("/proc/") + entry->d_name;
    std::vector<std::string> fields = StatFields(dir + "/stat");
    if (fields.size() < 15) continue;
    const int parent = std::atoi(fields[1].c_str());
    if (std::find(pids.begin(), pids.end(), parent) == pids.end()) continue;
    *cpu += (std::stod(fields[11]) + std::stod(fields[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
    *wait += RunQueueWaitSeconds(dir);
  }
  closedir(proc);
}

// CPU seconds of the generator, the brokers (whole, main threads) and the servers, and the
// seconds the brokers' and the servers' threads waited for a CPU.
struct CpuClocks {
  double self = 0, brokers = 0, broker_main = 0, servers = 0, broker_wait = 0, server_wait = 0;

  static CpuClocks Read(const Options& o) {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    CpuClocks c;
    c.self = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    c.brokers = ProcessCpuSeconds(o.broker_pids);
    c.broker_main = MainThreadCpuSeconds(o.broker_pids);
    c.broker_wait = ThreadsRunQueueWaitSeconds(o.broker_pids);
    TreeClocks(o.server_pids, &c.servers, &c.server_wait);
    return c;
  }
  CpuClocks operator-(const CpuClocks& start) const {
    return {self - start.self,       brokers - start.brokers,         broker_main - start.broker_main,
            servers - start.servers, broker_wait - start.broker_wait, server_wait - start.server_wait};
  }
};

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::max<size_t>(rank, 1) - 1]) / 1e6;
}

void Report(Load& load, double seconds, const CpuClocks& cpu) {
  const Options& o = load.options;
  std::vector<int64_t>& lat = load.stats.latency_ns;
  std::sort(lat.begin(), lat.end());
  const long requests = static_cast<long>(lat.size()) + load.stats.timeouts;
  const long errors = load.stats.error_replies + load.stats.timeouts + load.stats.disconnects;
  const double ops = seconds > 0 ? static_cast<double>(lat.size() - load.stats.error_replies) / seconds : 0;
  auto share = [seconds](double cpu_seconds) { return seconds > 0 ? cpu_seconds / seconds : 0; };
  auto us_per_op = [ops, seconds](double cpu_seconds) { return ops > 0 ? 1e6 * cpu_seconds / (ops * seconds) : 0; };
  std::printf(
      "{\"label\":\"%s\",\"method\":\"%s\",\"qos\":%d,\"mqtt\":%d,\"devices\":%d,\"rate_target\":%.0f,"
      "\"requests\":%ld,\"seconds\":%.3f,\"ops_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
      "\"max_ms\":%.3f,\"max_gap_ms\":%.1f,\"errors\":%ld,\"error_replies\":%ld,\"timeouts\":%ld,\"disconnects\":%ld,"
      "\"client_cpu\":%.3f,\"broker_cpu\":%.3f,\"broker_us_per_op\":%.1f,\"broker_main_cpu\":%.3f,"
      "\"server_cpu\":%.3f,\"server_us_per_op\":%.1f,\"broker_wait\":%.3f,\"server_wait\":%.3f,\"completed_all\":%ld}"
      "\n",
      o.label.c_str(), o.method.c_str(), o.qos, o.mqtt, o.devices, o.rate, requests, seconds, ops, Percentile(lat, 0.5),
      Percentile(lat, 0.99), Percentile(lat, 0.999), Percentile(lat, 1.0),
      std::chrono::duration<double, std::milli>(load.stats.max_gap).count(), errors, load.stats.error_replies,
      load.stats.timeouts, load.stats.disconnects, share(cpu.self), share(cpu.brokers), us_per_op(cpu.brokers),
      share(cpu.broker_main), share(cpu.servers), us_per_op(cpu.servers), share(cpu.broker_wait),
      share(cpu.server_wait), load.stats.completed_all);
  std::fprintf(stderr,
               "%s %s qos%d x%d%s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %ld errors, "
               "generator %.0f%% of a core\n",
               o.label.empty() ? "load" : o.label.c_str(), o.method.c_str(), o.qos, o.devices,
               o.rate > 0 ? (" @" + std::to_string(static_cast<long>(o.rate)) + "/s").c_str() : "", ops,
               Percentile(lat, 0.5), Percentile(lat, 0.99), Percentile(lat, 0.999), errors, 100 * share(cpu.self));
}

}  // namespace

int main(int argc, char** argv) {
  Load load;
  load.options = ParseArgs(argc, argv);
  const Options& o = load.options;
  load.put_body = "{\"version\":0,\"data\":" + KilobyteData() + "}";
  if (o.method == "worst") {
    load.worst_bodies = WorstBodies();
    load.worst_config = WorstConfigBody(o.doc);
  }
  load.stats.latency_ns.reserve(1 << 20);
  mosquitto_lib_init();
  load.epoll_fd = epoll_create1(EPOLL_CLOEXEC);

  load.devices.resize(o.devices);
  for (int i = 0; i < o.devices; ++i) {
    Device& d = load.devices[i];
    d.load = &load;
    d.slot = i;
    d.id = i * o.id_step;
  }
  if (o.ids > 0) {
    load.phase = Phase::kMeasure;
    load.measure_start = load.stats.last_completion = Clock::now();
  }
  for (Device& d : load.devices) Connect(load, d);

  const auto duration = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  Clock::time_point last_housekeeping = Clock::now();
  CpuClocks cpu_at_start = o.ids > 0 ? CpuClocks::Read(o) : CpuClocks{};
  std::vector<epoll_event> events(256);
  while (load.phase != Phase::kDone) {
    Clock::time_point now = Clock::now();
    int timeout_ms = 100;
    if (!load.waiting.empty()) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(load.waiting.top().first - now).count();
      timeout_ms = static_cast<int>(std::clamp<long>(wait, 0, timeout_ms));
    }
    int n = epoll_wait(load.epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      Device& d = *static_cast<Device*>(events[i].data.ptr);
      if (d.mosq == nullptr) continue;
      int rc = MOSQ_ERR_SUCCESS;
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) rc = mosquitto_loop_read(d.mosq, 1);
      if (rc == MOSQ_ERR_SUCCESS && (events[i].events & EPOLLOUT)) rc = mosquitto_loop_write(d.mosq, 1);
      if (rc != MOSQ_ERR_SUCCESS) {
        Lose(load, d);
        continue;
      }
      load.touched.push_back(&d);
    }
    now = Clock::now();
    while (!load.waiting.empty() && load.waiting.top().first <= now) {
      Device& d = *load.waiting.top().second;
      load.waiting.pop();
      Next(d, now);
    }
    if (load.phase == Phase::kWarmup && now >= load.measure_start) {
      load.phase = Phase::kMeasure;
      load.stats.last_completion = now;
      cpu_at_start = CpuClocks::Read(o);
    }
    if (load.phase == Phase::kMeasure) {
      const bool enough = o.ids > 0        ? load.finished == o.devices
                          : o.requests > 0 ? static_cast<long>(load.stats.latency_ns.size()) >= o.requests
                                           : now - load.measure_start >= duration;
      if (enough) {
        load.phase = Phase::kDone;
        load.measure_end = now;
      }
    }
    if (now - last_housekeeping >= std::chrono::milliseconds(100)) {
      Housekeeping(load, now);
      last_housekeeping = now;
    }
    if (o.ids > 0) Rotate(load);
    Flush(load);
    if (load.lost == o.devices) {
      std::fprintf(stderr, "twins_load: every connection was lost\n");
      return 1;
    }
  }
  load.stats.max_gap = std::max(load.stats.max_gap, load.measure_end - load.stats.last_completion);
  Report(load, std::chrono::duration<double>(load.measure_end - load.measure_start).count(),
         CpuClocks::Read(o) - cpu_at_start);
  for (Device& d : load.devices) {
    if (d.mosq != nullptr) Disconnect(d);
  }
  mosquitto_lib_cleanup();
  return 0;
}
