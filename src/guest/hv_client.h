// The partition's side of the hypervisor: registration with the guest RAM
// memfd, then H_GET_MPP (carrying this partition's stats), H_PAGE_INIT and
// the batched page-state call as request/reply packets.
//
// If the connection is lost every call fails with H_HARDWARE, so the
// controller keeps its last target (S2). The next H_GET_MPP after a backoff
// connects again, registers again and re-loans every CMO page the balloon
// holds, so a restarted hypervisor punches them again and counts each once.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "core/error.h"
#include "core/mutex.h"
#include "core/ports.h"
#include "proto/messages.h"

namespace cmm::guest {

class HvClient final : public Hypervisor {
 public:
  using SteadyClock = std::chrono::steady_clock;

  // Connects to `path` and registers; `memfd` is passed, not given away,
  // and must stay open while the client lives (for re-registration).
  // kUnavailable: no hypervisor listens at `path`; kExists: the name is
  // registered already; kRefused, kProtocol, kIo otherwise.
  static Result<std::unique_ptr<HvClient>> Connect(const std::string& path, const proto::Register& registration,
                                                   int memfd);
  ~HvClient() override;

  // Where GetMpp() takes the stats it reports.
  void SetStatsSource(std::function<proto::Stats()> source);
  // Where a re-registration takes the CMO pages this partition has loaned.
  void SetLoanedSource(std::function<std::vector<uint64_t>()> source);

  bool HasCmo() const override { return true; }
  uint64_t CmoPageSize() const override { return terms_.cmo_page_size; }
  papr::Rc GetMpp(papr::MppData& out) override;
  papr::Rc PageInit(uint64_t flags, uint64_t address) override;
  uint64_t MaxBatch() const override;
  BatchResult PageInitBatch(uint64_t flags, std::span<const uint64_t> addresses) override;
  // Two batches in flight: the request is sent, its answer read later.
  void SubmitBatch(uint64_t flags, std::span<const uint64_t> addresses) override;
  BatchResult CompleteBatch() override;

  bool connected() const;
  uint64_t reconnects() const;
  const proto::Registered& terms() const { return terms_; }

 private:
  HvClient(std::string path, proto::Register registration, int memfd, int fd, proto::Registered terms);
  // Sends and waits for the reply (first taking in the answers of batches
  // still in flight, so replies stay in order); on any failure the
  // connection is closed.
  Result<proto::Message> CallLocked(const proto::Message& m) REQUIRES(mu_);
  Result<proto::Message> ReceiveLocked() REQUIRES(mu_);
  void CollectLocked() REQUIRES(mu_);
  BatchResult PageInitBatchLocked(uint64_t flags, std::span<const uint64_t> addresses) REQUIRES(mu_);
  // Whether one batched call may carry `n` CMO pages on this connection.
  bool BatchOfferedLocked(size_t n) const REQUIRES(mu_);
  void DropLocked(const std::string& why) REQUIRES(mu_);
  // After the backoff: connect, register, re-loan the balloon's pages.
  void ReconnectLocked() REQUIRES(mu_);

  const std::string path_;
  const proto::Register registration_;
  const int memfd_;
  const proto::Registered terms_;  // a re-registration must get the same CMO page size

  mutable Mutex mu_;  // one call at a time
  int fd_ GUARDED_BY(mu_);
  uint32_t caps_ GUARDED_BY(mu_);
  uint32_t max_batch_ GUARDED_BY(mu_);
  std::function<proto::Stats()> stats_source_ GUARDED_BY(mu_);
  std::function<std::vector<uint64_t>()> loaned_source_ GUARDED_BY(mu_);
  SteadyClock::duration backoff_ GUARDED_BY(mu_){};
  SteadyClock::time_point next_attempt_ GUARDED_BY(mu_){};
  uint64_t reconnects_ GUARDED_BY(mu_) = 0;
  // Batches submitted and not completed, oldest first; `awaiting` while
  // their answer is still on the socket.
  struct Submitted {
    uint64_t n = 0;
    bool awaiting = false;
    BatchResult result;
  };
  std::deque<Submitted> submitted_ GUARDED_BY(mu_);
};

}  // namespace cmm::guest
