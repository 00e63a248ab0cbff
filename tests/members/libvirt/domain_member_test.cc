// A libvirt domain as a member (the words: libvirt's stats and
// events mapped to a member's state), behind a fake connection and with the
// time given: the guest's counts clamped to its RAM, its target pushed as
// guest memory, a rise above the ask counted as its OOM event (autodeflate),
// the same unresponsive rules as a QMP VM, a paused domain held.
#include <libvirt/libvirt.h>

#include <chrono>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "members/libvirt/domain_member.h"

namespace cmm::hv {
namespace {

using namespace std::chrono_literals;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRam = 256 * kMiB;

Assignment Loan(uint64_t bytes) { return {FromUnsigned<Bytes>(bytes), Bytes(0), 0}; }

struct FakeDomain {
  DomainMemory memory;
  std::vector<uint64_t> sets;
  bool refuse = false;
};

class FakeControl final : public DomainControl {
 public:
  explicit FakeControl(FakeDomain& d) : d_(d) {}
  Result<DomainMemory> Memory() override { return d_.memory; }
  Result<void> SetGuestMemory(uint64_t bytes) override {
    if (d_.refuse) return Fail(ErrorCode::kRefused, "balloon: refused");
    d_.sets.push_back(bytes);
    return {};
  }

 private:
  FakeDomain& d_;
};

class DomainMemberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    domain_.memory.actual_bytes = kRam;
    DomainOptions o;
    o.name = "web1";
    o.uri = "qemu:///system";
    o.ram_bytes = kRam;
    o.actual_bytes = kRam;
    o.period = 1s;
    o.clock = [this] { return clock_; };
    member_ = std::make_unique<DomainMember>(o, std::make_unique<FakeControl>(domain_), [this] { ++wakes_; },
                                             nullptr, t0_);
  }
  void Stats(int64_t update, uint64_t unused_kib) {
    domain_.memory.last_update = update;
    domain_.memory.unused_bytes = unused_kib << 10;
    domain_.memory.available_bytes = kRam;
    domain_.memory.usable_bytes = unused_kib << 10;
  }
  FakeDomain domain_;
  int wakes_ = 0;
  MemberClock::time_point clock_ = MemberClock::time_point{} + 1001s;  // readings come back then
  const MemberClock::time_point t0_ = MemberClock::time_point{} + 1000s;
  std::unique_ptr<DomainMember> member_;
};

TEST(DomainMemory, SizesInKibBecomeBytesClampedToTheRam) {
  const std::vector<std::pair<int, uint64_t>> stats = {
      {VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON, 131072},        {VIR_DOMAIN_MEMORY_STAT_UNUSED, 1ULL << 40},
      {VIR_DOMAIN_MEMORY_STAT_AVAILABLE, UINT64_MAX},          {VIR_DOMAIN_MEMORY_STAT_USABLE, 65536},
      {VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE, 1700000000},        {VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT, 7},
      {VIR_DOMAIN_MEMORY_STAT_DISK_CACHES, 1024},              {99, 5}};
  const DomainMemory m = DecodeDomainMemory(stats, kRam);
  EXPECT_EQ(m.actual_bytes, 128 * kMiB);
  EXPECT_EQ(m.unused_bytes, kRam);     // a guest that says 1 PiB free is not believed
  EXPECT_EQ(m.available_bytes, kRam);  // nor 2^64 KiB
  EXPECT_EQ(m.usable_bytes, 64 * kMiB);
  EXPECT_EQ(m.disk_caches_bytes, kMiB);
  EXPECT_EQ(m.major_faults, 7U);
  EXPECT_EQ(m.last_update, 1700000000);
  EXPECT_EQ(DecodeDomainMemory({}, kRam).actual_bytes, kRam);  // no balloon figure: all of its RAM
}

