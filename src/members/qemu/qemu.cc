#include "members/qemu/qemu.h"

#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include <fmt/format.h>

#include "demo/child.h"

namespace cmm::vm {

std::string QemuBinary() {
  const char* env = std::getenv("CMM_QEMU");
  return env != nullptr && *env != '\0' ? env : "qemu-system-x86_64";
}

std::vector<std::string> QemuArgv(const QemuConfig& c) {
  const uint64_t mib = c.mem_bytes >> 20;
  std::vector<std::string> a = {
      QemuBinary(),
      "-name", c.name,
      "-accel", c.accel,
      "-m", fmt::format("{}M", mib),
      "-smp", std::to_string(c.cpus),
      // Guest RAM is one shared memfd: the hypervisor measures it with
      // st_blocks, and the balloon's discards punch holes in it.
      "-object", fmt::format("memory-backend-memfd,id=ram,size={}M,share=on", mib),
      "-machine", "q35,memory-backend=ram",
      "-device", "virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-reporting=on",
      "-qmp", fmt::format("unix:{},server=on,wait=off", c.qmp_path),
      "-qmp", fmt::format("unix:{},server=on,wait=off", c.control_qmp_path),
      "-serial", fmt::format("file:{}", c.serial_log),
      "-display", "none",
      "-nodefaults",
      "-no-reboot",
  };
  if (!c.kernel.empty()) {
    a.insert(a.end(), {"-kernel", c.kernel});
    if (!c.initrd.empty()) a.insert(a.end(), {"-initrd", c.initrd});
    a.insert(a.end(), {"-append", c.append.empty() ? "console=ttyS0 quiet" : "console=ttyS0 quiet " + c.append});
  }
  if (!c.disk.empty()) a.insert(a.end(), {"-drive", fmt::format("file={},if=virtio", c.disk)});
  return a;
}

std::string HostKernel() {
  glob_t g{};
  std::string newest;
  if (glob("/boot/vmlinuz-*", 0, nullptr, &g) == 0 && g.gl_pathc > 0) {
    std::vector<std::string> all(g.gl_pathv, g.gl_pathv + g.gl_pathc);
    std::sort(all.begin(), all.end());
    newest = all.back();
  }
  globfree(&g);
  return newest;
}

AccelChoice ProbeAccel(const std::string& kernel, const std::string& scratch_dir, std::chrono::milliseconds limit) {
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return {"tcg", fmt::format("/dev/kvm: {}", std::strerror(errno))};
  close(kvm);
  const std::string k = kernel.empty() ? HostKernel() : kernel;
  if (k.empty() || access(k.c_str(), R_OK) != 0) return {"tcg", "no kernel to run a KVM probe guest with"};
  const std::string serial = scratch_dir + "/kvm-probe.serial";
  std::remove(serial.c_str());
  auto probe = demo::Child::Spawn(
      {QemuBinary(), "-accel", "kvm", "-m", "128M", "-smp", "1", "-display", "none", "-nodefaults", "-no-reboot",
       "-serial", "file:" + serial, "-kernel", k, "-append", "console=ttyS0 earlyprintk=serial panic=-1"},
      scratch_dir + "/kvm-probe.log");
  if (!probe) return {"tcg", "the KVM probe guest could not be started"};
  const auto until = std::chrono::steady_clock::now() + limit;
  bool printed = false;
  while (!printed && std::chrono::steady_clock::now() < until && probe->Running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(serial);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    printed = text.find("Linux version") != std::string::npos;
  }
  probe->Stop(std::chrono::milliseconds(0));
  std::remove(serial.c_str());
  if (printed) return {"kvm", "a probe guest ran under KVM"};
  return {"tcg", fmt::format("a probe guest under KVM printed nothing in {} ms", limit.count())};
}

}  // namespace cmm::vm
