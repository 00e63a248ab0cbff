// On a terminal: a full-screen view redrawn each interval and at once on a
// key (sort keys, q to quit; Ctrl-C too), the screen given back as it was.
// Otherwise: one line per interval, for logs.
#include "cli/hv_watch.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <deque>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/hv_call.h"
#include "hv/watch_view.h"

namespace cmm::cli {

namespace {

volatile sig_atomic_t g_stop = 0;

// "16:50:01", local time.
std::string Clock(std::time_t t = std::time(nullptr)) {
  std::tm tm{};
  localtime_r(&t, &tm);
  return fmt::format("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int Width() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

// Keys arrive one by one without echo while the view runs; everything is
// put back when it ends, however it ends.
class Screen {
 public:
  Screen() {
    if (tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);  // ISIG stays: Ctrl-C is SIGINT
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      keys_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    fmt::print("\x1b[?1049h\x1b[?25l");  // the alternate screen, no cursor
    std::fflush(stdout);
  }
  ~Screen() {
    if (keys_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    fmt::print("\x1b[?25h\x1b[?1049l");
    std::fflush(stdout);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;
  bool keys() const { return keys_; }

 private:
  termios saved_{};
  bool keys_ = false;
};

nlohmann::json Live(const HvWatchOptions& o, uint64_t after) {
  // Samples are not drawn here: ask for none (since = far future).
  return CallHypervisor(o.control, {{"op", "live"}, {"since", INT64_MAX}, {"after", after}}, "cmm hv watch");
}

}  // namespace

int HvWatch(const HvWatchOptions& o) {
  const hv::SortKey* start = hv::FindSortLabel(o.sort);
  if (start == nullptr) {
    std::string labels;
    for (const auto& k : hv::SortKeys()) labels += std::string(labels.empty() ? "" : ", ") + k.label;
    throw UserError(fmt::format("--sort {}: sort by one of {}", o.sort, labels), kExitUsage);
  }
  hv::WatchSort sort = hv::SortBy(*start);
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: a wait ends at once
  sigaction(SIGTERM, &sa, nullptr);

  const bool tty = isatty(STDOUT_FILENO) != 0;
  std::optional<Screen> screen;
  if (tty) screen.emplace();
  std::deque<std::string> events;
  uint64_t after = 0;
  for (int i = 0; !g_stop && (o.count == 0 || i < o.count); ++i) {
    const nlohmann::json live = Live(o, after);
    for (const auto& e : live["events"]) {
      after = std::max(after, e.value("seq", uint64_t{0}));
      events.push_back(Clock(e.value("t", int64_t{0}) / 1000) + " " + e.value("text", ""));
      if (events.size() > 5) events.pop_front();
    }
    if (!tty) {
      fmt::print("{}\n", hv::WatchLine(live["status"].get<hv::HvStatus>(), Clock()));
      std::fflush(stdout);
    }
    if (o.count != 0 && i + 1 == o.count && !tty) break;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.interval_s);
    bool redraw = tty;
    while (!g_stop) {
      if (redraw) {
        const std::vector<std::string> shown(events.begin(), events.end());
        fmt::print("\x1b[H\x1b[2J{}", hv::WatchFrame(live["status"].get<hv::HvStatus>(), shown, sort, Width(), Clock()));
        std::fflush(stdout);
        redraw = false;
      }
      if (o.count != 0 && i + 1 == o.count) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd in{STDIN_FILENO, POLLIN, 0};
      const int ready = screen && screen->keys() ? poll(&in, 1, static_cast<int>(left.count()))
                                                 : poll(nullptr, 0, static_cast<int>(left.count()));
      if (ready <= 0 || !(in.revents & POLLIN)) continue;
      char key = 0;
      if (read(STDIN_FILENO, &key, 1) != 1) continue;
      if (key == 'q' || key == 'Q') g_stop = 1;
      if (const hv::SortKey* k = hv::FindSortKey(key)) {
        if (sort.key == k->field) {
          sort.largest_first = !sort.largest_first;
        } else {
          sort = hv::SortBy(*k);
        }
        redraw = true;
      }
    }
  }
  return 0;
}

}  // namespace cmm::cli
