// libFuzzer target for the hcall dispatcher, stateful: one hypervisor
// server for the whole run, and for each input a partition that connects
// over a real socket, registers (a real sealed memfd, fuzzed terms) and
// sends a program of wire messages (page-state calls on fuzzed addresses,
// batches, polls, raw packets). Each answer is checked against a shadow
// model of which CMO pages are loaned; when the partition goes, it leaves
// the pool. The server must answer or refuse, never crash or stall.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>
#include <spdlog/spdlog.h>

#include "members/partition/server.h"
#include "papr/papr.h"
#include "pool/pool.h"
#include "proto/channel.h"

#include "check.h"

namespace {

using namespace std::chrono_literals;
namespace proto = cmm::proto;
namespace papr = cmm::papr;

constexpr uint64_t kCmoPage = 4096;

struct World {
  std::string dir;
  std::unique_ptr<cmm::hv::Pool> pool;
  std::unique_ptr<cmm::hv::HvServer> server;
};

World& TheWorld() {
  static World w = [] {
    World w;
    char tmpl[] = "/tmp/cmm-hcall-fuzz-XXXXXX";
    Check(mkdtemp(tmpl) != nullptr);
    w.dir = tmpl;
    cmm::hv::PoolOptions options;
    options.pool_bytes = cmm::Bytes(1 << 30);
    w.pool = std::make_unique<cmm::hv::Pool>(options);
    cmm::hv::ServerLimits limits;
    limits.max_connections = 4;
    limits.registration_timeout = 2000ms;
    auto s = cmm::hv::HvServer::Start(w.dir + "/hv.sock", *w.pool, {}, limits);
    Check(s.has_value());
    w.server = std::move(*s);
    return w;
  }();
  return w;
}

int SealedMemfd(uint64_t size) {
  const int fd = memfd_create("fuzz-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  Check(fd >= 0);
  Check(ftruncate(fd, static_cast<off_t>(size)) == 0);
  Check(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
  return fd;
}

uint64_t Address(FuzzedDataProvider& in, uint64_t ram) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
    case 1: return in.ConsumeIntegralInRange<uint64_t>(0, ram / kCmoPage - 1) * kCmoPage;
    case 2: return in.ConsumeIntegralInRange<uint64_t>(0, ram + kCmoPage);
    default: return in.ConsumeIntegral<uint64_t>();
  }
}

uint64_t Flags(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0:
    case 1: return papr::kPageSetLoaned;
    case 2:
    case 3: return papr::kPageSetActive;
    default: return in.ConsumeIntegral<uint64_t>();
  }
}

// The shadow: which CMO pages are loaned, and what a page-state call on
// them must answer.
struct Shadow {
  std::vector<bool> loaned;
  uint64_t ram = 0;
  bool Valid(uint64_t flags, uint64_t address) const {
    return (flags == papr::kPageSetLoaned || flags == papr::kPageSetActive) && address % kCmoPage == 0 &&
           address < ram;
  }
  void Apply(uint64_t flags, uint64_t address) { loaned[address / kCmoPage] = flags == papr::kPageSetLoaned; }
  uint64_t LoanedBytes() const { return static_cast<uint64_t>(std::count(loaned.begin(), loaned.end(), true)) * kCmoPage; }
};

