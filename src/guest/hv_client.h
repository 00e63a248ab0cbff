// The partition's side of the hypervisor: registration with the guest RAM
// memfd, then H_GET_MPP (carrying this partition's stats) and H_PAGE_INIT
// as request/reply packets. If the connection is lost every call fails
// with H_HARDWARE, so the controller keeps its last target (S2).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <tl/expected.hpp>

#include "core/ports.h"
#include "proto/messages.h"

namespace cmm::guest {

class HvClient final : public Hypervisor {
 public:
  // Connects to `path` and registers; `memfd` is passed, not given away.
  static tl::expected<std::unique_ptr<HvClient>, std::string> Connect(const std::string& path,
                                                                      const proto::Register& registration, int memfd);
  ~HvClient() override;

  // Where GetMpp() takes the stats it reports.
  void SetStatsSource(std::function<proto::Stats()> source);

  bool HasCmo() const override { return true; }
  uint64_t CmoPageSize() const override { return terms_.cmo_page_size; }
  papr::Rc GetMpp(papr::MppData& out) override;
  papr::Rc PageInit(uint64_t flags, uint64_t address) override;

  bool connected() const;
  const proto::Registered& terms() const { return terms_; }

 private:
  HvClient(int fd, proto::Registered terms) : fd_(fd), terms_(terms) {}
  // Sends and waits for the reply; on any failure the connection is closed.
  tl::expected<proto::Message, std::string> CallLocked(const proto::Message& m);  // needs mu_

  mutable std::mutex mu_;  // one call at a time; guards fd_ and source_
  int fd_;
  const proto::Registered terms_;
  std::function<proto::Stats()> source_;
};

}  // namespace cmm::guest
