// A control endpoint: a unix socket served by one thread. Each connection
// carries one request, a JSON line, and its answer. With more than one
// worker, each connection is answered on a thread of its own (at most that
// many at once), so a request that waits on a slow peer (a VM's attach
// handshake) never holds up another; the handler must then be thread-safe.
// A handler that throws answers EIO with the reason; the server goes on.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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
  static tl::expected<std::unique_ptr<Server>, std::string> Start(const std::string& path, Handler handler,
                                                                  size_t workers = 1);
  ~Server();  // stops serving and removes the socket
  const std::string& path() const { return path_; }

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  Server(std::string path, Fd listener, Fd wake, Handler handler, size_t workers);
  void Run();
  void Serve(Fd conn);
  // Joins the workers that have answered; with `all`, every one.
  void Join(bool all);

  std::string path_;
  Fd listener_;
  Fd wake_;  // eventfd: written to stop the thread
  Handler handler_;
  const size_t max_workers_;
  std::vector<Worker> workers_;  // the serving thread's, then the destructor's
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
