// What the host backs for a VM, from /proc/PID/smaps (parsing, pure) and a
// real memfd; and the QEMU command line `cmm vm run` gives (the issue's
// words: guest RAM a shared memfd, a balloon with deflate-on-oom and
// free-page-reporting, QMP sockets, the serial console in a log).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <gtest/gtest.h>

#include "host/vm_memory.h"
#include "members/qemu/console.h"
#include "members/qemu/qemu.h"

namespace cmm::hv {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(VmMemory, TheGuestRamMappingIsTheOneOfExactlyItsSizeAndTheRestIsQemusOwn) {
  const std::string smaps =
      "55d0a0000000-55d0a0400000 r-xp 00000000 fe:01 123 /usr/bin/qemu-system-x86_64\n"
      "Size:               4096 kB\n"
      "Rss:                3000 kB\n"
      "7f0000000000-7f0020000000 rw-s 00000000 00:01 5 /memfd:memory-backend-memfd (deleted)\n"
      "Size:             524288 kB\n"
      "Rss:              200000 kB\n"
      "Pss:              200000 kB\n"
      "7f1000000000-7f1000100000 rw-p 00000000 00:00 0\n"
      "Rss:                 512 kB\n";
  const SmapsTotals t = ParseSmaps(smaps, 512 * kMiB);
  EXPECT_TRUE(t.guest_found);
  EXPECT_EQ(t.guest_resident, 200000U * 1024);
  EXPECT_EQ(t.total_resident, (3000U + 200000 + 512) * 1024);
  EXPECT_FALSE(ParseSmaps(smaps, 256 * kMiB).guest_found);
}

TEST(VmMemory, QemusOwnMemoryIsItsRssLessItsSharedMemoryFromProcStatus) {
  const StatusRss r = ParseStatusRss("Name:\tqemu\nVmPeak:\t 9000 kB\nVmRSS:\t  300000 kB\nRssAnon:\t  90000 kB\n"
                                     "RssFile:\t 10000 kB\nRssShmem:\t  200000 kB\n");
  EXPECT_EQ(r.rss, 300000U * 1024);
  EXPECT_EQ(r.shmem, 200000U * 1024);
  const auto self = ReadStatusRss(getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(self->rss, 0U);
}

TEST(VmMemory, AMemfdOfThisProcessIsFoundByItsSizeAndMeasuredWithStBlocks) {
  const int fd = memfd_create("guest-ram-test", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(8 * kMiB + 4096)), 0);
  auto found = OpenGuestMemfd(getpid(), 8 * kMiB + 4096);
  ASSERT_TRUE(found.has_value()) << found.error();
  EXPECT_EQ(AllocatedBytes(*found), 0U);
  // Mapped whole: a size no thread stack or allocator arena of the test
  // process has, so the mapping of that size is this one.
  void* p = mmap(nullptr, 8 * kMiB + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 0x5A, 2 * kMiB);
  EXPECT_EQ(AllocatedBytes(*found), 2 * kMiB);
  const auto smaps = ReadSmaps(getpid(), 8 * kMiB + 4096);
  ASSERT_TRUE(smaps.has_value());
  EXPECT_TRUE(smaps->guest_found);
  EXPECT_EQ(smaps->guest_resident, 2 * kMiB);
  munmap(p, 8 * kMiB + 4096);
  close(*found);
  close(fd);
  EXPECT_EQ(OpenGuestMemfd(getpid(), 3 * kMiB + 4096).error().code, ErrorCode::kNotFound);
}

TEST(QemuCommandLine, SharedMemfdRamBalloonWithDeflateOnOomAndFreePageReportingQmpAndSerialLog) {
  vm::QemuConfig c;
  c.name = "web1";
  c.mem_bytes = 512 * kMiB;
  c.cpus = 2;
  c.kernel = "/k";
  c.initrd = "/i";
  c.append = "cmm.fill=1";
  c.accel = "tcg";
  c.qmp_path = "/run/a.sock";
  c.control_qmp_path = "/run/b.sock";
  c.serial_log = "/run/serial.log";
  const auto a = vm::QemuArgv(c);
  auto has = [&](const std::string& flag, const std::string& value) {
    for (size_t i = 0; i + 1 < a.size(); ++i) {
      if (a[i] == flag && a[i + 1] == value) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("-object", "memory-backend-memfd,id=ram,size=512M,share=on"));
  EXPECT_TRUE(has("-machine", "q35,memory-backend=ram"));
  EXPECT_TRUE(has("-device", "virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-reporting=on"));
  EXPECT_TRUE(has("-qmp", "unix:/run/a.sock,server=on,wait=off"));
  EXPECT_TRUE(has("-qmp", "unix:/run/b.sock,server=on,wait=off"));
  EXPECT_TRUE(has("-serial", "file:/run/serial.log"));
  EXPECT_TRUE(has("-accel", "tcg"));
  EXPECT_TRUE(has("-smp", "2"));
  EXPECT_TRUE(has("-append", "console=ttyS0 quiet cmm.fill=1"));
}

TEST(VmConsole, TheWorkloadsLastReportItsIntegrityErrorsAndTheGuestsOomKills) {
  const vm::ConsoleReading r = vm::ParseConsole(
      "cmm-guest: ready\r\n"
      "cmm-workload: running t=1s held=4M allocated=4M freed=0M checked=10 integrity_errors=2 alloc_failures=0\r\n"
      "[   12.5] Out of memory: Killed process 91 (cmm-vm-workload) total-vm:1234kB\r\n"
      "cmm-workload: running t=2s held=8M allocated=8M freed=0M checked=20 integrity_errors=3 alloc_failures=0\r\n");
  ASSERT_TRUE(r.workload_report.has_value());
  EXPECT_EQ(*r.workload_report,
            "running t=2s held=8M allocated=8M freed=0M checked=20 integrity_errors=3 alloc_failures=0");
  EXPECT_EQ(r.integrity_errors, 3U);
  EXPECT_EQ(r.oom_kills, 1U);
  EXPECT_FALSE(vm::ParseConsole("cmm-guest: ready\n").workload_report.has_value());
}

}  // namespace
}  // namespace cmm::hv
