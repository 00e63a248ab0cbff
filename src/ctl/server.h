// A control endpoint: a unix socket served by one thread. Each connection
// carries requests, one JSON line each, answered in order.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "core/error.h"
#include "ctl/unix_socket.h"

namespace cmm::ctl {

struct Peer {
  uid_t uid;
  bool admin() const { return uid == 0; }
};

using Handler = std::function<nlohmann::json(const nlohmann::json& request, const Peer& peer)>;

class Server {
 public:
  // Listens at `path`. A stale socket of a dead process is replaced; a live
  // one is an error.
  static tl::expected<std::unique_ptr<Server>, std::string> Start(const std::string& path, Handler handler);
  ~Server();  // stops serving and removes the socket
  const std::string& path() const { return path_; }

 private:
  Server(std::string path, Fd listener, Fd wake, Handler handler);
  void Run();
  void Serve(Fd conn);

  std::string path_;
  Fd listener_;
  Fd wake_;  // eventfd: written to stop the thread
  Handler handler_;
  std::thread thread_;
};

// "EINVAL" for EINVAL; "errno N" for a number without a name.
std::string ErrnoName(int err);
// {"ok":false,"errno":N,"error":"EINVAL","message":...}
nlohmann::json ErrorReply(int err, const std::string& message);
// The same for an Error: its code as errno.
nlohmann::json ErrorReply(const Error& e);
nlohmann::json OkReply();

}  // namespace cmm::ctl
