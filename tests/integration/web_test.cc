// Issue 13: the hypervisor's web page, served by `cmm hv --http`, loaded
// from a running hv with two members in a real headless browser
// (Debian's chromium); the rendered DOM shows each member's row with the
// numbers of /status. Bad requests get a clear status code and leave the
// hv serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "process.h"

namespace cmm::testing {
namespace {

constexpr uint64_t MiB = 1 << 20;

class Web : public ::testing::Test {
 protected:
  void SetUp() override { setenv("CMM_RUN_DIR", dir.path().c_str(), 1); }

  // Starts `cmm hv --http 127.0.0.1:0` and returns its port.
  int StartHv(std::vector<std::string> args) {
    args.insert(args.end(), {"--http", "127.0.0.1:0"});
    hv = std::make_unique<GuestProcess>(dir.path(), args, "hv", "hv");
    std::smatch m;
    std::string out;
    if (!WaitUntil([&] {
          out = hv->out();
          return std::regex_search(out, m, std::regex("watch the pool at http://127.0.0.1:([0-9]+)/ "));
        }, std::chrono::seconds(30))) {
      ADD_FAILURE() << hv->out() << hv->err();
      return 0;
    }
    return std::stoi(m[1]);
  }

  TempDir dir;
  std::unique_ptr<GuestProcess> hv;
};

// One request written by hand on a fresh connection; the answer's status
// line, or "" when the connection closed without one.
// The whole answer: status line, headers and the body of its Content-Length.
std::string RawAnswer(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    auto whole = [&reply] {
      const size_t end = reply.find("\r\n\r\n");
      if (end == std::string::npos) return false;
      std::smatch m;
      const std::string head = reply.substr(0, end);
      const size_t length = std::regex_search(head, m, std::regex("Content-Length: ([0-9]+)", std::regex::icase))
                                ? std::stoul(m[1]) : 0;
      return reply.size() >= end + 4 + length;
    };
    char buf[4096];
    ssize_t n;
    while (!whole() && (n = recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, n);
  }
  close(fd);
  return reply;
}

// The status line of the answer.
std::string RawRequest(int port, const std::string& request) {
  const std::string answer = RawAnswer(port, request);
  return answer.substr(0, answer.find("\r\n"));
}

// Runs the browser on `url`, bounded in time; its own process group, so
// that its helpers end with it. Returns its exit code (-1: killed).
int RunBrowser(const std::string& profile, std::vector<std::string> args, const std::string& out_path) {
  std::vector<std::string> argv{"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--no-first-run", "--user-data-dir=" + profile, "--virtual-time-budget=4000"};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open((out_path + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    auto v = Argv(argv);
    execvp(v[0], v.data());
    _exit(127);
  }
  setpgid(pid, pid);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid, SIGKILL);  // helpers it left behind, if any
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool HaveBrowser() { return system("command -v chromium >/dev/null 2>&1") == 0; }

// Each member row of the dumped DOM: name -> (data-key -> data-value).
std::map<std::string, std::map<std::string, std::string>> Rows(const std::string& dom) {
  std::map<std::string, std::map<std::string, std::string>> rows;
  const std::regex row(R"re(<tr data-member="([^"]+)">([\s\S]*?)</tr>)re");
  const std::regex cell(R"re(data-key="([a-z_]+)" data-value="([^"]*)")re");
  for (auto r = std::sregex_iterator(dom.begin(), dom.end(), row); r != std::sregex_iterator(); ++r) {
    const std::string body = (*r)[2];
    auto& cells = rows[(*r)[1]];
    for (auto c = std::sregex_iterator(body.begin(), body.end(), cell); c != std::sregex_iterator(); ++c) {
      cells[(*c)[1]] = (*c)[2];
    }
  }
  return rows;
}

// What a row shows of a member, from /status.
std::map<std::string, std::string> Expected(const nlohmann::json& p) {
  std::map<std::string, std::string> out;
  for (const char* key : {"kind", "ram_bytes", "used_bytes", "cache_bytes", "free_bytes", "loaned_bytes",
                          "target_loaned_bytes", "backing_bytes", "weight", "oom_events"}) {
    out[key] = p[key].is_string() ? p[key].get<std::string>() : p[key].dump();
  }
  return out;
}

std::map<std::string, std::map<std::string, std::string>> ExpectedRows(const nlohmann::json& status) {
  std::map<std::string, std::map<std::string, std::string>> rows;
  for (const auto& p : status["partitions"]) rows[p["name"]] = Expected(p);
  return rows;
}

TEST_F(Web, ThePageInAHeadlessBrowserShowsEachMembersRowWithTheNumbersOfStatus) {
  if (!HaveBrowser()) GTEST_SKIP() << "chromium is not installed (scripts/install-deps installs it)";
  const int port = StartHv({"--pool", "96M", "--period-ms", "200"});
  ASSERT_GT(port, 0);
  GuestProcess a(dir.path(), {"--name", "alpha", "--mem", "64M", "--param", "min_mem_mb=16", "--workload", "hog:8M"},
                 "guest", "alpha");
  GuestProcess b(dir.path(), {"--name", "beta", "--mem", "48M", "--param", "min_mem_mb=0", "--weight", "200"},
                 "guest", "beta");
  httplib::Client http("127.0.0.1", port);
  // Idle members settle: their numbers stop moving once each holds its
  // target. Reads seconds apart that agree are what the page shows.
  nlohmann::json status;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const auto first = http.Get("/status");
        if (!first || first->status != 200) return false;
        status = nlohmann::json::parse(first->body);
        if (status["partitions"].size() != 2) return false;
        for (const auto& p : status["partitions"]) {
          if (p["condition"] != "at target" && p["condition"] != "at its floor") return false;
        }
        // Partitions report their stats once a second: agree for longer.
        for (int i = 0; i < 2; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1200));
          const auto again = http.Get("/status");
          if (!again || ExpectedRows(nlohmann::json::parse(again->body)) != ExpectedRows(status)) return false;
        }
        return true;
      },
      std::chrono::seconds(30)))
      << status.dump(1);

  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  const std::string dom_path = dir.path() + "/dom.html";
  ASSERT_EQ(RunBrowser(dir.path() + "/profile", {"--dump-dom", url}, dom_path), 0) << Slurp(dom_path + ".err");
  const std::string dom = Slurp(dom_path);
  const auto after = http.Get("/status");
  ASSERT_TRUE(after);
  const auto expected = ExpectedRows(nlohmann::json::parse(after->body));
  ASSERT_EQ(expected, ExpectedRows(status)) << "the members moved while the browser read the page";

  const auto rows = Rows(dom);
  ASSERT_EQ(rows.size(), 2U) << dom;
  for (const auto& [name, cells] : expected) {
    ASSERT_TRUE(rows.contains(name)) << name << " has no row:\n" << dom;
    for (const auto& [key, value] : cells) {
      EXPECT_EQ(rows.at(name).count(key) ? rows.at(name).at(key) : "(no cell)", value) << name << " " << key;
    }
  }
  // Sizes read as a person reads them, the pool gauge from the same numbers.
  EXPECT_NE(dom.find(">64 MiB<"), std::string::npos) << "alpha's RAM";
  EXPECT_NE(dom.find(R"(data-pool=")" + std::to_string(96 * MiB) + "\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("2 partitions and 0 VMs"), std::string::npos);
  EXPECT_NE(dom.find("data-kind=\"joined\" data-member=\"alpha\""), std::string::npos) << "the join is an event";
  EXPECT_NE(dom.find("live, updated"), std::string::npos) << "the page reached /live";

  // Screenshots at 1280x800, phone width and dark, kept as build artifacts.
  std::filesystem::create_directories(CMM_ARTIFACTS_DIR);
  for (const auto& [file, extra] : std::vector<std::pair<std::string, std::string>>{
           {"hv-page.png", "--window-size=1280,800"},
           {"hv-page-phone.png", "--window-size=390,844"},
           {"hv-page-dark.png", "--force-dark-mode"}}) {
    const std::string shot = std::string(CMM_ARTIFACTS_DIR) + "/" + file;
    std::filesystem::remove(shot);
    std::vector<std::string> args{"--hide-scrollbars", "--screenshot=" + shot, extra, url};
    if (extra == "--force-dark-mode") args.insert(args.begin(), "--window-size=1280,800");
    ASSERT_EQ(RunBrowser(dir.path() + "/profile", args, dir.path() + "/shot.out"), 0) << Slurp(dir.path() + "/shot.out.err");
    const std::string png = Slurp(shot);
    ASSERT_GT(png.size(), 10000U) << shot;
    EXPECT_EQ(png.substr(1, 3), "PNG");
  }
}

TEST_F(Web, ThePageIsSelfContainedAndUnder100KB) {
  const int port = StartHv({"--pool", "32M"});
  ASSERT_GT(port, 0);
  httplib::Client http("127.0.0.1", port);
  const auto page = http.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_LT(page->body.size(), 100U * 1024);
  EXPECT_NE(page->body.find("<table"), std::string::npos);
  // Nothing from elsewhere: no address in the page, and the browser is told so.
  EXPECT_EQ(page->body.find("http://"), std::string::npos);
  EXPECT_EQ(page->body.find("https://"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  // The page's data: the same status, the pool's history and its events.
  const auto live = http.Get("/live?since=0&after=0");
  ASSERT_TRUE(live);
  const auto j = nlohmann::json::parse(live->body);
  EXPECT_EQ(j["status"]["pool_bytes"], 32 * MiB);
  EXPECT_TRUE(j["samples"]["t"].is_array());
  EXPECT_TRUE(j["events"].is_array());
}

TEST_F(Web, BadRequestsGetAClearStatusCodeAndLeaveTheHvServing) {
  const int port = StartHv({"--pool", "32M"});
  ASSERT_GT(port, 0);
  httplib::Client http("127.0.0.1", port);
  const auto missing = http.Get("/nothing/here");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("served: /, /live, /metrics, /status"), std::string::npos) << missing->body;
  const auto post = http.Post("/status", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  EXPECT_EQ(http.Get("/live?since=yesterday")->status, 400);

  // A header of 64 KiB and a path of 16 KiB: refused, not served.
  const std::string huge_header = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  // Every refusal carries a one-line body that says why, even those
  // httplib makes by itself.
  const std::regex says_why("\r\n\r\n4[0-9][0-9] [A-Za-z][^\n]+\n$");
  const std::string header_answer = RawAnswer(port, huge_header);
  EXPECT_TRUE(std::regex_search(header_answer, std::regex("^HTTP/1.1 4[0-9][0-9] "))) << header_answer;
  EXPECT_TRUE(std::regex_search(header_answer, says_why)) << header_answer;
  const std::string long_path = "GET /" + std::string(16 * 1024, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string path_answer = RawAnswer(port, long_path);
  EXPECT_TRUE(std::regex_search(path_answer, std::regex("^HTTP/1.1 414 "))) << path_answer;
  EXPECT_TRUE(std::regex_search(path_answer, says_why)) << path_answer;
  EXPECT_NE(path_answer.find("414 URI too long"), std::string::npos) << path_answer;
  const std::string nonsense = RawAnswer(port, "NONSENSE\r\n\r\n");
  EXPECT_EQ(nonsense.substr(0, 12), "HTTP/1.1 400");
  EXPECT_TRUE(std::regex_search(nonsense, says_why)) << nonsense;
  EXPECT_NE(http.Get("/live?since=yesterday")->body.find("400 since"), std::string::npos);

  // Many connections that say nothing: past the bound the next one is told
  // to come back (503), and once they close the hv serves again.
  std::vector<int> idle;
  for (int i = 0; i < 70; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    idle.push_back(fd);
  }
  std::string busy;
  ASSERT_TRUE(WaitUntil([&] {
    busy = RawRequest(port, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    return busy.starts_with("HTTP/1.1 503");
  }, std::chrono::seconds(30))) << busy;
  for (int fd : idle) close(fd);
  ASSERT_TRUE(WaitUntil([&] {
    const auto ok = http.Get("/status");
    return ok && ok->status == 200;
  }));
  EXPECT_TRUE(hv->out().find("watch the pool") != std::string::npos);
}

}  // namespace
}  // namespace cmm::testing
