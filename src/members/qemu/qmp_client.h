// A client of QEMU's machine protocol (QMP) on a unix socket: the greeting,
// capabilities negotiation, commands with ids and their replies, and the
// asynchronous events that arrive between them. Messages are framed by
// QmpStream and decoded by DecodeMessage, with their bounds and checks. A
// command's error reply is an error of that command only; anything else
// that goes wrong (garbage, a message too large or too deep, a flood of
// events, a closed socket, a timeout) loses the connection, and every later
// call fails at once. Nothing QEMU sends makes it throw.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "members/qemu/qmp_stream.h"

namespace cmm::hv {

struct QmpError {
  bool lost = false;   // the connection is gone; otherwise QEMU refused the command
  std::string klass;   // QMP's error class ("GenericError", "CommandNotFound", ...), "" when lost
  std::string message;
};

// An event as QEMU sent it: its name and its data (an object, or null).
struct QmpEvent {
  std::string name;
  nlohmann::json data;
};

class QmpClient {
 public:
  // At most this many events are kept between two TakeEvents (the oldest
  // go first), and a peer that sends more than kMaxEventsPerSecond in one
  // second is flooding: the connection is lost.
  static constexpr size_t kMaxKeptEvents = 256;
  static constexpr int kMaxEventsPerSecond = 1000;

  // Connects, reads the greeting and enters command mode.
  static tl::expected<std::unique_ptr<QmpClient>, std::string> Connect(
      const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // The same on a stream already connected to a monitor (`fd` is owned from
  // then on); `where` names it in errors.
  static tl::expected<std::unique_ptr<QmpClient>, std::string> Open(int fd, const std::string& where,
                                                                    std::chrono::milliseconds timeout);
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Sends the command and waits for its reply; events read meanwhile are
  // kept for TakeEvents. Returns the reply's "return" value.
  tl::expected<nlohmann::json, QmpError> Execute(const std::string& command,
                                                 const nlohmann::json& arguments = nlohmann::json::object(),
                                                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads what has arrived, waiting at most `timeout` for the first byte;
  // events are kept. An error means the connection is lost.
  tl::expected<void, QmpError> ReadAvailable(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  std::deque<QmpEvent> TakeEvents();

  int fd() const { return fd_; }
  bool lost() const { return !lost_reason_.empty(); }
  const std::string& lost_reason() const { return lost_reason_; }
  // The QEMU version from the greeting, e.g. "7.2.0".
  const std::string& version() const { return version_; }

 private:
  explicit QmpClient(int fd) : fd_(fd) {}
  QmpError Lose(std::string why);
  // Waits until `deadline` for one whole message and parses it.
  tl::expected<nlohmann::json, QmpError> Next(std::chrono::steady_clock::time_point deadline);
  // One read into the buffer; false when nothing came before the deadline.
  tl::expected<bool, QmpError> Fill(std::chrono::steady_clock::time_point deadline);
  // A whole message from the stream, taken out and parsed; nullopt if none yet.
  tl::expected<std::optional<nlohmann::json>, QmpError> TakeMessage();
  // Keeps an event, within the bounds above; an error: the peer floods.
  tl::expected<void, QmpError> Keep(QmpEvent event);

  int fd_;
  QmpStream stream_;
  std::deque<QmpEvent> events_;
  std::chrono::steady_clock::time_point events_second_{};
  int events_this_second_ = 0;
  uint64_t next_id_ = 1;
  std::string version_;
  std::string lost_reason_;
};

}  // namespace cmm::hv
