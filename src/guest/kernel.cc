#include "guest/kernel.h"

#include <algorithm>
#include <cerrno>

namespace cmm::guest {

namespace {
template <class T>
int AddOnce(std::vector<T*>& v, T* x) {
  if (std::find(v.begin(), v.end(), x) != v.end()) return EEXIST;
  v.push_back(x);
  return 0;
}
template <class T>
void Remove(std::vector<T*>& v, T* x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
}
}  // namespace

int KernelServices::RegisterOom(OomListener& l) {
  MutexLock lock(mu_);
  return AddOnce(oom_, &l);
}
void KernelServices::UnregisterOom(OomListener& l) {
  MutexLock lock(mu_);
  Remove(oom_, &l);
}
int KernelServices::RegisterReboot(RebootListener& l) {
  MutexLock lock(mu_);
  return AddOnce(reboot_, &l);
}
void KernelServices::UnregisterReboot(RebootListener& l) {
  MutexLock lock(mu_);
  Remove(reboot_, &l);
}
int KernelServices::RegisterAttributes(ControlFiles& files) {
  MutexLock lock(mu_);
  if (files_ != nullptr) return EEXIST;
  files_ = &files;
  return 0;
}
void KernelServices::UnregisterAttributes(ControlFiles& files) {
  MutexLock lock(mu_);
  if (files_ == &files) files_ = nullptr;
}
int KernelServices::RegisterMemory(MemoryListener& l, int priority) {
  MutexLock lock(mu_);
  for (const auto& e : memory_) {
    if (e.listener == &l) return EEXIST;
  }
  // Stable: among equal priorities, earlier registrations run first.
  const auto at = std::find_if(memory_.begin(), memory_.end(), [&](const MemoryEntry& e) { return e.priority < priority; });
  memory_.insert(at, MemoryEntry{&l, priority});
  return 0;
}
void KernelServices::UnregisterMemory(MemoryListener& l) {
  MutexLock lock(mu_);
  std::erase_if(memory_, [&](const MemoryEntry& e) { return e.listener == &l; });
}

int KernelServices::RegisterShrinker(Shrinker& s) {
  MutexLock lock(mu_);
  return AddOnce(shrinkers_, &s);
}
void KernelServices::UnregisterShrinker(Shrinker& s) {
  MutexLock lock(mu_);
  Remove(shrinkers_, &s);
}

uint64_t KernelServices::RunShrinkers(uint64_t wanted) {
  std::vector<Shrinker*> list;
  {
    MutexLock lock(mu_);
    list = shrinkers_;
  }
  uint64_t freed = 0;
  for (auto* s : list) {
    if (freed >= wanted) break;
    freed += s->Shrink(wanted - freed);
  }
  return freed;
}

Pages KernelServices::NotifyOom() {
  std::vector<OomListener*> chain;
  {
    MutexLock lock(mu_);
    chain = oom_;
  }
  Pages freed(0);
  for (auto* l : chain) l->OnOom(freed);
  return freed;
}

void KernelServices::NotifyReboot(RebootAction action) {
  std::vector<RebootListener*> chain;
  {
    MutexLock lock(mu_);
    chain = reboot_;
  }
  for (auto* l : chain) l->OnReboot(action);
}

void KernelServices::NotifyMemory(MemoryAction action) {
  std::vector<MemoryEntry> chain;
  {
    MutexLock lock(mu_);
    chain = memory_;
  }
  for (const auto& e : chain) e.listener->OnMemoryEvent(action);
}

ControlFiles* KernelServices::files() const {
  MutexLock lock(mu_);
  return files_;
}

}  // namespace cmm::guest
