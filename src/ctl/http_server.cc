#include "ctl/http_server.h"

#include <sys/socket.h>

#include <charconv>
#include <chrono>
#include <deque>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "core/mutex.h"

namespace cmm::ctl {

namespace {

constexpr std::string_view kLoopback = "127.0.0.1";

// Set on the threads that only turn connections away.
thread_local bool t_turning_away = false;

// httplib's own pool queues every connection without bound; this one
// serves `limits.connections` at a time and hands the rest to a thread
// that answers them 503 at once, so a flood of clients costs them a
// retry and costs the others nothing.
class BoundedQueue : public httplib::TaskQueue {
 public:
  explicit BoundedQueue(const HttpLimits& limits) : limit_(limits.connections), max_refusers_(limits.connections) {
    for (size_t i = 0; i < limits.workers; ++i) threads_.emplace_back([this] { Work(false); });
  }
  ~BoundedQueue() override = default;

  void enqueue(std::function<void()> fn) override {
    {
      MutexLock lock(mu_);
      if (open_ >= limit_) {
        refused_.push_back(std::move(fn));
        // A refusal still reads the request first: one client that says
        // nothing must not hold up the next one's 503, so each waits on a
        // thread of its own, up to a bound.
        if (refusers_waiting_ == 0 && refusers_ < max_refusers_) {
          ++refusers_;
          threads_.emplace_back([this] { Work(true); });
        }
      } else {
        ++open_;
        jobs_.push_back(std::move(fn));
      }
    }
    cv_.NotifyAll();
  }

  void shutdown() override {
    std::vector<std::thread> threads;
    {
      MutexLock lock(mu_);
      stop_ = true;
      threads.swap(threads_);
    }
    cv_.NotifyAll();
    for (auto& t : threads) t.join();
  }

 private:
  void Work(bool turning_away) {
    t_turning_away = turning_away;
    for (;;) {
      std::function<void()> fn;
      {
        MutexLock lock(mu_);
        auto& queue = turning_away ? refused_ : jobs_;
        if (turning_away) ++refusers_waiting_;
        while (!stop_ && queue.empty()) cv_.Wait(lock);
        if (turning_away) --refusers_waiting_;
        if (queue.empty()) return;  // stopping, and nothing left to close
        fn = std::move(queue.front());
        queue.pop_front();
      }
      fn();  // serves the connection and closes its socket
      if (!turning_away) {
        MutexLock lock(mu_);
        --open_;
      }
    }
  }

  const size_t limit_;
  Mutex mu_;  // guards what follows
  CondVar cv_;
  std::deque<std::function<void()>> jobs_;
  std::deque<std::function<void()>> refused_;
  size_t open_ = 0;
  const size_t max_refusers_;
  size_t refusers_ = 0;
  size_t refusers_waiting_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

std::string Paths(const HttpRoutes& routes) {
  std::string out;
  for (const auto& [path, _] : routes) out += (out.empty() ? "" : ", ") + path;
  return out;
}

}  // namespace

tl::expected<std::unique_ptr<HttpServer>, std::string> HttpServer::Start(const std::string& address,
                                                                        HttpRoutes routes, HttpLimits limits) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const char* first = address.data() + colon + 1;
    const char* last = address.data() + address.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec != std::errc() || end != last || first == last || port < 0 || port > 65535) port = -1;
  }
  if (colon == std::string::npos || port < 0) {
    return tl::unexpected(fmt::format("--http {}: expected 127.0.0.1:PORT", address));
  }
  if (std::string_view(address).substr(0, colon) != kLoopback) {
    return tl::unexpected(fmt::format("--http {}: only 127.0.0.1 is served; metrics stay on this host", address));
  }
  auto s = std::unique_ptr<HttpServer>(new HttpServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *s->server_;
  server.new_task_queue = [limits] { return new BoundedQueue(limits); };
  server.set_read_timeout(limits.read_timeout_s, 0);
  server.set_keep_alive_timeout(limits.read_timeout_s);
  // Every answer is decided here, before httplib's routing: refusals carry
  // a line that says what was wrong.
  server.set_pre_routing_handler([routes = std::move(routes)](const httplib::Request& req, httplib::Response& res) {
    auto refuse = [&res](int status, std::string text) {
      res.status = status;
      res.set_content(std::move(text), "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    };
    if (t_turning_away) {
      res.set_header("Retry-After", "1");
      return refuse(503, "503 busy: too many connections are open to this hypervisor; try again in a second\n");
    }
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      return refuse(405, fmt::format("405 {} is not served here: the endpoint is read-only (GET)\n", req.method));
    }
    const auto route = routes.find(req.path);
    if (route == routes.end()) {
      return refuse(404, fmt::format("404 nothing at {}; served: {}\n", req.path, Paths(routes)));
    }
    HttpQuery query;
    for (const auto& [k, v] : req.params) query[k] = v;
    HttpBody b = route->second(query);
    res.status = b.status;
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    // The page is self-contained: nothing may be loaded from elsewhere.
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                   "img-src data:");
    res.set_content(std::move(b.text), b.content_type);
    return httplib::Server::HandlerResponse::Handled;
  });
  // What httplib refuses by itself (a request it cannot parse: 400, a URI
  // too long: 414, ...) comes with an empty body: give it its line.
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string why = "the request was refused";
    if (res.status == 400) why = "bad request: not an HTTP request line and headers this server can read";
    if (res.status == 413) why = "payload too large: this endpoint takes no request body";
    if (res.status == 414) why = "URI too long: the path and query may be at most 8 KiB";
    if (res.status == 431) why = "request header fields too large";
    res.set_content(fmt::format("{} {}\n", res.status, why), "text/plain; charset=utf-8");
    return httplib::Server::HandlerResponse::Handled;
  }));
  // httplib listens with a backlog of 5: a burst of clients would see
  // their connections dropped by the kernel before any answer. The socket
  // is caught here and listened on again with the system's backlog.
  int listening = -1;
  server.set_socket_options([&listening](int sock) {
    const int on = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    listening = sock;
  });
  s->port_ = port == 0 ? server.bind_to_any_port(std::string(kLoopback))
                       : (server.bind_to_port(std::string(kLoopback), port) ? port : -1);
  if (s->port_ < 0) return tl::unexpected(fmt::format("--http {}: cannot listen there (port in use?)", address));
  if (listening >= 0) (void)::listen(listening, SOMAXCONN);
  s->thread_ = std::thread([raw = s->server_.get()] { raw->listen_after_bind(); });
  // stop() only reaches a server that is running: wait for it to be.
  for (int i = 0; i < 1000 && !server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return s;
}

HttpServer::~HttpServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace cmm::ctl
