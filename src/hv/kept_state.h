// What an operator told the hypervisor, kept across its restarts: each
// member's terms (weight, min, max) as they stand, and the VMs it was asked
// to attach with how to reach them. Kept in a small JSON file in the run
// directory, written whole and atomically (a temporary file, then rename)
// on every change, so a kill -9 at any moment leaves the last state or the
// one before, never half of one. What the file holds is checked when read,
// as anything from disk is.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mutex.h"
#include "pool/member.h"

namespace cmm::hv {

struct KeptVm {
  std::string name;
  std::string qmp;  // its QMP socket
  pid_t pid = 0;    // its QEMU when attached
  friend bool operator==(const KeptVm&, const KeptVm&) = default;
};

struct KeptState {
  std::map<std::string, MemberSettings> terms;
  std::map<std::string, KeptVm> vms;
};

// The file's text, and back. kProtocol with the reason for a file that is
// not one (the daemon then starts without it and says so).
std::string KeptStateText(const KeptState& s);
Result<KeptState> ParseKeptState(const std::string& text);

class StateKeeper {
 public:
  // Reads `path` (none there: nothing kept). An unreadable or malformed
  // file is set aside as PATH.bad and the keeper starts empty; `note` says so.
  explicit StateKeeper(std::string path);

  const std::string& note() const { return note_; }
  std::optional<MemberSettings> Terms(const std::string& name) const;
  std::vector<KeptVm> Vms() const;

  void SetTerms(const std::string& name, const MemberSettings& terms);
  void AddVm(const KeptVm& vm);
  // A member that left: its terms and, for a VM, how to reach it go.
  void Forget(const std::string& name);
  // From now on nothing changes: the daemon is stopping, and its members
  // leaving the pool then must still be there when it starts again.
  void Freeze();

 private:
  void WriteLocked() REQUIRES(mu_);

  const std::string path_;
  std::string note_;
  mutable Mutex mu_;
  KeptState state_ GUARDED_BY(mu_);
  bool frozen_ GUARDED_BY(mu_) = false;
};

}  // namespace cmm::hv
