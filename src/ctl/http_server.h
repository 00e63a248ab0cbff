// A small HTTP endpoint (cpp-httplib) for metrics and status: GET only,
// bound to 127.0.0.1 only, each path answered by a function called on
// each request.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <tl/expected.hpp>

namespace httplib {
class Server;
}

namespace cmm::ctl {

struct HttpBody {
  std::string content_type;
  std::string text;
};
using HttpRoutes = std::map<std::string, std::function<HttpBody()>>;

class HttpServer {
 public:
  // `address` is 127.0.0.1:PORT (PORT 0 picks a free one). Anything else
  // is refused: the endpoint is for the host's own scrapers.
  static tl::expected<std::unique_ptr<HttpServer>, std::string> Start(const std::string& address, HttpRoutes routes);
  ~HttpServer();
  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace cmm::ctl
