// CORS as a browser sees it: a real headless Chromium (Debian's `chromium`) loads a page from a
// small HTTP server run by the test, the page calls the broker's REST API with fetch() (token
// headers, If-Match from the ETag it read) and posts what it saw back to that server. The page's
// origin is listed in plugin_opt_rest_cors_origins; the same page from another origin must be
// stopped by the browser.
#include <civetweb.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "tests/support/broker.hpp"

extern char** environ;

namespace twins::test {
namespace {

constexpr char kToken[] = "3e9a1c7b-5d2f-4b8e-a6c1-9f0d7e2b4a5c";

// Serves GET /page and takes POST /result, on 127.0.0.1 and a port of its own (its own origin).
class PageServer {
 public:
  explicit PageServer(std::string page) : page_(std::move(page)) {
    mg_callbacks callbacks;
    std::memset(&callbacks, 0, sizeof callbacks);
    callbacks.begin_request = &PageServer::Handle;
    const char* options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "2", nullptr};
    context_ = mg_start(&callbacks, this, options);
    mg_server_port port;
    if (context_ != nullptr && mg_get_server_ports(context_, 1, &port) == 1) port_ = port.port;
  }
  ~PageServer() {
    if (context_ != nullptr) mg_stop(context_);
  }
  int port() const { return port_; }

  // What the page posted, or nullopt after `timeout`.
  std::optional<std::string> WaitForResult(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!posted_.wait_for(lock, timeout, [this] { return result_.has_value(); })) return std::nullopt;
    return result_;
  }

 private:
  static int Handle(mg_connection* conn) {
    auto* self = static_cast<PageServer*>(mg_get_user_data(mg_get_context(conn)));
    const mg_request_info* info = mg_get_request_info(conn);
    const std::string uri = info->local_uri ? info->local_uri : "";
    if (std::strcmp(info->request_method, "POST") == 0 && uri == "/result") {
      std::string body;
      char buffer[4096];
      for (int n; (n = mg_read(conn, buffer, sizeof buffer)) > 0;) body.append(buffer, n);
      {
        std::lock_guard<std::mutex> lock(self->mutex_);
        self->result_ = body;
      }
      self->posted_.notify_all();
      mg_printf(conn, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
      return 204;
    }
    const std::string& page = uri == "/page" ? self->page_ : std::string();
    mg_printf(conn, "HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
              page.empty() ? "404 Not Found" : "200 OK", page.size());
    mg_write(conn, page.data(), page.size());
    return 200;
  }

  std::string page_;
  mg_context* context_ = nullptr;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable posted_;
  std::optional<std::string> result_;
};

// A headless Chromium on `url`, in a process group of its own, killed with it at the end.
class Chromium {
 public:
  Chromium(const std::string& url, const std::string& profile_dir) {
    const std::string profile = "--user-data-dir=" + profile_dir;
    const char* argv[] = {"chromium",
                          "--headless=new",
                          "--no-sandbox",
                          "--disable-gpu",
                          "--no-first-run",
                          "--disable-background-networking",
                          "--disable-component-update",
                          "--disable-sync",
                          "--no-default-browser-check",
                          profile.c_str(),
                          url.c_str(),
                          nullptr};
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    // Its chatter (no D-Bus here, no GPU) goes to a file beside its profile.
    const std::string output = profile_dir + ".out";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawnp(&pid_, "chromium", &actions, &attributes, const_cast<char**>(argv), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
  ~Chromium() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

std::string Page(int rest_port) {
  const std::string token = kToken;
  return R"(<!doctype html><html><body><script>
(async () => {
  const doc = "http://127.0.0.1:)" +
         std::to_string(rest_port) + R"(/iot/v1/regions/fr-par/twins/web1/documents/d";
  const out = {};
  try {
    let r = await fetch(doc, {method: "PUT", body: JSON.stringify({data: {a: 1}}),
                              headers: {"X-Auth-Token": ")" +
         token + R"(", "Content-Type": "application/json"}});
    out.put = r.status;
    out.etag = r.headers.get("ETag");
    r = await fetch(doc, {method: "PATCH", body: JSON.stringify({data: {b: 2}}),
                          headers: {"Authorization": "Bearer )" +
         token + R"(", "Content-Type": "application/json",
                                    "If-Match": out.etag}});
    out.patch = r.status;
    out.patch_etag = r.headers.get("ETag");
    out.body = await r.json();
    r = await fetch(doc, {method: "DELETE", headers: {"X-Auth-Token": ")" +
         token + R"(", "If-Match": out.etag}});
    out.stale_delete = r.status;
  } catch (e) {
    out.error = String(e);
  }
  await fetch("/result", {method: "POST", body: JSON.stringify(out)});
})();
</script></body></html>)";
}

class RestCorsBrowserTest : public testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v chromium >/dev/null") != 0) GTEST_SKIP() << "needs Debian's chromium";
    rest_port_ = FreePort();
    listed_ = std::make_unique<PageServer>(Page(rest_port_));
    other_ = std::make_unique<PageServer>(Page(rest_port_));
    ASSERT_GT(listed_->port(), 0);
    ASSERT_GT(other_->port(), 0);
    broker_ = std::make_unique<Broker>(
        "plugin_opt_rest_listen 127.0.0.1:" + std::to_string(rest_port_) + "\nplugin_opt_rest_token " + kToken +
        "\nplugin_opt_rest_cors_origins http://127.0.0.1:" + std::to_string(listed_->port()) + "\n");
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }
  void TearDown() override {
    if (!broker_) return;
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }

  std::optional<std::string> Visit(PageServer& server, const std::string& profile) {
    Chromium browser("http://127.0.0.1:" + std::to_string(server.port()) + "/page", broker_->dir().sub(profile));
    EXPECT_TRUE(browser.started());
    return server.WaitForResult(std::chrono::seconds(60));
  }

  int rest_port_ = 0;
  std::unique_ptr<PageServer> listed_;
  std::unique_ptr<PageServer> other_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(RestCorsBrowserTest, ListedOriginReadsETagAndWritesWithIfMatchOtherOriginIsStopped) {
  std::optional<std::string> seen = Visit(*listed_, "chromium-listed");
  ASSERT_TRUE(seen.has_value()) << "the page never posted its result\n" << broker_->log();
  EXPECT_EQ(*seen, R"({"put":200,"etag":"\"1\"","patch":200,"patch_etag":"\"2\"",)"
                   R"("body":{"twin_id":"web1","document_name":"d","version":2,"data":{"a":1,"b":2}},)"
                   R"("stale_delete":412})");

  seen = Visit(*other_, "chromium-other");
  ASSERT_TRUE(seen.has_value()) << "the page never posted its result\n" << broker_->log();
  EXPECT_EQ(*seen, R"({"error":"TypeError: Failed to fetch"})");
}

}  // namespace
}  // namespace twins::test