TEST_F(DomainMemberTest, ATargetIsPushedAsGuestMemoryAndItsStatsAreRead) {
  member_->Assign(Loan(96 * kMiB));
  EXPECT_EQ(wakes_, 1);
  member_->Assign(Loan(96 * kMiB));  // the same: nothing to push
  EXPECT_EQ(wakes_, 1);
  member_->Push(t0_);
  ASSERT_EQ(domain_.sets, std::vector<uint64_t>{160 * kMiB});
  domain_.memory.actual_bytes = 160 * kMiB;
  Stats(100, 40 * 1024);
  domain_.memory.swap_in_bytes = 3 * kMiB;
  domain_.memory.major_faults = 70;
  member_->Tick(t0_ + 1s);
  const MemberState s = member_->Observe();
  // Its pressure counters reach the pool (the "pressure signals").
  EXPECT_EQ(s.stats.swapped_in, FromUnsigned<Bytes>(3 * kMiB));
  EXPECT_EQ(s.stats.major_faults, 70U);
  EXPECT_EQ(s.loaned_bytes, FromUnsigned<Bytes>(96 * kMiB));
  EXPECT_EQ(s.stats.free_bytes, FromUnsigned<Bytes>(40 * kMiB));
  EXPECT_EQ(s.stats.used_bytes, FromUnsigned<Bytes>(kRam - 40 * kMiB));
  EXPECT_EQ(s.uri, "qemu:///system");
  EXPECT_TRUE(s.responsive) << s.note;
  EXPECT_EQ(s.stats.oom_events, 0U);
}

TEST_F(DomainMemberTest, TheBalloonRisingAboveTheAskIsTheGuestsOomEvent) {
  member_->Assign(Loan(128 * kMiB));
  member_->Push(t0_);
  domain_.memory.actual_bytes = 128 * kMiB;
  Stats(100, 1024);
  member_->Tick(t0_ + 1s);
  // Later, with nothing asked, the guest takes 32 MiB back (autodeflate).
  member_->OnBalloonEvent(160 * kMiB, t0_ + 5s, t0_ + 5s);
  EXPECT_EQ(member_->Observe().stats.oom_events, 1U);
  EXPECT_EQ(member_->Observe().loaned_bytes, FromUnsigned<Bytes>(96 * kMiB));
}

TEST_F(DomainMemberTest, ABalloonEventOlderThanTheLastReadingIsNotTaken) {
  member_->Assign(Loan(128 * kMiB));
  member_->Push(t0_);
  domain_.memory.actual_bytes = 128 * kMiB;
  Stats(100, 1024);
  member_->Tick(t0_ + 1s);
  // Sent on the way down, delivered after the reading that saw it arrive.
  member_->OnBalloonEvent(129 * kMiB, MemberClock::time_point{}, t0_ + 1s);
  EXPECT_EQ(member_->Observe().stats.oom_events, 0U);
  EXPECT_EQ(member_->Observe().loaned_bytes, FromUnsigned<Bytes>(128 * kMiB));
}

TEST_F(DomainMemberTest, StaleStatsOrAStuckBalloonMakeItUnresponsiveAndAPausedDomainIsHeld) {
  Stats(100, 1024);
  member_->Tick(t0_);
  EXPECT_TRUE(member_->Observe().responsive);
  member_->Tick(t0_ + 5s);  // last-update has not moved for 5 s (3 periods)
  EXPECT_FALSE(member_->Observe().responsive);
  EXPECT_NE(member_->Observe().note.find("guest stats stopped"), std::string::npos) << member_->Observe().note;
  Stats(106, 1024);
  member_->Tick(t0_ + 6s);
  EXPECT_TRUE(member_->Observe().responsive) << member_->Observe().note;

  member_->Assign(Loan(128 * kMiB));
  member_->Push(t0_ + 6s);
  Stats(110, 1024);
  member_->Tick(t0_ + 10s);  // asked 128 MiB four seconds ago; still at 256
  EXPECT_NE(member_->Observe().note.find("balloon at 256 MiB does not move toward 128 MiB"), std::string::npos)
      << member_->Observe().note;

  member_->SetPaused(true);
  member_->Assign(Loan(64 * kMiB));
  member_->Push(t0_ + 11s);  // nothing is asked of a paused domain
  EXPECT_EQ(domain_.sets.size(), 1U);
  Stats(111, 1024);
  member_->Tick(t0_ + 11s);
  EXPECT_EQ(member_->Observe().note, "paused");
  member_->SetPaused(false);
  member_->Push(t0_ + 12s);
  EXPECT_EQ(domain_.sets.back(), 192 * kMiB);
}

TEST_F(DomainMemberTest, ARefusedTargetIsSaidInItsNoteAndTriedAgain) {
  domain_.refuse = true;
  member_->Assign(Loan(128 * kMiB));
  member_->Push(t0_);
  Stats(100, 1024);
  member_->Tick(t0_);
  EXPECT_NE(member_->Observe().note.find("balloon: refused"), std::string::npos) << member_->Observe().note;
  domain_.refuse = false;
  member_->Push(t0_ + 1s);
  EXPECT_EQ(domain_.sets, std::vector<uint64_t>{128 * kMiB});
}

}  // namespace
}  // namespace cmm::hv
