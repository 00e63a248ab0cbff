// A small HTTP endpoint (cpp-httplib) for the web page, metrics and status:
// GET only, bound to 127.0.0.1 only, each path answered by a function
// called on each request. A misbehaving client gets a clear status code
// and leaves the others served: an unknown path 404, another method 405,
// an overlong request line or header 414/431-class refusals from the
// parser, and, past a bound of open connections, 503.
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
  int status = 200;
};
// A request's query parameters (the last of a repeated one).
using HttpQuery = std::map<std::string, std::string>;
using HttpRoutes = std::map<std::string, std::function<HttpBody(const HttpQuery&)>>;

struct HttpLimits {
  size_t workers = 8;       // requests served at once
  size_t connections = 64;  // open at once, beyond: 503
  int read_timeout_s = 5;   // a client that sends nothing is dropped after this
};

class HttpServer {
 public:
  // `address` is 127.0.0.1:PORT (PORT 0 picks a free one). Anything else
  // is refused: the endpoint is for the host's own browsers and scrapers.
  static tl::expected<std::unique_ptr<HttpServer>, std::string> Start(const std::string& address, HttpRoutes routes,
                                                                     HttpLimits limits = {});
  ~HttpServer();
  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace cmm::ctl
