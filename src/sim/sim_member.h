// A simulated pool member: a guest whose workload follows a shape and
// whose balloon moves toward its target at a set speed, may stall for a
// while, or never follow at all (no driver). It gives memory back on its
// own when its workload would not fit (the balloon's OOM give-back). Its
// clock is the simulation's: Step() moves it one period.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pool/member.h"
#include "sim/shape.h"

namespace cmm::sim {

struct MemberSpec {
  std::string name;
  uint64_t ram_bytes = 0;
  hv::MemberSettings settings;
  uint64_t balloon_bytes_per_s = 512ULL << 20;
  Shape shape;
  Samples samples;  // when shape.kind is kSamples
  uint32_t join_s = 0;
  uint32_t leave_s = 0;  // 0: stays to the end
  uint32_t stall_from_s = 0;  // the balloon stands still in [from, to)
  uint32_t stall_to_s = 0;
  bool responsive = true;  // false: no balloon driver, never follows
};

class SimMember final : public hv::Member {
 public:
  SimMember(const MemberSpec& spec, uint64_t seed);

  const std::string& name() const override { return name_; }
  hv::MemberKind kind() const override { return hv::MemberKind::kPartition; }
  Bytes ram_bytes() const override { return FromUnsigned<Bytes>(ram_); }
  hv::MemberState Observe() const override;
  // The first target arrives on joining, before the workload runs: the
  // balloon already holds it (admission).
  void Assign(const hv::Assignment& a) override;

  // One period of `dt_s` ending at `t_s`.
  void Step(uint32_t t_s, uint32_t dt_s);

  uint64_t ram() const { return ram_; }
  uint64_t loaned() const { return loaned_; }
  uint64_t target() const { return target_; }
  uint64_t backing() const { return touched_; }
  // What it would back with no balloon at all: all it ever touched.
  uint64_t backing_unballooned() const { return touched_unballooned_; }
  uint64_t idle() const { return free_ + cache_; }
  uint64_t oom_events() const { return oom_events_; }
  uint64_t oom_given_back() const { return oom_given_; }  // bytes, in the last Step
  uint32_t target_changes() const { return target_changes_; }
  // Its workload does not fit with `low_free` of its RAM to spare.
  bool short_of_memory(double low_free) const;

 private:
  const std::string name_;
  const uint64_t ram_;
  const uint64_t rate_;
  const uint32_t stall_from_, stall_to_;
  const bool responsive_;
  Workload workload_;
  uint64_t loaned_ = 0, target_ = 0;
  uint64_t used_ = 0, cache_ = 0, free_ = 0, wanted_ = 0, want_used_ = 0;
  uint64_t touched_ = 0, touched_unballooned_ = 0;
  uint64_t oom_events_ = 0, oom_given_ = 0;
  uint32_t now_s_ = 0;
  uint32_t target_changes_ = 0;
  bool joined_ = false;
};

}  // namespace cmm::sim