// The answer to what was just sent; nullopt when the server closed.
std::optional<proto::Message> Answer(int fd) {
  auto r = proto::Receive(fd, 5s);
  if (!r) {
    Check(r.error().code != cmm::ErrorCode::kTimedOut);  // a stall is a finding
    return std::nullopt;
  }
  Check(r->fd < 0);
  return std::move(r->message);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietProcess();
  (void)TheWorld();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  FuzzedDataProvider in(data, size);
  auto conn = proto::ConnectSeqpacket(w.server->path());
  Check(conn.has_value());
  const int fd = *conn;
  Shadow shadow;
  shadow.ram = in.ConsumeIntegralInRange<uint64_t>(1, 256) * kCmoPage;
  shadow.loaned.assign(shadow.ram / kCmoPage, false);
  proto::Register reg;
  reg.name = in.ConsumeBool() ? "fuzz" : in.ConsumeRandomLengthString(20);
  reg.page_size = in.ConsumeBool() ? kCmoPage : in.ConsumeIntegral<uint32_t>();
  reg.ram_bytes = shadow.ram;
  reg.weight = in.ConsumeIntegral<uint8_t>();
  reg.min_bytes = in.ConsumeIntegralInRange<uint64_t>(0, shadow.ram);
  reg.want_batch = in.ConsumeBool();
  const int memfd = SealedMemfd(in.ConsumeBool() ? shadow.ram : shadow.ram + kCmoPage);
  bool registered = false;
  bool batch = false;
  if (proto::Send(fd, reg, memfd)) {
    if (auto a = Answer(fd)) {
      if (const auto* ok = std::get_if<proto::Registered>(&*a)) {
        registered = true;
        batch = (ok->caps & proto::kCapBatch) != 0;
        Check(ok->cmo_page_size == kCmoPage);
      } else {
        Check(std::holds_alternative<proto::Error>(*a));
      }
    }
  }
  close(memfd);
  while (registered && in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 4);
    if (op == 0) {
      const uint64_t flags = Flags(in), address = Address(in, shadow.ram);
      if (!proto::Send(fd, proto::PageInit{flags, address})) break;
      const auto a = Answer(fd);
      if (!a) break;
      const auto* rc = std::get_if<proto::PageInitRc>(&*a);
      Check(rc != nullptr);
      Check((rc->rc == papr::kSuccess) == shadow.Valid(flags, address));
      if (rc->rc == papr::kSuccess) shadow.Apply(flags, address);
    } else if (op == 1) {
      proto::PageInitBatch b{Flags(in), {}};
      const size_t n = in.ConsumeIntegralInRange<size_t>(0, 64);
      for (size_t i = 0; i < n; ++i) b.addresses.push_back(Address(in, shadow.ram));
      if (!proto::Send(fd, b)) break;
      const auto a = Answer(fd);
      if (!a) break;
      if (!batch || b.addresses.empty()) {
        // Refused: no capability, or a batch of nothing (the wire allows 1-4096).
        Check(std::holds_alternative<proto::Error>(*a));
        break;
      }
      const auto* r = std::get_if<proto::PageInitBatchRc>(&*a);
      Check(r != nullptr);
      // In order, stopping at the first page that is not valid.
      uint32_t done = 0;
      while (done < b.addresses.size() && shadow.Valid(b.flags, b.addresses[done])) {
        shadow.Apply(b.flags, b.addresses[done]);
        ++done;
      }
      Check(r->done == done);
      Check((r->rc == papr::kSuccess) == (done == b.addresses.size()));
    } else if (op == 2) {
      proto::GetMpp g;
      g.stats.free_bytes = in.ConsumeIntegral<uint64_t>();
      g.stats.oom_freed_bytes = in.ConsumeIntegral<uint64_t>();
      if (!proto::Send(fd, g)) break;
      const auto a = Answer(fd);
      if (!a) break;
      const auto* m = std::get_if<proto::Mpp>(&*a);
      Check(m != nullptr && m->rc == papr::kSuccess);
      Check(m->data.entitled_mem == static_cast<int64_t>(shadow.ram));
      // Nothing assigned yet: it may take back all it loaned, no more.
      Check(m->data.loan_request == -static_cast<int64_t>(shadow.LoanedBytes()));
    } else {
      // A packet of any bytes: refused (and closed), or a message it handles.
      const std::string raw = in.ConsumeRandomLengthString(128);
      if (send(fd, raw.data(), raw.size(), MSG_NOSIGNAL) < 0) break;
      if (!Answer(fd)) break;
      // What answered it is not modelled: stop checking the shadow here.
      break;
    }
  }
  close(fd);
  // Once the partition is gone, so is its member, and its memory with it.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!w.pool->Snapshot().empty()) {
    Check(std::chrono::steady_clock::now() < until);
    std::this_thread::sleep_for(50us);
  }
  return 0;
}
