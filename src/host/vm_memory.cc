#include "host/vm_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace cmm::hv {

namespace {

// "7f0000000000-7f0020000000 rw-s ..." → the mapping's size.
bool MappingSize(std::string_view line, uint64_t& size) {
  const size_t dash = line.find('-');
  const size_t space = line.find(' ');
  if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) return false;
  uint64_t lo = 0, hi = 0;
  if (std::from_chars(line.data(), line.data() + dash, lo, 16).ec != std::errc()) return false;
  if (std::from_chars(line.data() + dash + 1, line.data() + space, hi, 16).ec != std::errc()) return false;
  size = hi - lo;
  return hi > lo;
}

}  // namespace

SmapsTotals ParseSmaps(std::string_view text, uint64_t ram_bytes) {
  SmapsTotals t;
  bool in_guest = false;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    uint64_t size = 0;
    if (MappingSize(line, size)) {
      in_guest = !t.guest_found && size == ram_bytes;
      t.guest_found = t.guest_found || in_guest;
      continue;
    }
    if (line.starts_with("Rss:")) {
      uint64_t kb = 0;
      const std::string_view v = line.substr(4);
      const size_t digit = v.find_first_of("0123456789");
      if (digit == std::string_view::npos) continue;
      std::from_chars(v.data() + digit, v.data() + v.size(), kb);
      t.total_resident += kb * 1024;
      if (in_guest) t.guest_resident += kb * 1024;
    }
  }
  return t;
}

Result<int> OpenGuestMemfd(pid_t pid, uint64_t ram_bytes) {
  const std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return Fail(ErrorCode::kIo, fmt::format("{}: {}", dir, std::strerror(errno)));
  std::string why = fmt::format("no memfd of {} bytes among QEMU's descriptors", ram_bytes);
  int found = -1;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string link = dir + "/" + e->d_name;
    char target[256];
    const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (std::strncmp(target, "/memfd:", 7) != 0) continue;
    const int fd = open(link.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      why = fmt::format("cannot open {} ({}): {}", link, target, std::strerror(errno));
      continue;
    }
    struct stat st {};
    if (fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == ram_bytes) {
      found = fd;
      break;
    }
    close(fd);
  }
  closedir(d);
  if (found < 0) return Fail(ErrorCode::kNotFound, why);
  return found;
}

Result<SmapsTotals> ReadSmaps(pid_t pid, uint64_t ram_bytes) {
  const std::string path = fmt::format("/proc/{}/smaps", pid);
  std::ifstream in(path);
  if (!in) return Fail(ErrorCode::kIo, fmt::format("cannot read {}", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseSmaps(text.str(), ram_bytes);
}

StatusRss ParseStatusRss(std::string_view text) {
  StatusRss r;
  auto kb = [&](std::string_view key) -> uint64_t {
    const size_t at = text.find(key);
    if (at == std::string_view::npos) return 0;
    const size_t digit = text.find_first_of("0123456789", at + key.size());
    if (digit == std::string_view::npos) return 0;
    uint64_t v = 0;
    std::from_chars(text.data() + digit, text.data() + text.size(), v);
    return v * 1024;
  };
  r.rss = kb("\nVmRSS:");
  r.shmem = kb("\nRssShmem:");
  return r;
}

Result<StatusRss> ReadStatusRss(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/status", pid);
  std::ifstream in(path);
  if (!in) return Fail(ErrorCode::kIo, fmt::format("cannot read {}", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseStatusRss(text.str());
}

uint64_t AllocatedBytes(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace cmm::hv
