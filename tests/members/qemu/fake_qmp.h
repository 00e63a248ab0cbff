// A fake QEMU monitor for tests: listens on a unix socket in a temporary
// directory and plays a script to the one client that connects. Each step
// either sends bytes as they are (split or garbled on purpose), waits for
// a command and answers it with the command's id, or closes.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace cmm::hv::testing {

struct QmpStep {
  enum Kind { kSend, kAnswer, kClose, kPause } kind = kSend;
  std::string text;  // kSend: the bytes
  // kAnswer: the command expected, and the reply built from its request.
  std::string command;
  std::function<std::string(const nlohmann::json& request)> reply;
  std::chrono::milliseconds pause{0};
};

inline QmpStep Send(std::string text) { return {QmpStep::kSend, std::move(text), "", {}, {}}; }
inline QmpStep Close() { return {QmpStep::kClose, "", "", {}, {}}; }
inline QmpStep Pause(std::chrono::milliseconds d) { return {QmpStep::kPause, "", "", {}, d}; }
inline QmpStep Answer(std::string command, std::function<std::string(const nlohmann::json&)> reply) {
  return {QmpStep::kAnswer, "", std::move(command), std::move(reply), {}};
}
// The reply {"return": RETURN, "id": <the request's id>}.
inline QmpStep Return(std::string command, nlohmann::json ret = nlohmann::json::object()) {
  return Answer(std::move(command), [ret](const nlohmann::json& req) {
    return nlohmann::json{{"return", ret}, {"id", req["id"]}}.dump() + "\r\n";
  });
}
// A reply whose return value is the text `ret` as it is (a lie, often).
inline QmpStep Lie(std::string command, std::string ret) {
  return Answer(std::move(command), [ret](const nlohmann::json& req) {
    return "{\"return\": " + ret + ", \"id\": " + req["id"].dump() + "}\r\n";
  });
}
std::string Greeting();
// The steps of an honest attach of a VM of `ram` bytes (greeting,
// capabilities, balloon, size, the balloon device found, stats asked
// for), then `then`.
inline std::vector<QmpStep> HonestAttach(uint64_t ram, std::vector<QmpStep> then = {}) {
  std::vector<QmpStep> s = {
      Send(Greeting()), Return("qmp_capabilities"), Return("query-balloon", {{"actual", ram}}),
      Return("query-memory-size-summary", {{"base-memory", ram}, {"plugged-memory", 0}}),
      Return("qom-list", nlohmann::json::array({{{"name", "balloon0"}, {"type", "child<virtio-balloon-pci>"}}})),
      Return("qom-set")};
  for (auto& step : then) s.push_back(std::move(step));
  return s;
}
inline std::string Greeting() {
  return R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}})"
         "\r\n";
}

class FakeQmp {
 public:
  FakeQmp(const std::string& path, std::vector<QmpStep> script) : path_(path) {
    listen_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    unlink(path.c_str());
    if (bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listen_, 1) != 0) return;
    thread_ = std::thread([this, script = std::move(script)] { Play(script); });
  }
  ~FakeQmp() {
    shutdown(listen_, SHUT_RDWR);
    if (conn_ >= 0) shutdown(conn_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (conn_ >= 0) close(conn_);
    close(listen_);
    unlink(path_.c_str());
  }
  // Commands the client sent, in order, once the script has played (at most 5 s).
  std::vector<nlohmann::json> requests() {
    WaitPlayed();
    std::lock_guard lock(mu_);
    return requests_;
  }
  // What went against the script ("" if nothing).
  std::string failure() {
    WaitPlayed();
    std::lock_guard lock(mu_);
    return failure_;
  }

 private:
  void WaitPlayed() {
    std::unique_lock lock(mu_);
    played_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return played_; });
  }
  void Play(const std::vector<QmpStep>& script) {
    PlayScript(script);
    {
      std::lock_guard lock(mu_);
      played_ = true;
    }
    played_cv_.notify_all();
    // Script done: hold the connection open until the test ends.
    char c;
    while (conn_ >= 0 && read(conn_, &c, 1) > 0) {
    }
  }
  void PlayScript(const std::vector<QmpStep>& script) {
    conn_ = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn_ < 0) return;
    std::string in;
    for (const QmpStep& s : script) {
      switch (s.kind) {
        case QmpStep::kSend:
          (void)!send(conn_, s.text.data(), s.text.size(), MSG_NOSIGNAL);
          break;
        case QmpStep::kPause:
          std::this_thread::sleep_for(s.pause);
          break;
        case QmpStep::kClose:
          shutdown(conn_, SHUT_RDWR);
          return;
        case QmpStep::kAnswer: {
          size_t nl;
          while ((nl = in.find('\n')) == std::string::npos) {
            char buf[4096];
            const ssize_t n = read(conn_, buf, sizeof buf);
            if (n <= 0) {
              std::lock_guard lock(mu_);
              failure_ = "client went away before " + s.command;
              return;
            }
            in.append(buf, static_cast<size_t>(n));
          }
          const auto req = nlohmann::json::parse(in.substr(0, nl), nullptr, false);
          in.erase(0, nl + 1);
          {
            std::lock_guard lock(mu_);
            requests_.push_back(req);
            if (req.is_discarded() || req.value("execute", "") != s.command) {
              failure_ = "expected " + s.command + ", got " + req.dump();
              return;
            }
          }
          const std::string out = s.reply(req);
          (void)!send(conn_, out.data(), out.size(), MSG_NOSIGNAL);
          break;
        }
      }
    }
  }

  std::string path_;
  int listen_ = -1;
  std::atomic<int> conn_{-1};
  std::thread thread_;
  std::mutex mu_;  // guards the three below
  std::condition_variable played_cv_;
  bool played_ = false;
  std::vector<nlohmann::json> requests_;
  std::string failure_;
};

}  // namespace cmm::hv::testing
