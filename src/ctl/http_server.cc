#include "ctl/http_server.h"

#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <httplib.h>

namespace cmm::ctl {

namespace {
constexpr std::string_view kLoopback = "127.0.0.1";
}

tl::expected<std::unique_ptr<HttpServer>, std::string> HttpServer::Start(const std::string& address,
                                                                        HttpRoutes routes) {
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
  for (auto& [path, body] : routes) {
    s->server_->Get(path, [body = std::move(body)](const httplib::Request&, httplib::Response& res) {
      HttpBody b = body();
      res.set_content(b.text, b.content_type);
    });
  }
  s->port_ = port == 0 ? s->server_->bind_to_any_port(std::string(kLoopback))
                       : (s->server_->bind_to_port(std::string(kLoopback), port) ? port : -1);
  if (s->port_ < 0) return tl::unexpected(fmt::format("--http {}: cannot listen there (port in use?)", address));
  s->thread_ = std::thread([raw = s->server_.get()] { raw->listen_after_bind(); });
  // stop() only reaches a server that is running: wait for it to be.
  for (int i = 0; i < 1000 && !s->server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return s;
}

HttpServer::~HttpServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace cmm::ctl
