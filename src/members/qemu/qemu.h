// Starting QEMU for `cmm vm run`: its command line (guest RAM a shared
// memfd, a virtio balloon that deflates on OOM and reports free pages, QMP
// sockets, the serial console in a log) and the accelerator probe: KVM is
// used only when a probe guest is seen running under it, since a usable
// /dev/kvm does not prove a guest will run.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace cmm::vm {

struct QemuConfig {
  std::string name;
  uint64_t mem_bytes = 0;
  int cpus = 1;
  std::string kernel, initrd, append;  // a kernel and initramfs, or
  std::string disk;                    // a disk image
  std::string accel = "tcg";           // "kvm" or "tcg"
  std::string qmp_path;                // the hypervisor's QMP socket
  std::string control_qmp_path;        // cmm vm run's own (power off, quit)
  std::string serial_log;
};

std::string QemuBinary();  // $CMM_QEMU, else qemu-system-x86_64
std::vector<std::string> QemuArgv(const QemuConfig& c);

struct AccelChoice {
  std::string accel;  // "kvm" or "tcg"
  std::string why;
};

// `auto`: boots a small probe guest under KVM with `kernel` (the host's
// newest /boot/vmlinuz-* when empty) and waits up to `limit` for its
// kernel to print on the serial console. Files go under `scratch_dir`.
AccelChoice ProbeAccel(const std::string& kernel, const std::string& scratch_dir, std::chrono::milliseconds limit);

// The newest /boot/vmlinuz-*, or "".
std::string HostKernel();

}  // namespace cmm::vm
